"""Memory savers (issue 17): spike inputs saved as bool/uint8, checkpointed encoder blocks.

Both must leave results alone: the same forward outputs and the same gradients as the default
path on every stem, attention type, MLP, TIM and GAC, and the low-memory path must really
save fewer bytes for backward.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from testkit import BLOCK_CASES, DIGITS_ARCH
from torch import Tensor, nn
from torch.nn import functional as F

import autost
from autost import ArchConfig
from autost.cli import build_parser
from autost.model.blocks import lowmem
from autost.model.blocks.lowmem import max_pool2d, spike_conv, spike_linear, spike_matmul, spike_mul
from autost.model.network import SpikingTransformer, resolve_config
from autost.training import TrainSettings, train

# the shared cases (testkit.BLOCK_CASES) and those of this module: (preset, overrides)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    **BLOCK_CASES,  # sps-ssa at 4 tokens: (Q K^T) V
    "sps-ssa-kv-first": ("spikformer-4-384-cifar10", {"image_size": 20}),  # 25: Q (K^T V)
    "sps-semm-kv-first": ("spikformer-4-384-cifar10", {"attention": "semm", "image_size": 20}),
    "sps-membrane-sdsa-dvs": ("sdt-2-256-cifar10dvs", {"sdsa_dvs_pool": True}),
    "sps-sdsa-membrane-shortcut": (
        "spikformer-4-384-cifar10",
        {"attention": "sdsa", "shortcut": "membrane", "mlp_ratios": 1},  # inner residual MLP
    ),
    "gac-qk": ("qkformer-4-384-cifar10", {"coding": "gac"}),
}


def small_model(preset: str, **overrides: Any) -> tuple[SpikingTransformer, ArchConfig]:
    """A narrow float32 copy of ``preset`` (T=2) with spikes dense enough to carry gradients."""
    cfg = resolve_config(preset)
    overrides = dict(overrides)
    size = overrides.pop("image_size", None)
    overrides.setdefault("depth", cfg.depth if cfg.stages else min(cfg.depth, 2))
    cfg = cfg.replace(
        timesteps=2,
        embed_dim=32,
        num_heads=2,
        neuron={"threshold": 0.5, "attn_threshold": 0.25},
        **overrides,
    )
    cfg = cfg.replace(image_size=size or 2 * cfg.total_stride)  # a 2 x 2 last token grid
    torch.manual_seed(0)
    model = autost.create_model(cfg).train()
    model.low_memory = False  # the plain path, which the savers must reproduce
    return model, cfg


def case_model(case: str) -> tuple[SpikingTransformer, ArchConfig]:
    preset, overrides = CASES[case]
    return small_model(preset, **overrides)


def step(model: nn.Module, x: Tensor, weights: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Output of ``model(x)`` and the gradients of ``sum(weights * output)`` (input, params)."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out = model(x)
    (out * weights).sum().backward()
    grads = {"input": x.grad}
    grads.update((n, p.grad) for n, p in model.named_parameters())
    zero = torch.zeros(())
    return out.detach(), {n: zero if g is None else g.detach().clone() for n, g in grads.items()}


def assert_same(got: dict[str, Tensor], want: dict[str, Tensor]) -> None:
    """Every gradient equal to 1e-6 of its largest magnitude."""
    assert got.keys() == want.keys()
    wrong = {}
    for name, g in got.items():
        scale = want[name].abs().max().item()
        err = (g - want[name]).abs().max().item()
        if err > 1e-6 * scale or (scale == 0 and err > 0):
            wrong[name] = err / max(scale, 1e-30)
    assert not wrong, f"gradients off (relative error each): {wrong}"


def batch(cfg: ArchConfig, size: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(size)
    x = torch.rand(size, cfg.in_channels, cfg.image_size, cfg.image_size, generator=gen)
    return x, torch.randn(size, cfg.num_classes, generator=gen)


def compare(case: str, size: int, **switches: bool) -> None:
    model, cfg = case_model(case)
    x, weights = batch(cfg, size)
    out, want = step(model, x, weights)
    for name, value in switches.items():
        setattr(model, name, value)
    out2, got = step(model, x, weights)
    assert torch.equal(out, out2)
    assert want["input"].abs().sum() > 0, "spikes too sparse to carry gradients"
    nonzero = [n for n, g in want.items() if g.abs().sum() > 0]
    assert len(nonzero) > len(want) // 2, "most parameters must get a gradient"
    assert_same(got, want)


@pytest.fixture(autouse=True)
def eager_lif(monkeypatch: pytest.MonkeyPatch) -> None:
    """The LIF op's eager kernel: compiling it would dominate these small runs."""
    monkeypatch.setenv("AUTOST_LIF_BACKEND", "eager")


@pytest.fixture
def check_spikes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that every operand packed as spikes is 0/1 (or a count)."""
    monkeypatch.setenv(lowmem.CHECK_ENV, "1")


# ------------------------------------------------------------------------------ the ops


def _spikes(*shape: int, seed: int = 0) -> Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) > 0.6).float()


def _grads(fn: Callable[..., Tensor], *inputs: Tensor) -> list[Tensor]:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(9))
    (out * weights).sum().backward()
    return [out, *(t.grad for t in leaves if t.grad is not None)]


def _module_grads(module: nn.Module, fn: Callable[[Tensor], Tensor], x: Tensor) -> list[Tensor]:
    module.zero_grad(set_to_none=True)
    got = _grads(fn, x)
    return got + [p.grad for p in module.parameters() if p.grad is not None]


def _bitwise(a: list[Tensor], b: list[Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "2d"])
def test_spike_linear_is_bitwise_the_plain_linear(
    bias: bool, layout: str, check_spikes: None
) -> None:
    linear = nn.Linear(24, 40, bias=bias)
    x = {
        "contiguous": _spikes(2, 3, 5, 24),
        "transposed": _spikes(2, 5, 3, 24).transpose(1, 2),
        "2d": _spikes(7, 24),
    }[layout]
    want = _module_grads(linear, linear, x)
    got = _module_grads(linear, lambda t: spike_linear(t, linear, "binary"), x)
    _bitwise(got, want)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(6, 8, 3, padding=1),
        nn.Conv2d(6, 8, 1, stride=2, bias=False),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False),
        nn.Conv1d(6, 6, 5, padding=2),
    ],
    ids=["3x3", "1x1-stride2", "depthwise", "conv1d"],
)
def test_spike_conv_is_bitwise_the_plain_conv(conv: nn.Module, check_spikes: None) -> None:
    assert isinstance(conv, (nn.Conv1d, nn.Conv2d))
    shape = (4, 6, 9, 9) if isinstance(conv, nn.Conv2d) else (4, 6, 9)
    for x in (_spikes(*shape), _spikes(*shape).transpose(-1, -2).contiguous().transpose(-1, -2)):
        want = _module_grads(conv, conv, x)
        got = _module_grads(conv, lambda t, c=conv: spike_conv(t, c, "binary"), x)
        _bitwise(got, want)


def test_spike_products_are_bitwise_the_plain_products(check_spikes: None) -> None:
    a = _spikes(2, 3, 10, 4, 8).transpose(2, 3)  # a head view [T, B, h, N, d]
    real = torch.randn(2, 3, 4, 10, 10)
    cases: list[tuple[Tensor, Tensor, Any, Any]] = [
        (a.transpose(-2, -1), _spikes(2, 3, 4, 10, 6, seed=1), "binary", "binary"),
        (a, torch.randn(2, 3, 1, 8, 8), "binary", None),  # broadcast batch dim
        (real, _spikes(2, 3, 4, 10, 8, seed=2), None, "binary"),
        (_spikes(2, 3, 4, 10, 8, seed=3), _spikes(2, 3, 1, 8, 5, seed=4), "binary", "binary"),
        (3 * _spikes(2, 3, 4, 10, 8, seed=5), real[..., :8, :8], "count", None),
    ]
    for p, q, kp, kq in cases:
        got = _grads(lambda s, t, kp=kp, kq=kq: spike_matmul(s, t, kp, kq), p, q)
        _bitwise(got, _grads(torch.matmul, p, q))
    for p, q in [
        (_spikes(2, 3, 5, 8), _spikes(2, 3, 1, 8, seed=1)),
        (_spikes(2, 3, 5, 4, 1), _spikes(2, 3, 5, 4, 6, seed=1)),
    ]:
        _bitwise(_grads(spike_mul, p, q), _grads(torch.mul, p, q))


@pytest.mark.parametrize("stride", [1, 2])
def test_max_pool_keeping_only_indices_is_bitwise_the_plain_pool(stride: int) -> None:
    spikes = _spikes(4, 6, 9, 9)  # many ties
    for x in (
        spikes,
        torch.randn(4, 6, 9, 9),
        spikes.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),
    ):
        want = _grads(lambda t: F.max_pool2d(t, 3, stride, 1), x)
        _bitwise(_grads(lambda t: max_pool2d(t, 3, stride, 1), x), want)


def test_debug_check_rejects_operands_that_are_not_spikes(check_spikes: None) -> None:
    linear = nn.Linear(4, 3)
    x = _spikes(5, 4)
    spike_linear(x.requires_grad_(), linear, "binary")  # fine
    with pytest.raises(RuntimeError, match="not integers"):
        spike_linear(2 * x, linear, "binary")
    spike_linear(2 * x, linear, "count")  # counts may exceed 1
    with pytest.raises(RuntimeError, match="not integers"):
        spike_linear(x + 0.5, linear, "count")


# ------------------------------------------------------------------------------ models


@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_low_memory_gives_the_same_outputs_and_gradients(
    case: str, size: int, check_spikes: None
) -> None:
    compare(case, size, low_memory=True)


@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_checkpoint_blocks_gives_the_same_outputs_and_gradients(case: str, size: int) -> None:
    compare(case, size, checkpoint_blocks=True)


@pytest.mark.parametrize("case", ["sps-ssa", "sps-membrane-sdsa", "qk-imagenet"])
def test_both_savers_together_give_the_same_outputs_and_gradients(
    case: str, check_spikes: None
) -> None:
    compare(case, 4, low_memory=True, checkpoint_blocks=True)


def test_checkpoint_blocks_update_batchnorm_statistics_once() -> None:
    model, cfg = case_model("sps-ssa")
    x, weights = batch(cfg, 4)
    step(model, x, weights)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    model, _ = case_model("sps-ssa")
    model.checkpoint_blocks = True
    step(model, x, weights)
    got = model.state_dict()
    assert any("running_mean" in k and not torch.all(v == 0) for k, v in got.items())
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, different


def test_low_memory_keeps_parameters_and_module_hooks() -> None:
    model, cfg = case_model("qk-imagenet")
    names = list(model.state_dict())
    calls: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            module.register_forward_hook(lambda m, args, out, name=name: calls.append(name))
    x, weights = batch(cfg, 2)
    step(model, x, weights)
    plain, calls[:] = list(calls), []
    model.low_memory = True
    step(model, x, weights)
    assert calls == plain and len(plain) > 10
    assert list(model.state_dict()) == names


def saved_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes of the distinct storages saved for backward by one forward pass."""
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    out.sum().backward()
    return sum(storages.values())


def test_low_memory_saves_fewer_bytes_for_backward() -> None:
    cfg = resolve_config("spikformer-4-384-cifar10").replace(
        image_size=16, embed_dim=64, depth=2, num_heads=4
    )
    torch.manual_seed(0)
    model = autost.create_model(cfg).train()
    x = torch.rand(4, 3, 16, 16)
    model.low_memory = False
    plain = saved_bytes(model, x)
    model.low_memory = True
    low = saved_bytes(model, x)
    # every conv/linear/product input after the image is spikes: float32 -> 1 byte
    assert low < 0.8 * plain, (low, plain)


# ------------------------------------------------------------------------------ training


def test_settings_and_cli_carry_the_switches() -> None:
    settings = TrainSettings(low_memory=True, checkpoint_blocks=True)
    assert TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert TrainSettings().low_memory == lowmem.LOW_MEMORY_DEFAULT
    model = SpikingTransformer(DIGITS_ARCH)
    flags = {m.low_memory for m in model.modules() if isinstance(m, lowmem.LowMemory)}
    assert model.low_memory == lowmem.LOW_MEMORY_DEFAULT and flags == {model.low_memory}
    model.low_memory = not model.low_memory
    flags = {m.low_memory for m in model.modules() if isinstance(m, lowmem.LowMemory)}
    assert flags == {model.low_memory}
    args = build_parser().parse_args(["train", "x", "--checkpoint-blocks", "--low-memory"])
    assert args.checkpoint_blocks and args.low_memory
    args = build_parser().parse_args(["train", "x", "--no-low-memory"])
    assert args.low_memory is False and not args.checkpoint_blocks


def test_training_with_both_savers_equals_default_training(tmp_path: Path) -> None:
    arch = DIGITS_ARCH.replace(embed_dim=32)
    common: dict[str, Any] = {"epochs": 1, "limit_train_batches": 3, "progress": False}
    plain = train(arch, "digits", out=tmp_path / "a", low_memory=False, **common)
    saver = train(
        arch, "digits", out=tmp_path / "b", low_memory=True, checkpoint_blocks=True, **common
    )
    keep = ("train_loss", "train_acc", "val_loss", "val_acc", "firing_rates")
    assert [{k: m[k] for k in keep} for m in plain.metrics] == [
        {k: m[k] for k in keep} for m in saver.metrics
    ]
    a = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    status = json.loads((tmp_path / "b" / "train.json").read_text())
    assert status["settings"]["low_memory"] and status["settings"]["checkpoint_blocks"]
