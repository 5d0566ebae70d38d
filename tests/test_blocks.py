"""Blocks beyond the presets: SEMM, TIM, GAC, and the analytic table on random architectures."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost import ArchConfig
from autost.blocks.gac import GACGate
from autost.blocks.semm import EMSA, EMSP
from autost.blocks.tim import TIM


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
        shortcut=draw(st.sampled_from(["spike", "membrane"])),
        qkv_bias=draw(st.booleans()),
        tim=draw(st.booleans()),
        num_experts=draw(st.sampled_from([1, 2, 4])),
        neuron={"kind": draw(st.sampled_from(["lif", "plif"]))},
    )


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
