"""Official checkpoints: Spikformer, SDT and QKFormer key layouts loaded into the presets.

The official layouts are written out below as rules (names and shapes read from the official
model files: ZK-Zhou/spikformer ``cifar10|imagenet|cifar10dvs/model.py``,
BICLab/Spike-Driven-Transformer ``module/sps.py`` + ``module/ms_conv.py``,
zhouchenlin2096/QKFormer ``cifar10|cifar10-dvs|dvs128-gesture/model.py`` +
``imagenet/qkformer.py``), each row with the name of our parameter that the official tensor
fills, or ``None`` for modules the official code builds but never calls. Presets are shrunk
(width, image size, timesteps) so that every registered preset runs in a fraction of a second.
"""

from __future__ import annotations

import argparse
import io
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import autost
from autost import ArchConfig, AutostError, SpikingTransformer
from autost.cli import main
from autost.model.network import resolve_config

SHRINK: dict[str, Any] = {"embed_dim": 64, "num_heads": 4, "image_size": 32, "timesteps": 2}
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
#: the weight's trailing dimensions of a token-wise projection in each official module kind
KIND = {"linear": (), "conv1d": (1,), "conv2d": (1, 1)}

Row = tuple[str, tuple[int, ...], "str | None"]


def _conv(off: str, ours: str, shape: tuple[int, ...]) -> list[Row]:
    return [(f"{off}.weight", shape, f"{ours}.weight")]


def _bn(off: str, ours: str, channels: int) -> list[Row]:
    return [
        (f"{off}.{s}", () if s == "num_batches_tracked" else (channels,), f"{ours}.{s}") for s in BN
    ]


def _proj(off: str, bn: str, ours: str, cout: int, cin: int, kind: str, bias: bool) -> list[Row]:
    rows: list[Row] = [(f"{off}.weight", (cout, cin, *KIND[kind]), f"{ours}.linear.weight")]
    if bias:
        rows.append((f"{off}.bias", (cout,), f"{ours}.linear.bias"))
    return rows + _bn(bn, f"{ours}.bn", cout)


def _sps(cfg: ArchConfig) -> list[Row]:
    """Spikformer's and SDT's ``patch_embed``: proj_conv, proj_conv1..3, rpe_conv."""
    d = cfg.embed_dim
    widths = [cfg.in_channels, d // 8, d // 4, d // 2, d]
    rows: list[Row] = []
    for i in range(4):
        tag = str(i) if i else ""
        rows += _conv(
            f"patch_embed.proj_conv{tag}", f"stem.convs.{i}", (widths[i + 1], widths[i], 3, 3)
        )
        rows += _bn(f"patch_embed.proj_bn{tag}", f"stem.bns.{i}", widths[i + 1])
    rows += _conv("patch_embed.rpe_conv", "stem.rpe_conv", (d, d, 3, 3))
    return rows + _bn("patch_embed.rpe_bn", "stem.rpe_bn", d)


def _spikformer(dataset: str, cfg: ArchConfig) -> list[Row]:
    d, hidden = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratios[0])
    cifar, dvs = (
        dataset in ("cifar10", "cifar100"),
        dataset.endswith("dvs") or dataset == "dvsgesture",
    )
    attn_kind = "linear" if cifar else "conv1d"
    mlp_kind = "linear" if cifar else "conv1d" if dvs else "conv2d"
    name = "linear" if cifar else "conv"
    rows = _sps(cfg)
    if dvs:
        rows.append(("pos_embed", (1, 64, d), None))
    for i in range(cfg.depth):
        b, o = f"block.{i}", f"blocks.{i}"
        rows += [(f"{b}.norm1.weight", (d,), None), (f"{b}.norm1.bias", (d,), None)]
        for p in ("q", "k", "v"):
            rows += _proj(
                f"{b}.attn.{p}_{name}", f"{b}.attn.{p}_bn", f"{o}.attn.{p}", d, d, attn_kind, cifar
            )
        rows += _proj(
            f"{b}.attn.proj_{name}", f"{b}.attn.proj_bn", f"{o}.attn.proj", d, d, attn_kind, True
        )
        rows += [(f"{b}.norm2.weight", (d,), None), (f"{b}.norm2.bias", (d,), None)]
        rows += _proj(
            f"{b}.mlp.fc1_{name}", f"{b}.mlp.fc1_bn", f"{o}.mlp.fc1", hidden, d, mlp_kind, True
        )
        rows += _proj(
            f"{b}.mlp.fc2_{name}", f"{b}.mlp.fc2_bn", f"{o}.mlp.fc2", d, hidden, mlp_kind, True
        )
    if dvs:
        rows += [("norm.weight", (d,), None), ("norm.bias", (d,), None)]
    return rows


def _sdt(cfg: ArchConfig) -> list[Row]:
    d, hidden, heads = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratios[0]), cfg.num_heads[0]
    rows = _sps(cfg)
    for i in range(cfg.depth):
        b, o = f"block.{i}", f"blocks.{i}"
        for p in ("q", "k", "v"):
            rows += _proj(
                f"{b}.attn.{p}_conv", f"{b}.attn.{p}_bn", f"{o}.attn.{p}", d, d, "conv2d", False
            )
        rows.append((f"{b}.attn.talking_heads.weight", (heads, heads, 1), None))
        rows += _proj(
            f"{b}.attn.proj_conv", f"{b}.attn.proj_bn", f"{o}.attn.proj", d, d, "conv2d", True
        )
        rows += _proj(
            f"{b}.mlp.fc1_conv", f"{b}.mlp.fc1_bn", f"{o}.mlp.fc1", hidden, d, "conv2d", True
        )
        rows += _proj(
            f"{b}.mlp.fc2_conv", f"{b}.mlp.fc2_bn", f"{o}.mlp.fc2", d, hidden, "conv2d", True
        )
    return rows


def _qkformer(dataset: str, cfg: ArchConfig) -> list[Row]:
    stages = len(cfg.stages)
    widths = [cfg.embed_dim >> (stages - 1 - s) for s in range(stages)]
    w, c = widths[0], cfg.in_channels
    if dataset in ("cifar10", "cifar100"):
        stem = [("proj", w // 2, c), ("proj1", w, w // 2)]
        res_in, first, ssa, mlp = w // 2, "proj3", "ssa", ("mlp1", "mlp2")
    elif dataset == "imagenet":
        stem = [("proj", w // 2, c), ("proj1", w, w // 2), ("proj2", w, w)]
        res_in, first, ssa, mlp = w // 2, "proj3", "attn", ("fc1", "fc2")
    else:
        stem = [
            ("proj", w // 8, c),
            ("proj1", w // 4, w // 8),
            ("proj2", w // 2, w // 4),
            ("proj3", w, w // 2),
        ]
        res_in, first, ssa, mlp = w // 4, "proj", "ssa", ("mlp1", "mlp2")
    rows: list[Row] = []
    for i, (n, cout, cin) in enumerate(stem):
        rows += _conv(f"patch_embed1.{n}_conv", f"stem.convs.{i}", (cout, cin, 3, 3))
        rows += _bn(f"patch_embed1.{n}_bn", f"stem.bns.{i}", cout)
    rows += _conv("patch_embed1.proj_res_conv", "stem.res_conv", (w, res_in, 1, 1))
    rows += _bn("patch_embed1.proj_res_bn", "stem.res_bn", w)
    block = 0
    for s, (count, w) in enumerate(zip(cfg.stages, widths, strict=True)):
        if s:
            pe, ds = f"patch_embed{s + 1}", f"downsample.{s - 1}"
            rows += _conv(f"{pe}.{first}_conv", f"{ds}.conv1", (w, w // 2, 3, 3))
            rows += _bn(f"{pe}.{first}_bn", f"{ds}.bn1", w)
            rows += _conv(f"{pe}.proj4_conv", f"{ds}.conv2", (w, w, 3, 3)) + _bn(
                f"{pe}.proj4_bn", f"{ds}.bn2", w
            )
            rows += _conv(f"{pe}.proj_res_conv", f"{ds}.res_conv", (w, w // 2, 1, 1))
            rows += _bn(f"{pe}.proj_res_bn", f"{ds}.res_bn", w)
        for j in range(count):
            b, o, hidden = f"stage{s + 1}.{j}", f"blocks.{block}", int(w * cfg.mlp_ratios[block])
            token = cfg.attention[block] == "qk-token"
            a = f"{b}.tssa" if token else f"{b}.{ssa}"
            for p in ("q", "k") if token else ("q", "k", "v"):
                rows += _proj(
                    f"{a}.{p}_conv", f"{a}.{p}_bn", f"{o}.attn.{p}", w, w, "conv1d", False
                )
            rows += _proj(f"{a}.proj_conv", f"{a}.proj_bn", f"{o}.attn.proj", w, w, "conv1d", True)
            m1, m2 = (f"{b}.mlp.{m}" for m in mlp)
            rows += _proj(f"{m1}_conv", f"{m1}_bn", f"{o}.mlp.fc1", hidden, w, "conv2d", True)
            rows += _proj(f"{m2}_conv", f"{m2}_bn", f"{o}.mlp.fc2", w, hidden, "conv2d", True)
            block += 1
    return rows


def official_rows(name: str, cfg: ArchConfig) -> list[Row]:
    """The official state-dict layout of preset ``name`` (shrunk to ``cfg``)."""
    family, dataset = name.split("-")[0], name.split("-")[-1]
    if family == "spikformer":
        rows = _spikformer(dataset, cfg)
    elif family == "sdt":
        rows = _sdt(cfg)
    else:
        rows = _qkformer(dataset, cfg)
    d, k = cfg.embed_dim, cfg.num_classes
    return [*rows, ("head.weight", (k, d), "head.weight"), ("head.bias", (k,), "head.bias")]


def random_state(rows: list[Row], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random official tensors that make the neurons fire (BN variances positive)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape, _ in rows:
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            value = torch.tensor(100)
        elif leaf == "running_var":
            value = torch.rand(shape, generator=g) + 0.5
        elif leaf == "weight" and len(shape) >= 2:
            fan_in = math.prod(shape[1:])
            value = torch.randn(shape, generator=g) * 2.5 / math.sqrt(fan_in)
        elif leaf == "weight" and ".norm" not in key:  # BatchNorm scale
            value = torch.rand(shape, generator=g) + 0.5
        else:
            value = torch.randn(shape, generator=g) * 0.3 + (0.3 if "_bn" in key else 0.0)
        state[key] = value
    return state


def by_hand(cfg: ArchConfig, rows: list[Row], state: dict[str, torch.Tensor]) -> SpikingTransformer:
    """Our model with the official tensors put in by the explicit name mapping above."""
    model = SpikingTransformer(cfg)
    ours = model.state_dict()
    filled = {o: state[k].reshape(ours[o].shape) for k, _, o in rows if o is not None}
    assert set(filled) == set(ours), sorted(set(filled) ^ set(ours))[:5]
    model.load_state_dict(filled)
    return model.eval()


def _save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _wrap(state: dict[str, torch.Tensor], how: int) -> Any:
    """The usual containers of training scripts (timm, DeiT/MAE, DataParallel)."""
    if how == 0:
        return state
    if how == 1:  # timm CheckpointSaver
        return {"epoch": 3, "state_dict": state, "args": argparse.Namespace(lr=0.1, model="x")}
    if how == 2:  # MAE / torchvision references, DataParallel prefix
        return {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 1}
    return {"model_ema": state}


def _inputs(cfg: ArchConfig) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, cfg.in_channels, cfg.image_size, cfg.image_size)


@pytest.mark.parametrize("name", autost.list_models())
def test_every_preset_loads_its_official_layout(name: str, tmp_path: Path) -> None:
    cfg = resolve_config(name, **SHRINK)
    rows = official_rows(name, cfg)
    state = random_state(rows)
    how = autost.list_models().index(name) % 4
    model = autost.load_official(_save(_wrap(state, how), tmp_path / "ckpt.pth"), name, **SHRINK)
    expected = by_hand(cfg, rows, state)
    loaded = model.state_dict()
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded[key], value), key
    x = _inputs(cfg)
    with torch.no_grad():
        logits, reference = model.eval()(x), expected(x)
    assert torch.equal(logits, reference)
    assert logits.std() > 0  # the neurons fired: the logits depend on the weights


def test_unused_modules_and_batch_counters_are_optional() -> None:
    name = "spikformer-2-256-cifar10dvs"
    cfg = resolve_config(name, **SHRINK)
    rows = official_rows(name, cfg)
    state = {
        k: v
        for k, v in random_state(rows).items()
        if not k.endswith("num_batches_tracked") and k not in {r[0] for r in rows if r[2] is None}
    }
    model = autost.load_official(state, name, **SHRINK)
    assert int(model.state_dict()["stem.bns.0.num_batches_tracked"]) == 0


def _error(state: dict[str, torch.Tensor], tmp_path: Path, name: str) -> str:
    with pytest.raises(AutostError) as info:
        autost.load_official(_save(state, tmp_path / "bad.pth"), name, **SHRINK)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "bad.pth") in message
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("truncate", "missing key 'block.1.mlp.fc2_linear.weight'"),
        ("rename", "unexpected key 'block.0.attn.q_lin.weight'"),
        ("reshape", "key 'head.weight' has shape [11, 64]"),
        ("extra", "unexpected key 'block.4.norm1.weight'"),
    ],
)
def test_a_key_that_does_not_fit_is_named(edit: str, expected: str, tmp_path: Path) -> None:
    name = "spikformer-4-384-cifar10"
    cfg = resolve_config(name, **SHRINK)
    state = random_state(official_rows(name, cfg))
    if edit == "truncate":
        keys = list(state)
        state = {k: state[k] for k in keys[: keys.index("block.1.mlp.fc2_linear.weight")]}
    elif edit == "rename":
        state["block.0.attn.q_lin.weight"] = state.pop("block.0.attn.q_linear.weight")
    elif edit == "reshape":
        state["head.weight"] = torch.zeros(11, 64)
    else:
        state["block.4.norm1.weight"] = torch.ones(64)  # a block the preset does not have
    message = _error(state, tmp_path, name)
    assert expected in message
    if edit == "reshape":
        assert "expects [10, 64]" in message


def test_another_familys_checkpoint_is_refused(tmp_path: Path) -> None:
    cfg = resolve_config("sdt-2-512-cifar10", **SHRINK)
    state = random_state(official_rows("sdt-2-512-cifar10", cfg))
    message = _error(state, tmp_path, "spikformer-8-384-imagenet")
    # the stems agree; SDT's q projection is a Conv2d where Spikformer's is a Conv1d
    assert "key 'block.0.attn.q_conv.weight' has shape [64, 64, 1, 1]" in message
    assert (
        "Spikformer (ImageNet) layout of spikformer-8-384-imagenet expects [64, 64, 1]" in message
    )


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"head.weight": torch.zeros(1)}, "x": _Payload(marker)}, path)
    with pytest.raises(AutostError, match="refused") as info:
        autost.load_official(path, "spikformer-4-384-cifar10")
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(b"no checkpoint here")
    with pytest.raises(AutostError, match="neither a zip archive nor a whole pickle") as info:
        autost.load_official(path, "sdt-2-512-cifar10")
    assert "\n" not in str(info.value)
    with pytest.raises(AutostError, match="no such checkpoint file"):
        autost.load_official(tmp_path / "absent.pth", "sdt-2-512-cifar10")
    buffer = io.BytesIO()
    torch.save([1, 2], buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(AutostError, match="holds no state dict"):
        autost.load_official(path, "sdt-2-512-cifar10")


def test_a_config_no_official_model_has_is_refused() -> None:
    cfg = resolve_config("qkformer-4-384-cifar10", **SHRINK, attention="qk-channel")
    with pytest.raises(AutostError, match=r"attention\[0\] = 'qk-channel'"):
        autost.load_official({}, cfg)


def test_cli_convert_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "qkformer-10-384-imagenet"
    cfg = resolve_config(name, **SHRINK)
    config = tmp_path / "shrunk.json"
    cfg.to_json(config)
    ckpt = _save(_wrap(random_state(official_rows(name, cfg)), 1), tmp_path / "official.pth")
    bundle = tmp_path / "bundle"
    assert main(["convert", str(ckpt), "--preset", str(config), "-o", str(bundle)]) == 0
    assert capsys.readouterr().out.strip() == str(bundle)
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    model = autost.create_model(bundle).eval()
    assert model.config == cfg
    x = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(model(x), autost.load_official(ckpt, config).eval()(x))


def test_cli_convert_bad_checkpoint_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"head.weight": torch.zeros(10, 384)}}, bad)
    bundle = tmp_path / "bundle"
    assert (
        main(["convert", str(bad), "--preset", "spikformer-4-384-cifar10", "-o", str(bundle)]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autost: error:")
    assert "missing key 'patch_embed.proj_conv.weight'" in err
    assert not bundle.exists()


def test_a_file_that_is_no_checkpoint_says_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pickle
    import warnings
    import zipfile

    buffer = io.BytesIO()
    torch.save({"head.weight": torch.zeros(10, 64)}, buffer)
    legacy = io.BytesIO()
    torch.save({"head.weight": torch.zeros(10, 64)}, legacy, _use_new_zipfile_serialization=False)
    files = {
        "pickle4.pkl": (pickle.dumps({"a": [1, 2]}, protocol=4), "is a plain pickle, not a"),
        "pickle2.pkl": (pickle.dumps({"a": [1, 2]}, protocol=2), "is a plain pickle, not a"),
        "pickle0.pkl": (pickle.dumps({"a": [1, 2]}, protocol=0), "is a plain pickle, not a"),
        "torn.pth": (buffer.getvalue()[:300], "is a truncated or damaged zip archive"),
        "legacy.pth": (legacy.getvalue()[:60], "damaged PyTorch checkpoint of torch.save's legacy"),
        "empty.pth": (b"", "is empty, not a PyTorch checkpoint"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes/readme.txt", "not a checkpoint")
    files["other.zip"] = (b"", "is a zip archive without data.pkl, not a PyTorch checkpoint")
    for name, (_, expected) in files.items():
        path = tmp_path / name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(AutostError) as info:
                autost.load_official(path, "sdt-2-512-cifar10")
        message = str(info.value)
        assert message.startswith(f"{path} ") and expected in message, message
        assert message.endswith(
            "expected a file written by torch.save, e.g. of a model's state_dict"
        )
        assert "\n" not in message and not caught, (name, [str(w.message) for w in caught])
    # the CLI: our one line, nothing of torch's before it
    args = ["convert", str(tmp_path / "pickle4.pkl"), "--preset", "sdt-2-512-cifar10"]
    assert main([*args, "-o", str(tmp_path / "bundle")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autost: error:") and "plain pickle" in err
    assert not (tmp_path / "bundle").exists()


def test_cli_convert_set_reproduces_official_qkformer_at_batch_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "qkformer-4-384-cifar10"
    cfg = resolve_config(name, **SHRINK)
    config = tmp_path / "shrunk.json"
    cfg.to_json(config)
    ckpt = _save(random_state(official_rows(name, cfg)), tmp_path / "official.pth")
    bundle = tmp_path / "bundle"
    args = ["convert", str(ckpt), "--preset", str(config), "-o", str(bundle)]
    assert main([*args, "--set", "ssa_flat_proj_lif=true", "--set", "timesteps=3"]) == 0
    assert capsys.readouterr().out.strip() == str(bundle)
    model = autost.create_model(bundle).eval()
    assert model.config == cfg.replace(ssa_flat_proj_lif=True, timesteps=3)
    x = _inputs(cfg)
    assert x.shape[0] >= 2
    official = autost.load_official(ckpt, config, ssa_flat_proj_lif=True, timesteps=3).eval()
    per_sample = autost.load_official(ckpt, config, timesteps=3).eval()
    with torch.no_grad():
        assert torch.equal(model(x), official(x))
        assert not torch.equal(model(x), per_sample(x))  # the setting matters at batch 2
    provenance = autost.bundle.hub.read_bundle_config(bundle)[1]["provenance"]
    assert provenance["overrides"] == {"ssa_flat_proj_lif": True, "timesteps": 3}
    # a bad key or value is one line, and nothing is written
    for item, expected in (
        ("ssa_flat_proj=true", "did you mean 'ssa_flat_proj_lif'"),
        ("ssa_flat_proj_lif=yes", "ssa_flat_proj_lif: must be true or false, got 'yes'"),
        ("sdsa_dvs_pool=true", "sdsa_dvs_pool: only changes 'sdsa' attention layers"),
        ("embed_dim=32", "proj_conv.weight' has shape [8, 3, 3, 3], the official QKFormer"),
    ):
        out = tmp_path / "refused"
        assert main([*args[:-1], str(out), "--set", item]) == 2, item
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
        assert not out.exists()
    assert main(["convert", str(bundle), "--set", "timesteps=2", "-o", str(bundle)]) == 2
    assert "--set is for official checkpoints" in capsys.readouterr().err


def test_family_settings_that_no_official_model_of_the_family_has_are_refused(
    tmp_path: Path,
) -> None:
    name = "spikformer-4-384-cifar10"
    state = random_state(official_rows(name, resolve_config(name, **SHRINK)))
    with pytest.raises(AutostError, match="departs from official Spikformer") as info:
        autost.load_official(state, name, ssa_flat_proj_lif=True, **SHRINK)
    assert "\n" not in str(info.value)
    with pytest.raises(autost.ConfigError, match="sdsa_dvs_pool: only changes 'sdsa'"):
        autost.load_official(state, name, sdsa_dvs_pool=True, **SHRINK)
    qk = "qkformer-4-384-cifar10"
    qk_state = random_state(official_rows(qk, resolve_config(qk, **SHRINK)))
    assert autost.load_official(
        qk_state, qk, ssa_flat_proj_lif=True, **SHRINK
    ).config.ssa_flat_proj_lif


def test_the_spikformer_variant_is_read_from_the_checkpoints_keys(tmp_path: Path) -> None:
    # the ImageNet layout (Conv2d MLP) on two input channels: the config alone would say DVS
    imagenet = "spikformer-8-384-imagenet"
    cfg = resolve_config(imagenet, **SHRINK, in_channels=2)
    rows = official_rows(imagenet, cfg)
    state = random_state(rows)
    model = autost.load_official(state, imagenet, **SHRINK, in_channels=2).eval()
    x = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(model(x), by_hand(cfg, rows, state)(x))
    # the DVS layout (Conv1d MLP) on three input channels: the config alone would say ImageNet
    dvs = "spikformer-2-256-cifar10dvs"
    cfg = resolve_config(dvs, **SHRINK, in_channels=3)
    rows = official_rows(dvs, cfg)
    state = random_state(rows)
    model = autost.load_official(state, dvs, **SHRINK, in_channels=3).eval()
    x = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(model(x), by_hand(cfg, rows, state)(x))
    # a layout whose q/k/v biases the config does not have, or the other way round
    cifar = "spikformer-4-384-cifar10"
    cifar_state = random_state(official_rows(cifar, resolve_config(cifar, **SHRINK)))
    path = _save(cifar_state, tmp_path / "cifar.pth")
    with pytest.raises(AutostError) as info:
        autost.load_official(path, cifar, qkv_bias=False, **SHRINK)
    assert str(info.value) == (
        f"{path} has the official Spikformer (CIFAR) layout (nn.Linear q/k/v with biases), "
        f"but {cifar} has qkv_bias = false"
    )
    with pytest.raises(AutostError, match=r"\(ImageNet\) layout \(q/k/v without biases\), but"):
        autost.load_official(_imagenet_state(), imagenet, qkv_bias=True, **SHRINK)


def _imagenet_state() -> dict[str, torch.Tensor]:
    name = "spikformer-8-384-imagenet"
    return random_state(official_rows(name, resolve_config(name, **SHRINK)))


def test_the_dvs_mode_pools_the_configs_square_grid_and_refuses_other_inputs() -> None:
    cfg = resolve_config("sdt-2-256-cifar10dvs", embed_dim=64, image_size=16, timesteps=2)
    assert cfg.sdsa_dvs_pool and cfg.layer_sides == (4, 4)
    model = autost.create_model(cfg).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 2, 16, 16)).shape == (2, 10)
        # 16x24 is no square grid; 16x36 gives 36 tokens, a square number, on a 4x9 grid
        for height, width in ((16, 24), (16, 36), (24, 24)):
            with pytest.raises(AutostError) as info:
                model(torch.rand(1, 2, height, width))
            tokens = (height // 4) * (width // 4)
            assert str(info.value) == (
                f"sdsa_dvs_pool pools over the config's 4x4 token grid, but the input gives "
                f"{tokens} tokens: feed 16x16 images"
            )
