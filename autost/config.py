"""``ArchConfig``: a whole spiking transformer as data.

One frozen dataclass describes the input, the temporal coding, the stem, the encoder
(per-layer heads, MLP ratio and attention type), the shortcut kind, the neurons and the
optional modules (TIM, SEMM).
It round-trips through JSON with a schema version, and :meth:`ArchConfig.validate` (run on
construction) raises :class:`autost.ConfigError` naming the offending field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autost.errors import AutostError, ConfigError

SCHEMA_VERSION = 1

#: Attention mechanisms (see :mod:`autost.blocks.attention`).
ATTENTION_TYPES = ("ssa", "sdsa", "qk-token", "qk-channel", "semm")
#: Channel mixers after the attention: the plain spiking MLP or SEMM's experts-mixture EMSP.
MLP_TYPES = ("mlp", "emsp")
#: Input coding in front of the stem: direct (repeat the image T times) or GAC.
CODINGS = ("direct", "gac")
SHORTCUTS = ("spike", "membrane")
NEURON_KINDS = ("lif", "plif")
SURROGATES = ("sigmoid", "atan")

#: Stems. ``stem_pooling`` has one flag per stem convolution: 1 = a 3x3/stride-2 max-pool there.
#: The QKFormer stems also downsample 2x at every stage transition after the first stage.
STEM_POOLING_DEFAULTS: dict[str, str] = {
    "sps": "0011",  # Spikformer SPS (CIFAR pattern; ImageNet and DVS use "1111")
    "sps-membrane": "0011",  # Spike-driven Transformer's SPS with membrane shortcut
    "qk-cifar": "00",  # QKFormer CIFAR: two 3x3 convs, 1x1 deformed shortcut, no pooling
    "qk-imagenet": "110",  # QKFormer ImageNet: three 3x3 convs, shortcut with stride 2
    "qk-dvs": "0111",  # QKFormer DVS: four 3x3 convs, shortcut from conv 2 with stride 4
}
STEMS = tuple(STEM_POOLING_DEFAULTS)


def _is_hierarchical(stem: str) -> bool:
    return stem.startswith("qk-")


@dataclass(frozen=True)
class NeuronConfig:
    """Spiking neuron settings shared by every neuron of the network.

    ``threshold`` is the firing threshold of ordinary neurons; ``attn_threshold`` that of the
    neurons after attention products (0.5 in Spikformer, SDT and QKFormer). ``alpha`` of ``None``
    means the surrogate's default (4 for sigmoid, 2 for atan).
    """

    kind: str = "lif"
    tau: float = 2.0
    threshold: float = 1.0
    attn_threshold: float = 0.5
    surrogate: str = "sigmoid"
    alpha: float | None = None
    detach_reset: bool = True

    def validate(self) -> None:
        """Raise :class:`ConfigError` (field ``neuron.<name>``) on a bad value."""
        if self.kind not in NEURON_KINDS:
            raise ConfigError("neuron.kind", _unknown(self.kind, NEURON_KINDS))
        if self.surrogate not in SURROGATES:
            raise ConfigError("neuron.surrogate", _unknown(self.surrogate, SURROGATES))
        if not (math.isfinite(self.tau) and self.tau >= 1.0):
            raise ConfigError("neuron.tau", f"must be a finite number >= 1, got {self.tau}")
        for name in ("threshold", "attn_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"neuron.{name}", f"must be a finite number > 0, got {value}")
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError("neuron.alpha", f"must be > 0 or null, got {self.alpha}")


@dataclass(frozen=True)
class ArchConfig:
    """The whole architecture of a spiking transformer.

    Per-layer fields (``num_heads``, ``mlp_ratios``, ``attention``) hold one entry per encoder
    block; a single value is broadcast to every layer. ``stages`` splits the blocks of a
    hierarchical (QKFormer) network into stages whose widths double up to ``embed_dim``; it is
    empty for single-stage stems. A built model keeps its config as ``model.config``.
    """

    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    timesteps: int = 4
    coding: str = "direct"
    stem: str = "sps"
    stem_pooling: str = ""
    embed_dim: int = 384
    depth: int = 4
    num_heads: tuple[int, ...] = (12,)
    mlp_ratios: tuple[float, ...] = (4.0,)
    attention: tuple[str, ...] = ("ssa",)
    stages: tuple[int, ...] = ()
    mlp: str = "mlp"
    shortcut: str = "spike"
    qkv_bias: bool = False
    attn_scale: float = 0.125
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    tim: bool = False
    tim_kernel: int = 5
    tim_alpha: float = 0.5
    num_experts: int = 4

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.neuron, Mapping):
            set_(self, "neuron", _neuron_from_dict(self.neuron))
        depth = self.depth if isinstance(self.depth, int) and self.depth > 0 else 0
        for name in ("num_heads", "mlp_ratios", "attention", "stages"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                value = (value,) * depth if name != "stages" else (value,)
            elif isinstance(value, Sequence):
                value = tuple(value)
                if len(value) == 1 and depth > 1 and name != "stages":
                    value = value * depth
            set_(self, name, value)
        if isinstance(self.mlp_ratios, tuple):
            set_(self, "mlp_ratios", tuple(_as_float(r) for r in self.mlp_ratios))
        if self.stem_pooling == "" and self.stem in STEM_POOLING_DEFAULTS:
            set_(self, "stem_pooling", STEM_POOLING_DEFAULTS[self.stem])
        if (
            self.stages == ()
            and _is_hierarchical(self.stem)
            and isinstance(self.depth, int)
            and self.depth >= 3
        ):
            set_(self, "stages", (1, 1, self.depth - 2))
        self.validate()

    # ------------------------------------------------------------------ derived shapes
    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Width of each stage (one stage for non-hierarchical stems)."""
        n = max(len(self.stages), 1)
        return tuple(self.embed_dim >> (n - 1 - i) for i in range(n))

    @property
    def layer_dims(self) -> tuple[int, ...]:
        """Width of every encoder block."""
        if not self.stages:
            return (self.embed_dim,) * self.depth
        dims: list[int] = []
        for width, count in zip(self.stage_dims, self.stages, strict=True):
            dims.extend([width] * count)
        return tuple(dims)

    @property
    def stem_stride(self) -> int:
        """Total downsampling factor of the stem (first stage resolution)."""
        return 2 ** self.stem_pooling.count("1")

    @property
    def total_stride(self) -> int:
        """Downsampling from the input image to the last stage's token grid."""
        return self.stem_stride * 2 ** max(len(self.stages) - 1, 0)

    @property
    def num_tokens(self) -> int:
        """Tokens per sample in the last stage."""
        side = self.image_size // self.total_stride
        return side * side

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one."""
        for name in ("in_channels", "image_size", "num_classes", "embed_dim", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"must be a positive integer, got {value!r}")
        if not isinstance(self.timesteps, int) or isinstance(self.timesteps, bool):
            raise ConfigError("timesteps", f"must be an integer, got {self.timesteps!r}")
        if self.timesteps < 1:
            raise ConfigError("timesteps", f"must be >= 1, got {self.timesteps}")
        if self.coding not in CODINGS:
            raise ConfigError("coding", _unknown(self.coding, CODINGS))
        if self.stem not in STEMS:
            raise ConfigError("stem", _unknown(self.stem, STEMS))
        if self.mlp not in MLP_TYPES:
            raise ConfigError("mlp", _unknown(self.mlp, MLP_TYPES))
        if self.shortcut not in SHORTCUTS:
            raise ConfigError("shortcut", _unknown(self.shortcut, SHORTCUTS))
        if not isinstance(self.neuron, NeuronConfig):
            raise ConfigError("neuron", "must be a NeuronConfig or a mapping")
        self.neuron.validate()
        self._validate_stem()
        self._validate_layers()
        if not (math.isfinite(self.attn_scale) and self.attn_scale > 0):
            raise ConfigError("attn_scale", f"must be > 0, got {self.attn_scale}")
        if not isinstance(self.tim_kernel, int) or self.tim_kernel < 1 or self.tim_kernel % 2 == 0:
            raise ConfigError(
                "tim_kernel", f"must be a positive odd integer, got {self.tim_kernel}"
            )
        if not 0.0 <= self.tim_alpha <= 1.0:
            raise ConfigError("tim_alpha", f"must be in [0, 1], got {self.tim_alpha}")
        if not isinstance(self.num_experts, int) or self.num_experts < 1:
            raise ConfigError("num_experts", f"must be a positive integer, got {self.num_experts}")

    def _validate_stem(self) -> None:
        expected_len = len(STEM_POOLING_DEFAULTS[self.stem])
        pooling = self.stem_pooling
        if (
            not isinstance(pooling, str)
            or len(pooling) != expected_len
            or set(pooling) - {"0", "1"}
        ):
            raise ConfigError(
                "stem_pooling",
                f"stem {self.stem!r} needs {expected_len} flags of '0'/'1', got {pooling!r}",
            )
        hierarchical = _is_hierarchical(self.stem)
        if hierarchical:
            if not self.stages or any(not isinstance(s, int) or s < 1 for s in self.stages):
                raise ConfigError("stages", f"needs positive block counts, got {self.stages!r}")
            if sum(self.stages) != self.depth:
                raise ConfigError(
                    "stages", f"block counts {self.stages} must sum to depth {self.depth}"
                )
        elif self.stages not in ((), (self.depth,)):
            raise ConfigError("stages", f"stem {self.stem!r} has one stage; got {self.stages!r}")
        # The stem's convolutions split the width: SPS uses D/8, D/4, D/2; QKFormer halves the
        # width per stage and its first stage's stem uses up to 1/8 of that stage's width.
        divisor = {"qk-cifar": 2, "qk-imagenet": 2, "qk-dvs": 8}.get(self.stem, 8)
        divisor <<= max(len(self.stages) - 1, 0)
        if self.embed_dim % divisor:
            raise ConfigError(
                "embed_dim",
                f"stem {self.stem!r} with {max(len(self.stages), 1)} stage(s) splits the width "
                f"by {divisor}; {self.embed_dim} is not divisible by it",
            )
        stride = self.total_stride
        if self.image_size % stride:
            raise ConfigError(
                "image_size",
                f"stem {self.stem!r} (pooling {pooling!r}) downsamples by {stride}; "
                f"{self.image_size} is not divisible by it",
            )

    def _validate_layers(self) -> None:
        for name in ("num_heads", "mlp_ratios", "attention"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != self.depth:
                raise ConfigError(
                    name, f"needs one entry per layer (depth {self.depth}), got {value!r}"
                )
        for i, (dim, heads, ratio, attn) in enumerate(
            zip(self.layer_dims, self.num_heads, self.mlp_ratios, self.attention, strict=True)
        ):
            if attn not in ATTENTION_TYPES:
                raise ConfigError(f"attention[{i}]", _unknown(str(attn), ATTENTION_TYPES))
            if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
                raise ConfigError(f"num_heads[{i}]", f"must be a positive integer, got {heads!r}")
            if dim % heads:
                raise ConfigError(
                    f"num_heads[{i}]", f"{heads} heads do not divide the layer width {dim}"
                )
            if not (math.isfinite(ratio) and ratio > 0 and int(dim * ratio) >= 1):
                raise ConfigError(f"mlp_ratios[{i}]", f"must be > 0, got {ratio}")
            if attn == "semm" and dim % self.num_experts:
                raise ConfigError(
                    "num_experts", f"{self.num_experts} experts do not divide the width {dim}"
                )
            if self.mlp == "emsp" and int(dim * ratio) % 2:
                raise ConfigError(
                    f"mlp_ratios[{i}]",
                    f"EMSP splits the hidden width {int(dim * ratio)} into experts and router "
                    "halves; it must be even",
                )
        if self.coding == "gac" and self.timesteps < 2:
            raise ConfigError("coding", "gac's temporal attention needs timesteps >= 2")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict, including ``schema_version``."""
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return {"schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchConfig:
        """Build from a dict (as written by :meth:`to_dict`); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ConfigError("config", f"expected a mapping, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ConfigError(
                "schema_version", f"unsupported version {version!r} (this autost reads 1)"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(unknown[0], _unknown(unknown[0], tuple(sorted(names))))
        try:
            return cls(**data)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError("config", str(exc)) from exc

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int = 2) -> str:
        """Serialise to JSON; when ``path`` is given also write it there atomically."""
        text = json.dumps(self.to_dict(), indent=indent) + "\n"
        if path is not None:
            from autost.io import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> ArchConfig:
        """Parse JSON text, or read it from a path."""
        text = str(text_or_path)
        if isinstance(text_or_path, os.PathLike) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise AutostError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AutostError(f"malformed config JSON: {exc}") from exc
        if isinstance(data, Mapping) and "config" in data and "in_channels" not in data:
            data = data["config"]  # an export bundle or best.json wraps the config
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> ArchConfig:
        """A copy with ``changes`` applied (per-layer fields broadcast as in the constructor)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "neuron" in changes and isinstance(changes["neuron"], Mapping):
            changes["neuron"] = dataclasses.replace(self.neuron, **changes["neuron"])
        depth_changed = "depth" in changes and changes["depth"] != self.depth
        data.update(changes)
        if depth_changed:
            # Re-broadcast per-layer fields that were uniform and not given explicitly.
            for name in ("num_heads", "mlp_ratios", "attention"):
                value = data[name]
                if name not in changes and len(set(value)) == 1:
                    data[name] = value[0]
            if "stages" not in changes:
                data["stages"] = ()
        if "stem" in changes and "stem_pooling" not in changes:
            data["stem_pooling"] = ""
        return ArchConfig(**data)


def _neuron_from_dict(data: Mapping[str, Any]) -> NeuronConfig:
    names = {f.name for f in dataclasses.fields(NeuronConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"neuron.{unknown[0]}", _unknown(unknown[0], tuple(sorted(names))))
    return NeuronConfig(**data)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("mlp_ratios", f"must be numbers, got {value!r}")
    return float(value)


def _unknown(name: str, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown value {name!r}{hint} (choices: {', '.join(choices)})"
