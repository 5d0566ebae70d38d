"""Official Spikformer, Spike-driven Transformer and QKFormer checkpoints as autost models.

:func:`load_official` maps an official checkpoint's state dict onto a preset's parameters and
buffers (BatchNorm running statistics included); :func:`convert` also writes the result as a
bundle folder that ``autost.create_model(folder)`` loads. Checkpoints load with
``weights_only=True``: nothing in them can run code (``argparse.Namespace``, which the official
training scripts store under ``"args"``, is the one class allowed besides tensors and plain
containers).

The official layout follows from the config (so shrunk presets work too): the stem names the
family; Spikformer's variant is read from the checkpoint's keys: CIFAR for ``nn.Linear``
projections (``*_linear``; its q/k/v have biases, so the config needs ``qkv_bias``), DVS for a
``Conv1d`` MLP, ImageNet for a ``Conv2d`` MLP (both with ``Conv1d`` attention without biases);
QKFormer's variant is its stem's. Official Spikformer runs SSA's output neuron per sample, so a
Spikformer config with ``ssa_flat_proj_lif`` is refused; official QKFormer needs it at batch
>= 2. Official 1x1 convolutions become our linear weights by dropping their trailing singleton
dimensions. Keys of modules the official code builds but never calls are dropped, and only
those: Spikformer's ``block.i.norm1``/``norm2`` LayerNorms and, in the DVS model,
``pos_embed`` and ``norm``; SDT's ``block.i.attn.talking_heads``.
A missing ``num_batches_tracked`` is tolerated (it only counts training steps).

Key names and shapes were read from ZK-Zhou/spikformer ``cifar10/model.py``,
``imagenet/model.py``, ``cifar10dvs/model.py``; BICLab/Spike-Driven-Transformer
``model/spikeformer.py``, ``module/sps.py``, ``module/ms_conv.py``; zhouchenlin2096/QKFormer
``cifar10/model.py``, ``cifar100/model.py``, ``imagenet/qkformer.py``, ``cifar10-dvs/model.py``,
``dvs128-gesture/model.py``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.model.network import SpikingTransformer, resolve_config

#: Keys under which training scripts store the state dict, in order of preference.
WRAPPER_KEYS = ("model", "state_dict", "model_ema", "state_dict_ema")
#: Prefixes that wrappers add to every key (DataParallel/DDP, ``torch.compile``).
KEY_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class _Pair:
    """An official module and ours; ``squeeze`` trailing 1s of a 1x1 conv used as a linear."""

    official: str
    ours: str
    squeeze: int = 0


@dataclass(frozen=True)
class Layout:
    """An official checkpoint layout: module pairs and the keys of never-called modules."""

    family: str
    pairs: tuple[_Pair, ...]
    unused: frozenset[str]


def _bn_conv(official: str, ours: str, conv: str, bn: str) -> list[_Pair]:
    """A conv and its BN: ``official.{conv}`` / ``official.{bn}`` to ``ours.conv``/``ours.bn``."""
    return [_Pair(f"{official}{conv}", f"{ours}conv"), _Pair(f"{official}{bn}", f"{ours}bn")]


def _linear_bn(official: str, ours: str, squeeze: int) -> list[_Pair]:
    """Official ``{official}_{linear|conv}`` + ``{official}_bn`` to our ``LinearBN`` ``ours``."""
    weight = "linear" if squeeze == 0 else "conv"
    return [
        _Pair(f"{official}_{weight}", f"{ours}.linear", squeeze),
        _Pair(f"{official}_bn", f"{ours}.bn"),
    ]


def _sps_stem(cfg: ArchConfig) -> list[_Pair]:
    """Spikformer / SDT ``patch_embed``: ``proj_conv``, ``proj_conv1`` ... and ``rpe_conv``."""
    pairs: list[_Pair] = []
    for i in range(len(cfg.stem_pooling)):
        tag = str(i) if i else ""
        pairs += [
            _Pair(f"patch_embed.proj_conv{tag}", f"stem.convs.{i}"),
            _Pair(f"patch_embed.proj_bn{tag}", f"stem.bns.{i}"),
        ]
    return [
        *pairs,
        _Pair("patch_embed.rpe_conv", "stem.rpe_conv"),
        _Pair("patch_embed.rpe_bn", "stem.rpe_bn"),
    ]


def _spikformer_variant(cfg: ArchConfig, state: Mapping[str, Any] | None) -> str:
    """``cifar`` (``nn.Linear``), ``dvs`` (``Conv1d`` MLP) or ``imagenet`` (``Conv2d`` MLP), read
    from the checkpoint's keys; without them (or where they tell nothing) from the config."""
    if state is not None:
        if any(k.startswith("block.") and "_linear." in k for k in state):
            return "cifar"
        fc1 = state.get("block.0.mlp.fc1_conv.weight")
        if isinstance(fc1, Tensor) and fc1.dim() in (3, 4):
            return "dvs" if fc1.dim() == 3 else "imagenet"
    return "cifar" if cfg.qkv_bias else "dvs" if cfg.in_channels == 2 else "imagenet"


def _spikformer(cfg: ArchConfig, state: Mapping[str, Any] | None, name: str, source: str) -> Layout:
    variant = _spikformer_variant(cfg, state)
    if cfg.qkv_bias != (variant == "cifar"):  # only CIFAR's nn.Linear q/k/v have biases
        has = "nn.Linear q/k/v with biases" if variant == "cifar" else "q/k/v without biases"
        raise AutostError(
            f"{source} has the official Spikformer ({_VARIANT_NAMES[variant]}) layout "
            f"({has}), but {name} has qkv_bias = {str(cfg.qkv_bias).lower()}"
        )
    attn_squeeze = 0 if variant == "cifar" else 1  # nn.Linear, else Conv1d
    mlp_squeeze = {"cifar": 0, "dvs": 1, "imagenet": 2}[variant]  # Linear, Conv1d, Conv2d
    pairs = _sps_stem(cfg)
    unused: set[str] = set()
    for i in range(cfg.depth):
        for p in ("q", "k", "v", "proj"):
            pairs += _linear_bn(f"block.{i}.attn.{p}", f"blocks.{i}.attn.{p}", attn_squeeze)
        for fc in ("fc1", "fc2"):
            pairs += _linear_bn(f"block.{i}.mlp.{fc}", f"blocks.{i}.mlp.{fc}", mlp_squeeze)
        unused |= {f"block.{i}.{n}.{w}" for n in ("norm1", "norm2") for w in ("weight", "bias")}
    if variant == "dvs":
        unused |= {"pos_embed", "norm.weight", "norm.bias"}
    family = f"Spikformer ({_VARIANT_NAMES[variant]})"
    return Layout(family, (*pairs, _Pair("head", "head")), frozenset(unused))


_VARIANT_NAMES = {"cifar": "CIFAR", "dvs": "DVS", "imagenet": "ImageNet"}


def _sdt(cfg: ArchConfig) -> Layout:
    pairs = _sps_stem(cfg)
    for i in range(cfg.depth):
        for p in ("q", "k", "v", "proj"):
            pairs += _linear_bn(f"block.{i}.attn.{p}", f"blocks.{i}.attn.{p}", 2)
        for fc in ("fc1", "fc2"):
            pairs += _linear_bn(f"block.{i}.mlp.{fc}", f"blocks.{i}.mlp.{fc}", 2)
    unused = frozenset(f"block.{i}.attn.talking_heads.weight" for i in range(cfg.depth))
    return Layout("Spike-driven Transformer", (*pairs, _Pair("head", "head")), unused)


#: QKFormer variant -> (stem conv names, downsampling's first conv/BN names, SSA name, MLP names)
_QK_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, str], str, tuple[str, str]]] = {
    "qk-cifar": (("proj", "proj1"), ("proj3_conv", "proj3_bn"), "ssa", ("mlp1", "mlp2")),
    "qk-imagenet": (("proj", "proj1", "proj2"), ("proj3_conv", "proj3_bn"), "attn", ("fc1", "fc2")),
    "qk-dvs": (
        ("proj", "proj1", "proj2", "proj3"),
        ("proj_conv", "proj_bn"),
        "ssa",
        ("mlp1", "mlp2"),
    ),
}


def _qkformer(cfg: ArchConfig) -> Layout:
    convs, (down_conv, down_bn), ssa, (mlp1, mlp2) = _QK_NAMES[cfg.stem]
    pairs: list[_Pair] = []
    for i, name in enumerate(convs):
        pairs += [
            _Pair(f"patch_embed1.{name}_conv", f"stem.convs.{i}"),
            _Pair(f"patch_embed1.{name}_bn", f"stem.bns.{i}"),
        ]
    pairs += [
        _Pair("patch_embed1.proj_res_conv", "stem.res_conv"),
        _Pair("patch_embed1.proj_res_bn", "stem.res_bn"),
    ]
    block = 0
    for stage, count in enumerate(cfg.stages):
        if stage > 0:
            src, dst = f"patch_embed{stage + 1}", f"downsample.{stage - 1}"
            pairs += [
                _Pair(f"{src}.{down_conv}", f"{dst}.conv1"),
                _Pair(f"{src}.{down_bn}", f"{dst}.bn1"),
                _Pair(f"{src}.proj4_conv", f"{dst}.conv2"),
                _Pair(f"{src}.proj4_bn", f"{dst}.bn2"),
                _Pair(f"{src}.proj_res_conv", f"{dst}.res_conv"),
                _Pair(f"{src}.proj_res_bn", f"{dst}.res_bn"),
            ]
        for j in range(count):
            src, dst = f"stage{stage + 1}.{j}", f"blocks.{block}"
            token = cfg.attention[block] == "qk-token"
            attn = "tssa" if token else ssa
            for p in ("q", "k", "proj") if token else ("q", "k", "v", "proj"):
                pairs += _linear_bn(f"{src}.{attn}.{p}", f"{dst}.attn.{p}", 1)  # Conv1d
            pairs += _linear_bn(f"{src}.mlp.{mlp1}", f"{dst}.mlp.fc1", 2)  # Conv2d
            pairs += _linear_bn(f"{src}.mlp.{mlp2}", f"{dst}.mlp.fc2", 2)
            block += 1
    return Layout("QKFormer", (*pairs, _Pair("head", "head")), frozenset())


def _check_official(cfg: ArchConfig, name: str) -> None:
    """Refuse configs that compute something no official model computes."""
    if cfg.stem == "sps":
        attention, shortcut = {"ssa"}, "spike"
    elif cfg.stem == "sps-membrane":
        attention, shortcut = {"sdsa"}, "membrane"
    else:
        attention, shortcut = {"qk-token", "ssa"}, "spike"
    checks: list[tuple[str, Any, bool]] = [
        ("coding", cfg.coding, cfg.coding == "direct"),
        ("mlp", cfg.mlp, cfg.mlp == "mlp"),
        ("tim", cfg.tim, not cfg.tim),
        ("neuron.kind", cfg.neuron.kind, cfg.neuron.kind == "lif"),
        ("shortcut", cfg.shortcut, cfg.shortcut == shortcut),
    ]
    checks += [(f"attention[{i}]", a, a in attention) for i, a in enumerate(cfg.attention)]
    for field, value, ok in checks:
        if not ok:
            raise AutostError(
                f"{name} has no official checkpoint layout ({field} = {value!r}); "
                "official checkpoints load into the spikformer-*, sdt-* and qkformer-* presets"
            )
    if cfg.stem == "sps" and cfg.ssa_flat_proj_lif:
        raise AutostError(
            f"{name}: ssa_flat_proj_lif = true departs from official Spikformer, whose SSA runs "
            "its output neuron per sample (only official QKFormer flattens it); leave it false"
        )


def official_layout(
    cfg: ArchConfig,
    name: str = "the config",
    state: Mapping[str, Any] | None = None,
    source: str = "the checkpoint",
) -> Layout:
    """The official checkpoint layout of ``cfg`` (an official preset, possibly shrunk); the
    official ``state`` dict (read from ``source``), when given, picks Spikformer's variant by
    its keys."""
    _check_official(cfg, name)
    if cfg.stem == "sps":
        return _spikformer(cfg, state, name, source)
    if cfg.stem == "sps-membrane":
        return _sdt(cfg)
    return _qkformer(cfg)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _key_table(
    layout: Layout, ours: Mapping[str, Tensor], name: str
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Official key -> (our key, official shape), in the official module order."""
    table: dict[str, tuple[str, tuple[int, ...]]] = {}
    covered: set[str] = set()
    for pair in layout.pairs:
        prefix = pair.ours + "."
        for key, value in ours.items():
            if key.startswith(prefix):
                suffix = key[len(prefix) :]
                shape = tuple(value.shape)
                if suffix == "weight":
                    shape += (1,) * pair.squeeze
                table[f"{pair.official}.{suffix}"] = (key, shape)
                covered.add(key)
    uncovered = next((k for k in ours if k not in covered), None)
    if uncovered is not None:  # a preset whose blocks the layout above does not know
        raise AutostError(f"{name}: parameter {uncovered!r} has no official checkpoint counterpart")
    return table


#: What a checkpoint file should be, for the one-line refusals of anything else.
_EXPECTED = "expected a file written by torch.save, e.g. of a model's state_dict"
#: The first pickle of a checkpoint that torch.save wrote in its legacy (pre-1.6) format.
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def _load_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with user errors as one-line :class:`AutostError`
    and torch's own warnings (about pickle protocols, for instance) silenced."""
    import argparse

    if not path.is_file():
        raise AutostError(f"no such checkpoint file: {path}")
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if allow is None:
                return torch.load(path, map_location="cpu", weights_only=True)
            with allow([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused globals, truncated archives, not a checkpoint at all
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((ln for ln in lines if "GLOBAL" in ln.upper()), None)
        if reason is not None:  # a class or function that unpickling would have to call
            raise AutostError(
                f"{path}: refused: the checkpoint holds more than tensors and plain containers "
                f"and weights-only loading does not run code ({reason})"
            ) from exc
        raise AutostError(_not_a_checkpoint(path)) from exc


def _not_a_checkpoint(path: Path) -> str:
    """Why ``path``, which ``torch.load`` refused, is no checkpoint: what the file is instead."""
    with path.open("rb") as handle:
        head = handle.read(len(_LEGACY_MAGIC))
    if not head:
        return f"{path} is empty, not a PyTorch checkpoint: {_EXPECTED}"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return (
                f"{path} is a truncated or damaged zip archive, not a readable PyTorch "
                f"checkpoint (was it copied whole?): {_EXPECTED}"
            )
        if not any(name.endswith("/data.pkl") for name in names):
            return (
                f"{path} is a zip archive without data.pkl, not a PyTorch checkpoint: {_EXPECTED}"
            )
        return (
            f"{path} is a damaged PyTorch checkpoint (a zip archive whose records do not "
            f"read back; was it copied whole?): {_EXPECTED}"
        )
    if head.startswith(_LEGACY_MAGIC):
        return (
            f"{path} is a truncated or damaged PyTorch checkpoint of torch.save's legacy "
            f"format: {_EXPECTED}"
        )
    if _is_pickle(path):
        return f"{path} is a plain pickle, not a PyTorch checkpoint: {_EXPECTED}"
    kind = "neither a zip archive nor a whole pickle"
    return f"{path} is not a PyTorch checkpoint ({kind}): {_EXPECTED}"


def _is_pickle(path: Path) -> bool:
    """Whether ``path`` holds a whole pickle; its opcodes are read, nothing is run."""
    import pickletools

    with path.open("rb") as handle:
        try:
            return any(op.name == "STOP" for op, _, _ in pickletools.genops(handle))
        except (ValueError, EOFError, UnicodeDecodeError):
            return False


def _state_dict(obj: Any, source: str) -> dict[str, Any]:
    """The state dict inside ``obj``: unwrapped from training-script dicts, prefixes removed."""
    while isinstance(obj, Mapping):
        inner = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = obj[inner]
    if not isinstance(obj, Mapping) or not obj:
        raise AutostError(
            f"{source}: holds no state dict (a mapping of tensors, bare or under "
            f"{', '.join(repr(k) for k in WRAPPER_KEYS)})"
        )
    state = {str(k): v for k, v in obj.items()}
    stripped = True
    while stripped:
        stripped = False
        for prefix in KEY_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _mapped(
    state: Mapping[str, Any],
    table: Mapping[str, tuple[str, tuple[int, ...]]],
    layout: Layout,
    ours: Mapping[str, Tensor],
    source: str,
    name: str,
) -> dict[str, Tensor]:
    """Our state dict from the official ``state``; the first key that does not fit raises."""
    where = f"the official {layout.family} layout of {name}"
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in layout.unused:
            continue
        if key not in table:
            raise AutostError(f"{source}: unexpected key {key!r} for {where}")
        if not isinstance(value, Tensor):
            raise AutostError(f"{source}: key {key!r} is a {type(value).__name__}, not a tensor")
        our_key, shape = table[key]
        if tuple(value.shape) != shape:
            raise AutostError(
                f"{source}: key {key!r} has shape {_shape(tuple(value.shape))}, "
                f"{where} expects {_shape(shape)}"
            )
        out[our_key] = value.reshape(ours[our_key].shape)
    for key, (our_key, _) in table.items():
        if our_key in out:
            continue
        if not key.endswith(".num_batches_tracked"):
            raise AutostError(f"{source}: missing key {key!r} of {where}")
        out[our_key] = ours[our_key]
    return out


def _preset_name(preset: Any) -> str:
    if isinstance(preset, (str, os.PathLike)):
        return str(preset)
    return "the config"


def load_official(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], preset: Any, **overrides: Any
) -> SpikingTransformer:
    """An official Spikformer, SDT or QKFormer checkpoint as the model of ``preset``.

    ``checkpoint`` is a file (loaded with ``weights_only=True``) or an already loaded
    state dict, bare or under ``"model"``, ``"state_dict"`` or ``"model_ema"``, with or without
    DataParallel's ``module.`` prefix. ``preset`` is what :func:`autost.create_model` takes
    (a preset name, an ``ArchConfig``, a dict or a JSON path); ``overrides`` replace config
    fields that leave the parameters alone (``image_size``, ``timesteps``, ...).
    A checkpoint that does not fit raises :class:`AutostError` naming the first missing,
    unexpected or misshapen key. The model is returned in training mode, like
    ``create_model``: call ``.eval()`` for inference.

    QKFormer's official SSA runs its output neuron over the flattened time x batch axis, so
    its outputs at batch >= 2 depend on the other samples; the presets keep per-sample
    dynamics. Pass ``ssa_flat_proj_lif=True`` to reproduce the official outputs bit for bit
    (official Spikformer runs it per sample: a Spikformer config with it is refused).
    """
    return _load(checkpoint, preset, overrides)[0]


def _load(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    preset: Any,
    overrides: Mapping[str, Any],
) -> tuple[SpikingTransformer, Layout]:
    """:func:`load_official`'s model and the official layout its checkpoint had."""
    name = _preset_name(preset)
    cfg = resolve_config(preset, **overrides)
    _check_official(cfg, name)  # before reading a file that could not fit anyway
    if isinstance(checkpoint, Mapping):
        source, raw = "checkpoint", checkpoint
    else:
        source, raw = str(checkpoint), _load_file(Path(checkpoint))
    official = _state_dict(raw, source)
    layout = official_layout(cfg, name, official, source)
    model = SpikingTransformer(cfg)
    ours = model.state_dict()
    table = _key_table(layout, ours, name)
    state = _mapped(official, table, layout, ours, source, name)
    model.load_state_dict(state, strict=True)
    return model, layout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(
    checkpoint: str | os.PathLike[str],
    preset: Any,
    bundle: str | os.PathLike[str],
    **overrides: Any,
) -> Path:
    """Write official ``checkpoint`` as a Hub-ready bundle folder (``config.json``,
    ``model.safetensors`` and a ``README.md`` model card, the layout of ``autost run``'s
    export) that ``autost.create_model(bundle)`` loads; returns the folder. ``overrides``
    are config fields, as for :func:`load_official` (``ssa_flat_proj_lif=True`` for official
    QKFormer outputs at batch >= 2); the bundle's config keeps them. The checkpoint is
    checked whole before anything is written; each file is written atomically."""
    from autost.bundle.hub import save_bundle
    from autost.version import __version__

    source, folder = Path(checkpoint), Path(bundle)
    if folder.exists() and not folder.is_dir():
        raise AutostError(f"{folder} is a file, not a folder")
    model, layout = _load(source, preset, overrides)
    provenance = {
        "converted_from": str(source),
        "sha256": _sha256(source),
        "preset": _preset_name(preset),
        "overrides": {k: v for k, v in model.config.to_dict().items() if k in overrides},
        "official_layout": layout.family,
        "versions": {"autost": __version__, "torch": torch.__version__},
        "converted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return save_bundle(model, folder, provenance)
