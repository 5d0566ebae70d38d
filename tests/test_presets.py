"""Every preset's parameter count held to the exact integer derived from the official shapes.

The counts below were derived by hand from the official layer shapes (and cross-checked by
building the official implementations, leaving out modules their forward never calls).
BN contributes 2 parameters per channel; ``k`` is a 3x3 kernel (9); biases as in the code.

Spikformer-4-384 CIFAR-10 (D=384, hidden 4D=1536, q/k/v/proj linears with bias):
  SPS   convs 3*48*9 + 48*96*9 + 96*192*9 + 192*384*9 + 384*384*9 (rpe), no bias
        = 1,296 + 41,472 + 165,888 + 663,552 + 1,327,104 = 2,199,312;
        BN 2*(48 + 96 + 192 + 384 + 384) = 2,208           -> SPS = 2,201,520
  block SSA 4*(384*384 + 384) + 4*768 = 594,432; MLP (384*1536 + 1536) + 3072
        + (1536*384 + 384) + 768 = 1,185,408; block = 1,779,840; x4 = 7,119,360
  head 384*10 + 10 = 3,850                       total = 9,324,730 (paper: 9.32M)
  ImageNet variants drop the q/k/v biases (3*D per block) and pool 4x in the stem.

Spike-driven Transformer-8-768 ImageNet (membrane shortcut, SDSA; talking-heads conv unused):
  stem  3*96*9 + 96*192*9 + 192*384*9 + 384*768*9 + 768*768*9 = 8,794,656, BN 4,416 -> 8,799,072
  block SDSA 3*768^2 + (768^2 + 768) + 4*1536 = 2,366,208; MLP 4,730,112; x8 = 56,770,560
  head 768*1000 + 1000 = 769,000                 total = 66,338,632 (paper: 66.34M)

QKFormer-10-768 ImageNet (stages 1/2/7 at 192/384/768):
  stem  3*96*9 + 96*192*9 + 192*192*9 + 96*192 (1x1 shortcut) + BN 2*(96+192+192+192) = 520,032
  stage1 Q-K token block at 192: 2*192^2 + (192^2 + 192) + 6*192 + MLP 297,792  = 409,728
  down2 192*384*9 + 384*384*9 + 192*384 + BN 3*768                            = 2,066,688
  stage2 2 x (2*384^2 + (384^2 + 384) + 6*384 + MLP 1,185,408)                = 3,260,928
  down3 384*768*9 + 768*768*9 + 384*768 + BN 3*1536                           = 8,262,144
  stage3 7 x (SSA 2,366,208 + MLP 4,730,112)                                  = 49,674,240
  head 769,000                                   total = 64,962,760 (paper: 64.96M)
"""

from __future__ import annotations

import pytest
import torch

import autost

EXPECTED = {
    "spikformer-4-384-cifar10": 9_324_730,
    "spikformer-4-384-cifar100": 9_359_380,
    "spikformer-8-384-imagenet": 16_816_024,
    "spikformer-6-512-imagenet": 23_373_352,
    "spikformer-8-512-imagenet": 29_689_384,
    "spikformer-10-512-imagenet": 36_005_416,
    "spikformer-8-768-imagenet": 66_338_632,
    "spikformer-2-256-cifar10dvs": 2_566_666,
    "spikformer-2-256-dvsgesture": 2_566_923,
    "sdt-2-512-cifar10": 10_233_418,
    "sdt-2-512-cifar100": 10_279_588,
    "sdt-8-384-imagenet": 16_816_024,
    "sdt-6-512-imagenet": 23_373_352,
    "sdt-8-512-imagenet": 29_689_384,
    "sdt-10-512-imagenet": 36_005_416,
    "sdt-8-768-imagenet": 66_338_632,
    "sdt-2-256-cifar10dvs": 2_566_666,
    "sdt-2-256-dvsgesture": 2_566_923,
    "qkformer-4-384-cifar10": 6_706_234,
    "qkformer-4-384-cifar100": 6_740_884,
    "qkformer-10-384-imagenet": 16_473_688,
    "qkformer-10-512-imagenet": 29_079_336,
    "qkformer-10-768-imagenet": 64_962_760,
    "qkformer-2-256-cifar10dvs": 1_504_138,
    "qkformer-2-256-dvsgesture": 1_999_371,
}

#: Rounded figures from the papers' tables.
PUBLISHED_MILLIONS = {
    "spikformer-4-384-cifar10": 9.32,
    "spikformer-8-768-imagenet": 66.34,
    "qkformer-4-384-cifar100": 6.74,
    "qkformer-10-768-imagenet": 64.96,
}


def test_every_preset_has_an_expected_count() -> None:
    assert sorted(EXPECTED) == autost.list_models()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_analytic_count_equals_official(name: str) -> None:
    assert autost.count_params(name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_published_rounding(name: str) -> None:
    assert round(EXPECTED[name] / 1e6, 2) == PUBLISHED_MILLIONS[name]


def test_spikformer_cifar_arithmetic() -> None:
    d, h = 384, 1536
    sps = 3 * 48 * 9 + 48 * 96 * 9 + 96 * 192 * 9 + 192 * 384 * 9 + 384 * 384 * 9
    sps += 2 * (48 + 96 + 192 + 384 + 384)
    ssa = 4 * (d * d + d) + 4 * 2 * d
    mlp = (d * h + h) + 2 * h + (h * d + d) + 2 * d
    assert sps + 4 * (ssa + mlp) + d * 10 + 10 == EXPECTED["spikformer-4-384-cifar10"]


def _ssa(d: int, qkv_bias: bool = False) -> int:
    return 3 * (d * d + (d if qkv_bias else 0)) + (d * d + d) + 4 * 2 * d


def _mlp(d: int, ratio: int = 4) -> int:
    h = d * ratio
    return (d * h + h) + 2 * h + (h * d + d) + 2 * d


def test_sdt_imagenet_arithmetic() -> None:
    d = 768
    stem = 3 * 96 * 9 + 96 * 192 * 9 + 192 * 384 * 9 + 384 * 768 * 9 + 768 * 768 * 9
    stem += 2 * (96 + 192 + 384 + 768 + 768)
    assert stem + 8 * (_ssa(d) + _mlp(d)) + d * 1000 + 1000 == EXPECTED["sdt-8-768-imagenet"]


def test_qkformer_imagenet_arithmetic() -> None:
    def token_block(d: int) -> int:  # Q-K token attention has no V
        return 2 * d * d + (d * d + d) + 3 * 2 * d + _mlp(d)

    def down(d: int) -> int:
        return (d // 2) * d * 9 + d * d * 9 + (d // 2) * d + 3 * 2 * d

    stem = 3 * 96 * 9 + 96 * 192 * 9 + 192 * 192 * 9 + 96 * 192 + 2 * (96 + 192 + 192 + 192)
    total = stem + token_block(192) + down(384) + 2 * token_block(384) + down(768)
    total += 7 * (_ssa(768) + _mlp(768)) + 768 * 1000 + 1000
    assert total == EXPECTED["qkformer-10-768-imagenet"]


def test_only_sdt_cifar10dvs_runs_in_dvs_mode_and_no_preset_flattens_proj_lif() -> None:
    for name in autost.list_models():
        cfg = autost.model.network.resolve_config(name)
        assert cfg.sdsa_dvs_pool == (name == "sdt-2-256-cifar10dvs"), name
        assert not cfg.ssa_flat_proj_lif, name
    model = autost.create_model("sdt-2-256-cifar10dvs", embed_dim=64, image_size=16)
    assert all(block.attn.dvs_pool for block in model.blocks)


def test_qkformer_official_proj_lif_is_opt_in_and_equal_at_batch_one() -> None:
    # attn_scale 1: SSA's neurons fire at the default initialisation of so small a model
    small = {"embed_dim": 64, "num_heads": 2, "image_size": 16, "timesteps": 2, "attn_scale": 1.0}
    torch.manual_seed(0)
    ours = autost.create_model("qkformer-4-384-cifar10", **small)
    official = autost.create_model("qkformer-4-384-cifar10", ssa_flat_proj_lif=True, **small)
    official.load_state_dict(ours.state_dict())
    assert autost.count_params(official.config) == autost.count_params(ours.config)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():  # train-mode BN normalises the neurons' inputs
        assert torch.equal(ours(x[:1]), official(x[:1]))
        assert not torch.equal(ours(x), official(x))
