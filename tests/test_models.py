"""Every registered preset builds, runs forward and backward, and matches the analytic counts."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import autost
from autost.model.network import resolve_config

PRESETS = autost.list_models()


def small_overrides(cfg: autost.ArchConfig) -> dict[str, Any]:
    """Shrink a preset for CPU: narrow, 2 timesteps, the smallest image its stem accepts."""
    heads = 2 if cfg.stages else 4
    return {
        "timesteps": 2,
        "embed_dim": 64,
        "num_heads": heads,
        "image_size": min(cfg.image_size, 2 * cfg.total_stride),
    }


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_full_size_analytic_count_equals_built(name: str) -> None:
    model = autost.create_model(name)
    assert autost.count_params(name) == n_params(model)
    assert model.config == resolve_config(name)


@pytest.mark.parametrize("name", PRESETS)
def test_small_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    cfg = resolve_config(name)
    small = cfg.replace(**small_overrides(cfg))
    model = autost.create_model(name, **small_overrides(cfg))
    assert autost.count_params(small) == n_params(model)
    x = torch.rand(2, small.in_channels, small.image_size, small.image_size)
    with FlopCounterMode(display=False) as counter:
        logits = model(x)
    assert logits.shape == (2, small.num_classes)
    assert torch.isfinite(logits).all()
    # conv, linear and matmul FLOPs = 2 x MACs of the analytic table, per sample
    macs = sum(row.macs + row.matmul_macs for row in autost.layer_table(small))
    assert counter.get_total_flops() == 2 * macs * x.shape[0]
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["sdt-2-256-dvsgesture", "qkformer-2-256-cifar10dvs"])
def test_event_sequence_input_and_per_timestep_output(name: str) -> None:
    cfg = resolve_config(name)
    model = autost.create_model(name, **small_overrides(cfg)).eval()
    small = model.config
    frames = (torch.rand(small.timesteps, 3, 2, small.image_size, small.image_size) > 0.7).float()
    per_t = model(frames, per_timestep=True)
    assert per_t.shape == (small.timesteps, 3, small.num_classes)
    torch.testing.assert_close(model(frames), per_t.mean(0))


def test_wrong_input_shape_is_a_clear_error() -> None:
    model = autost.create_model("spikformer-4-384-cifar10", embed_dim=32, num_heads=4)
    with pytest.raises(autost.AutostError, match="channels"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(autost.AutostError, match="T=4"):
        model(torch.rand(3, 1, 3, 32, 32))


def test_unknown_preset_lists_close_matches() -> None:
    with pytest.raises(autost.AutostError, match="spikformer-4-384-cifar10"):
        autost.create_model("spikformer-4-384-cifar")


def test_missing_paths_say_no_such_file(tmp_path: Any) -> None:
    for spec in ("/path/that/does/not/exist", "arch.json", "no-such-dir/run", tmp_path / "gone"):
        with pytest.raises(autost.AutostError) as info:
            autost.create_model(spec)
        assert str(info.value) == f"no such file or folder: {spec}"
    with pytest.raises(autost.AutostError, match="neither a bundle"):
        autost.create_model(tmp_path)  # a folder without a config
    with pytest.raises(autost.AutostError, match="no such file or folder"):
        autost.count_params(str(tmp_path / "nope.json"))


def test_create_model_accepts_config_dict_and_json(tmp_path: Any) -> None:
    cfg = resolve_config("qkformer-4-384-cifar10").replace(embed_dim=64, num_heads=2)
    path = tmp_path / "arch.json"
    cfg.to_json(path)
    for spec in (cfg, cfg.to_dict(), str(path), path):
        model = autost.create_model(spec)
        assert model.config == cfg
    assert autost.count_params(str(path)) == n_params(autost.create_model(path))


def test_plif_parameters_are_counted() -> None:
    cfg = resolve_config("sdt-2-512-cifar10").replace(
        embed_dim=64, neuron={"kind": "plif"}, num_heads=4
    )
    model = autost.create_model(cfg)
    plain = autost.create_model(cfg.replace(neuron={"kind": "lif"}))
    assert n_params(model) > n_params(plain)
    assert autost.count_params(cfg) == n_params(model)


@pytest.mark.parametrize(
    "name", ["spikformer-4-384-cifar10", "sdt-2-512-cifar10", "qkformer-10-384-imagenet"]
)
@pytest.mark.parametrize("tim", [False, True])
def test_layer_table_names_are_module_paths(name: str, tim: bool) -> None:
    from autost.neurons import LIF

    cfg = resolve_config(name)
    cfg = cfg.replace(**small_overrides(cfg), tim=tim)
    model = autost.create_model(cfg)
    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm1d,
              torch.nn.BatchNorm2d, LIF)  # fmt: skip
    modules = {n for n, m in model.named_modules() if isinstance(m, layers)}
    # LinearBN rows name the inner linear and bn modules
    rows = {r.name for r in autost.layer_table(cfg) if r.kind != "matmul"}
    assert rows == modules
