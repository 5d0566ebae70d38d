"""Blocks beyond the presets: SEMM, TIM, GAC, the official-behaviour settings of SDSA and SSA,
and the analytic table on random architectures."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost import ArchConfig
from autost.model.blocks.attention import SDSA, SSA
from autost.model.blocks.common import LinearBN
from autost.model.blocks.gac import GACGate
from autost.model.blocks.semm import EMSA, EMSP
from autost.model.blocks.tim import TIM


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_semm_counts_match_the_reimplementation_formulas() -> None:
    # D=384, E=4, d=96, biased q/k/v/router as in the re-implementation:
    # EMSA = (E+1)(D+3)d + 2D^2 + 6D + E(D+3) = 484,524; EMSP = 1.5 r D^2 + 8.5 r D + 3D = 898,944
    cfg = ArchConfig(embed_dim=384, depth=1, num_heads=12, attention="semm", mlp="emsp",
                     qkv_bias=True, num_experts=4)  # fmt: skip
    d, e, r = 384, 4, 4
    assert n_params(EMSA(cfg, 0)) == (e + 1) * (d + 3) * (d // e) + 2 * d * d + 6 * d + e * (d + 3)
    assert n_params(EMSA(cfg, 0)) == 484_524
    assert n_params(EMSP(cfg, 0)) == int(1.5 * r * d * d + 8.5 * r * d + 3 * d) == 898_944


def test_emsa_router_masks_experts() -> None:
    torch.manual_seed(0)
    cfg = ArchConfig(embed_dim=32, depth=1, num_heads=2, attention="semm", num_experts=4,
                     image_size=16, timesteps=2)  # fmt: skip
    attn = EMSA(cfg, 0).eval()
    x = (torch.rand(2, 3, 16, 32) > 0.5).float()
    # a router that never fires leaves only the projection's BN bias: the branch is constant
    with torch.no_grad():
        attn.router.bn.bias.fill_(-100.0)
        silent = attn.branch(x, x)
        other = attn.branch((torch.rand(2, 3, 16, 32) > 0.5).float(), x)
    torch.testing.assert_close(silent, other)


def test_tim_counts_and_first_step_passthrough() -> None:
    cfg = ArchConfig(embed_dim=64, depth=1, num_heads=4, tim=True, tim_kernel=5, timesteps=4)
    tim = TIM(cfg, 0)
    width = 16
    assert n_params(tim) == 5 * width * width + width
    q = (torch.rand(4, 2, 10, 64) > 0.5).float()  # 10 tokens: any count works
    out = tim(q)
    assert out.shape == q.shape and torch.equal(out[0], q[0])
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_gac_counts_and_gate_range() -> None:
    cfg = ArchConfig(embed_dim=512, depth=1, num_heads=8, coding="gac", timesteps=6)
    gate = GACGate(cfg, 64)
    assert n_params(gate) == 2 * 6 * 3 + 2 * 64 * 64 * 16  # 2 T floor(T/2) + 2 C^2 k^2
    x = torch.randn(6 * 2, 64, 8, 8)
    spikes = (torch.rand_like(x) > 0.5).float()
    y = gate(x, spikes)
    assert ((y > 0) <= (spikes > 0)).all() and (y < 1).all()
    with pytest.raises(autost.ConfigError, match="coding"):
        ArchConfig(coding="gac", timesteps=1)


@st.composite
def architectures(draw: st.DrawFn) -> ArchConfig:
    stem = draw(st.sampled_from(["sps", "sps-membrane", "qk-cifar", "qk-imagenet", "qk-dvs"]))
    hierarchical = stem.startswith("qk-")
    stages = draw(st.sampled_from([(1, 1), (1, 2), (1, 1, 1)])) if hierarchical else ()
    depth = sum(stages) if stages else draw(st.integers(1, 3))
    embed = 64 if len(stages) < 3 else 128
    attention = [draw(st.sampled_from(["ssa", "sdsa", "qk-token", "qk-channel", "semm"]))
                 for _ in range(depth)]  # fmt: skip
    image = {"sps": 16, "sps-membrane": 16, "qk-cifar": 16, "qk-imagenet": 32, "qk-dvs": 32}[stem]
    if stages and len(stages) == 3 and stem != "qk-cifar":
        image *= 2
    shortcut = draw(st.sampled_from(["spike", "membrane"]))
    return ArchConfig(
        in_channels=draw(st.sampled_from([1, 2, 3])),
        image_size=image,
        num_classes=5,
        timesteps=draw(st.integers(2, 3)),
        coding=draw(st.sampled_from(["direct", "gac"])),
        stem=stem,
        embed_dim=embed,
        depth=depth,
        stages=stages,
        num_heads=[draw(st.sampled_from([1, 2, 4])) for _ in range(depth)],
        mlp_ratios=[draw(st.sampled_from([1.0, 2.0, 3.0])) for _ in range(depth)],
        attention=attention,
        mlp=draw(st.sampled_from(["mlp", "emsp"])),
        shortcut=shortcut,
        qkv_bias=draw(st.booleans()),
        tim=draw(st.booleans()),
        num_experts=draw(st.sampled_from([1, 2, 4])),
        neuron={"kind": draw(st.sampled_from(["lif", "plif"]))},
        # settings of one attention type need a layer of it (ArchConfig.validate)
        sdsa_dvs_pool=draw(st.booleans()) and "sdsa" in attention,
        ssa_flat_proj_lif=draw(st.booleans()) and "ssa" in attention and shortcut == "spike",
    )


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=architectures())
def test_random_architectures_match_the_analytic_table(cfg: ArchConfig) -> None:
    model = autost.create_model(cfg)
    assert autost.count_params(cfg) == n_params(model)
    x = torch.rand(2, cfg.in_channels, cfg.image_size, cfg.image_size)
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
    table = autost.layer_table(cfg)
    assert counter.get_total_flops() == 2 * 2 * sum(r.macs + r.matmul_macs for r in table)
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ------------------------------------------------------------- settings reproducing official code


def _randomize(module: torch.nn.Module, weight_gain: float) -> torch.nn.Module:
    """Eval mode with random BN statistics and scaled-up weights, so that neurons fire."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, torch.nn.Linear):
                m.weight.mul_(weight_gain)
    return module.eval()


def _lif(x: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """LIF over axis 0 (tau 2, hard reset to 0), written out."""
    v, out = torch.zeros_like(x[0]), []
    for step in x:
        h = v + (step - v) / 2.0
        spike = (h >= threshold).float()
        v = h * (1.0 - spike)
        out.append(spike)
    return torch.stack(out)


def _conv_bn(layer: LinearBN, x: torch.Tensor) -> torch.Tensor:
    """The official 1x1 conv + BN (eval) on ``[T, B, C, H, W]``, with ``layer``'s weights."""
    t, b, _, h, w = x.shape
    weight = layer.linear.weight[:, :, None, None]
    y = torch.nn.functional.conv2d(x.flatten(0, 1), weight, layer.linear.bias)
    bn = layer.bn
    y = torch.nn.functional.batch_norm(
        y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
    )
    return y.reshape(t, b, -1, h, w)


def _official_sdsa_dvs(attn: SDSA, x: torch.Tensor, heads: int) -> torch.Tensor:
    """SDT's published DVS-mode SDSA on ``[T, B, C, H, W]`` membrane input: the "Erode"
    (MaxPool3d, kernel (1, 3, 3), stride 1, padding (0, 1, 1)) on K and V in the
    ``[T, B, C, H, W]`` layout, and on K*V and Q*KV in the ``[T, B, heads, N, C/heads]`` one."""
    erode = torch.nn.MaxPool3d(kernel_size=(1, 3, 3), stride=1, padding=(0, 1, 1))
    t, b, c, h, w = x.shape
    s = _lif(x)

    def split(y: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> [T, B, heads, N, C/heads]
        return (
            y.flatten(3)
            .transpose(-1, -2)
            .reshape(t, b, h * w, heads, c // heads)
            .permute(0, 1, 3, 2, 4)
        )

    q = split(_lif(_conv_bn(attn.q, s)))
    k = split(erode(_lif(_conv_bn(attn.k, s))))
    v = split(erode(_lif(_conv_bn(attn.v, s))))
    kv = _lif(erode(k * v).sum(dim=-2, keepdim=True), threshold=0.5)
    out = erode(q * kv).transpose(3, 4).reshape(t, b, c, h, w)
    return x + _conv_bn(attn.proj, out)


def test_sdsa_dvs_pool_equals_the_official_dvs_mode() -> None:
    heads, t, b, c, side = 4, 3, 2, 32, 6
    torch.manual_seed(0)
    cfg = ArchConfig(stem="sps-membrane", shortcut="membrane", attention="sdsa", embed_dim=c,
                     depth=1, num_heads=heads, image_size=4 * side, timesteps=t,
                     sdsa_dvs_pool=True)  # fmt: skip
    attn = _randomize(SDSA(cfg, 0), weight_gain=20.0)
    plain = SDSA(cfg.replace(sdsa_dvs_pool=False), 0).eval()
    plain.load_state_dict(attn.state_dict())
    # parameter-free, no multiply-accumulates: the analytic table is the same either way
    assert autost.layer_table(cfg) == autost.layer_table(cfg.replace(sdsa_dvs_pool=False))
    x = torch.randn(t, b, c, side, side) * 2
    tokens = x.flatten(3).transpose(2, 3)
    with torch.no_grad():
        expected = _official_sdsa_dvs(attn, x, heads)
        got = attn(tokens).transpose(2, 3).reshape(t, b, c, side, side)
        without = plain(tokens).transpose(2, 3).reshape(t, b, c, side, side)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(without, expected, atol=1e-2)  # the pools change the output


def _ssa_at_batch(flat: bool, x: torch.Tensor) -> tuple[SSA, torch.Tensor]:
    cfg = ArchConfig(embed_dim=32, depth=1, num_heads=4, attention="ssa", image_size=24,
                     timesteps=x.shape[0], ssa_flat_proj_lif=flat)  # fmt: skip
    torch.manual_seed(0)  # the same weights for every call
    attn = _randomize(SSA(cfg, 0), weight_gain=20.0)
    with torch.no_grad():
        return attn, attn(x)


def test_ssa_flat_proj_lif_carries_the_membrane_across_samples() -> None:
    torch.manual_seed(1)
    x = (torch.rand(4, 2, 36, 32) > 0.6).float()  # [T, B, N, C] spikes
    attn, flat = _ssa_at_batch(True, x)
    with torch.no_grad():
        pre = attn.branch(x, x)  # everything before the output neuron (official proj_bn out)
    # official QKFormer: proj_lif on [T*B, C, N], its membrane stepping t0b0, t0b1, t1b0, ...
    expected = x + _lif(pre.flatten(0, 1)).reshape(pre.shape)
    torch.testing.assert_close(flat, expected, rtol=0, atol=0)

    _, per_sample = _ssa_at_batch(False, x)
    _, alone = _ssa_at_batch(False, x[:, :1])
    _, flat_alone = _ssa_at_batch(True, x[:, :1])
    torch.testing.assert_close(per_sample[:, :1], alone, rtol=0, atol=0)
    torch.testing.assert_close(flat_alone, alone, rtol=0, atol=0)  # batch 1: the same
    assert not torch.equal(flat[:, :1], alone)  # batch 2: sample 1 leaks into sample 0
