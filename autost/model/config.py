"""``ArchConfig``: a whole spiking transformer as data.

One frozen dataclass describes the input, the temporal coding, the stem, the encoder
(per-layer heads, MLP ratio and attention type), the shortcut kind, the neurons and the
optional modules (TIM, SEMM).
It round-trips through JSON with a schema version, and :meth:`ArchConfig.validate` (run on
construction) raises :class:`autost.ConfigError` naming the offending field. The fields'
vocabulary, the neuron settings and the rules one field obeys alone (:func:`check_field`) are
in :mod:`autost.model.fields`, re-exported here; ``validate`` adds the rules between fields.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autost.errors import AutostError, ConfigError
from autost.model.fields import (
    ATTENTION_TYPES,
    CODINGS,
    MLP_TYPES,
    NEURON_KINDS,
    PER_LAYER_FIELDS,
    REQUIRED_FIELDS,
    SHORTCUTS,
    STEM_POOLING_DEFAULTS,
    STEMS,
    SURROGATES,
    NeuronConfig,
    _is_number,
    _neuron_from_dict,
    _unknown,
    check_field,
    check_layer_entry,
)

SCHEMA_VERSION = 1
#: ``schema_version`` of the files that wrap a config under ``"config"`` (bundles' config.json,
#: best.json, train.json, exported configs); :meth:`ArchConfig.from_json` refuses any other.
WRAPPER_SCHEMA_VERSION = 1


def _is_hierarchical(stem: str) -> bool:
    return stem.startswith("qk-")


@dataclass(frozen=True)
class ArchConfig:
    """The whole architecture of a spiking transformer.

    Per-layer fields (``num_heads``, ``mlp_ratios``, ``attention``) hold one entry per encoder
    block; a single value is broadcast to every layer. ``stages`` splits the blocks of a
    hierarchical (QKFormer) network into stages whose widths double up to ``embed_dim``; it is
    empty for single-stage stems. A built model keeps its config as ``model.config``.

    Two settings reproduce official forward passes (see :mod:`autost.model.blocks.attention`):
    ``sdsa_dvs_pool`` adds the Spike-driven Transformer's parameter-free 3x3 max-pools to SDSA
    (its CIFAR10-DVS "DVS mode"); ``ssa_flat_proj_lif`` runs SSA's output neuron over the
    flattened ``T*B`` axis as every official QKFormer does, so that its membrane carries from
    one sample to the next (off: per-sample dynamics, equal to it at batch 1). Each is
    refused on a config without a layer of that attention type (``ssa_flat_proj_lif`` also
    needs spike shortcuts). Official Spikformer runs SSA's output neuron per sample:
    ``ssa_flat_proj_lif`` on a Spikformer departs from it (``load_official`` refuses it there).
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
    sdsa_dvs_pool: bool = False
    ssa_flat_proj_lif: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.neuron, Mapping):
            set_(self, "neuron", _neuron_from_dict(self.neuron))
        depth = self.depth if isinstance(self.depth, int) and self.depth > 0 else 0
        for name in (*PER_LAYER_FIELDS, "stages"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                value = (value,) * depth if name != "stages" else (value,)
            elif isinstance(value, Sequence):
                value = tuple(value)
                if len(value) == 1 and depth > 1 and name != "stages":
                    value = value * depth
            set_(self, name, value)
        if isinstance(self.mlp_ratios, tuple):  # non-numbers are left for validate() to name
            ratios = (float(r) if _is_number(r) else r for r in self.mlp_ratios)
            set_(self, "mlp_ratios", tuple(ratios))
        stem = self.stem if isinstance(self.stem, str) else ""
        if self.stem_pooling == "" and stem in STEM_POOLING_DEFAULTS:
            set_(self, "stem_pooling", STEM_POOLING_DEFAULTS[stem])
        if (
            self.stages == ()
            and _is_hierarchical(stem)
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
    def layer_sides(self) -> tuple[int, ...]:
        """Side of the square token grid every encoder block works on (the grid halves at
        each stage transition; ``validate`` makes every side a whole number)."""
        side = self.image_size // self.stem_stride
        if not self.stages:
            return (side,) * self.depth
        sides: list[int] = []
        for stage, count in enumerate(self.stages):
            sides.extend([side >> stage] * count)
        return tuple(sides)

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
        for f in dataclasses.fields(self):
            check_field(f.name, getattr(self, f.name))
        self._validate_stem()
        self._validate_layers()

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
            if not self.stages:
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
        for name in PER_LAYER_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) != self.depth:
                raise ConfigError(
                    name, f"needs one entry per layer (depth {self.depth}), got {value!r}"
                )
        for i, (dim, heads, ratio, attn) in enumerate(
            zip(self.layer_dims, self.num_heads, self.mlp_ratios, self.attention, strict=True)
        ):
            if dim % heads:
                raise ConfigError(
                    f"num_heads[{i}]", f"{heads} heads do not divide the layer width {dim}"
                )
            if int(dim * ratio) < 1:
                raise ConfigError(
                    f"mlp_ratios[{i}]", f"{ratio} times the layer width {dim} leaves no hidden unit"
                )
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
        self._validate_family_settings()

    def _validate_family_settings(self) -> None:
        """Settings of one attention type need a layer of that type to change anything."""
        kinds = ", ".join(sorted(set(self.attention)))
        for name, kind in (("ssa_flat_proj_lif", "ssa"), ("sdsa_dvs_pool", "sdsa")):
            if getattr(self, name) and kind not in self.attention:
                raise ConfigError(
                    name,
                    f"only changes {kind!r} attention layers and this config has none "
                    f"(attention: {kinds}); leave it false",
                )
        if self.ssa_flat_proj_lif and self.shortcut != "spike":
            raise ConfigError(
                "ssa_flat_proj_lif",
                f"only changes the output neuron of spike shortcuts; shortcut "
                f"{self.shortcut!r} has none; leave it false",
            )

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
        """Build from a dict (as written by :meth:`to_dict`). Unknown keys and missing
        :data:`REQUIRED_FIELDS` are errors; other fields take their defaults."""
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
        missing = [name for name in REQUIRED_FIELDS if name not in data]
        if missing:
            raise ConfigError(
                missing[0],
                f"config is missing required field{'s' if len(missing) > 1 else ''} "
                + ", ".join(repr(name) for name in missing),
            )
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
        """Parse JSON text, or read it from a path (a file may also wrap the config under
        ``"config"``, as export bundles, best.json and train.json do)."""
        text = str(text_or_path)
        path: Path | None = None
        source = "config JSON text"
        if isinstance(text_or_path, os.PathLike) or not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            source = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise AutostError(f"cannot read config file {path}: {reason}") from exc
            except UnicodeDecodeError:
                raise AutostError(f"{path}: malformed config JSON: not UTF-8 text") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AutostError(f"{source}: malformed config JSON: {exc}") from None
        if isinstance(data, Mapping) and "config" in data and not set(data) & _FIELD_NAMES:
            version = data.get("schema_version", WRAPPER_SCHEMA_VERSION)
            if isinstance(version, bool) or version != WRAPPER_SCHEMA_VERSION:
                raise AutostError(
                    f"{source}: unsupported schema_version {version!r} of the file around the "
                    f"config (this autost reads {WRAPPER_SCHEMA_VERSION})"
                )
            data = data["config"]  # an export bundle or best.json wraps the config
        if not isinstance(data, Mapping):
            raise AutostError(
                f"{source}: expected a JSON object with the config's fields, "
                f"got {type(data).__name__}"
            )
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            if path is None:
                raise
            detail = str(exc).removeprefix(f"{exc.field}: ")
            raise ConfigError(exc.field, f"{detail} (in {path})") from None

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


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(ArchConfig))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (the CLI's ``--set``) as :class:`ArchConfig` overrides.

    KEY is a field, or ``neuron.NAME`` for a neuron setting; VALUE is read as JSON (``true``,
    ``4``, ``[6, 12]``) except for text fields, where it stays text. An unknown KEY or a value
    that field can never hold raises :class:`ConfigError` naming the item; rules between
    fields are checked when the overrides are applied."""
    overrides: dict[str, Any] = {}
    neuron_names = {f.name: f for f in dataclasses.fields(NeuronConfig)}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AutostError(f"override {item!r}: expected KEY=VALUE, e.g. ssa_flat_proj_lif=true")
        head, dot, name = key.partition(".")
        fields = neuron_names if dot else _FIELDS
        target = fields.get(name if dot else key)
        text_field = target is not None and isinstance(target.default, str)
        value = text if text_field else _json_or_text(text)
        try:
            if dot and head != "neuron":
                raise ConfigError(key, "only neuron settings take a dotted name (neuron.NAME)")
            if dot:
                check_field("neuron", {name: value})
                overrides.setdefault("neuron", {})[name] = value
            else:
                check_field(key, value)
                overrides[key] = value
        except ConfigError as exc:
            detail = str(exc).removeprefix(f"{exc.field}: ")
            raise ConfigError(exc.field, f"{detail} (in override {item!r})") from None
    return overrides


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


_FIELDS = {f.name: f for f in dataclasses.fields(ArchConfig)}


__all__ = [
    "ATTENTION_TYPES",
    "CODINGS",
    "MLP_TYPES",
    "NEURON_KINDS",
    "PER_LAYER_FIELDS",
    "REQUIRED_FIELDS",
    "SCHEMA_VERSION",
    "SHORTCUTS",
    "STEMS",
    "STEM_POOLING_DEFAULTS",
    "SURROGATES",
    "WRAPPER_SCHEMA_VERSION",
    "ArchConfig",
    "NeuronConfig",
    "check_field",
    "check_layer_entry",
    "parse_overrides",
]
