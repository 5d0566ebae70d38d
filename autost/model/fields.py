"""The vocabulary of :class:`~autost.model.config.ArchConfig`'s fields and the rules one field
obeys whatever the others hold: the allowed names (attention types, stems, codings, ...), the
neuron settings (:class:`NeuronConfig`), and :func:`check_field` / :func:`check_layer_entry`,
which search spaces use to check their values at load time. The rules *between* fields are
:meth:`ArchConfig.validate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from autost.errors import ConfigError

#: Attention mechanisms (see :mod:`autost.model.blocks.attention`).
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
#: Fields with one entry per encoder block.
PER_LAYER_FIELDS = ("num_heads", "mlp_ratios", "attention")
#: Fields a config file or dict must give: the data's shape and the network's size have no
#: default that fits every use (the other fields default to the reference papers' values).
REQUIRED_FIELDS = ("in_channels", "image_size", "num_classes", "embed_dim", "depth", "num_heads")


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
        if not (_is_number(self.tau) and math.isfinite(self.tau) and self.tau >= 1.0):
            raise ConfigError("neuron.tau", f"must be a finite number >= 1, got {self.tau!r}")
        for name in ("threshold", "attn_threshold"):
            value = getattr(self, name)
            if not _is_positive(value):
                raise ConfigError(f"neuron.{name}", f"must be a finite number > 0, got {value!r}")
        if self.alpha is not None and not _is_positive(self.alpha):
            raise ConfigError("neuron.alpha", f"must be > 0 or null, got {self.alpha!r}")
        if not isinstance(self.detach_reset, bool):
            raise ConfigError(
                "neuron.detach_reset", f"must be true or false, got {self.detach_reset!r}"
            )


def _neuron_from_dict(data: Mapping[str, Any]) -> NeuronConfig:
    names = {f.name for f in fields(NeuronConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"neuron.{unknown[0]}", _unknown(unknown[0], tuple(sorted(names))))
    return NeuronConfig(**data)


# ---------------------------------------------------------------------------------- field rules
# The rules one field obeys whatever the others hold; ``ArchConfig.validate`` adds those
# between fields.


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_positive(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def _positive_int(label: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(label, f"must be a positive integer, got {value!r}")


def _positive_number(label: str, value: Any) -> None:
    if not _is_positive(value):
        raise ConfigError(label, f"must be a finite number > 0, got {value!r}")


def _boolean(label: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(label, f"must be true or false, got {value!r}")


def _one_of(choices: Sequence[str]) -> Callable[[str, Any], None]:
    def check(label: str, value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(label, _unknown(value, choices))

    return check


def _timesteps(label: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(label, f"must be an integer, got {value!r}")
    if value < 1:
        raise ConfigError(label, f"must be >= 1, got {value}")


def _stem_pooling(label: str, value: Any) -> None:
    lengths = sorted({len(p) for p in STEM_POOLING_DEFAULTS.values()})
    if not isinstance(value, str) or set(value) - {"0", "1"} or len(value) not in (0, *lengths):
        raise ConfigError(
            label,
            f"must be {' or '.join(map(str, lengths))} flags of '0'/'1' (one per stem "
            f"convolution), or '' for the stem's default, got {value!r}",
        )


def _stages(label: str, value: Any) -> None:
    counts = value if isinstance(value, (list, tuple)) else (value,)
    for count in counts:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(label, f"needs positive block counts, got {value!r}")


def _neuron(label: str, value: Any) -> None:
    if isinstance(value, Mapping):
        value = _neuron_from_dict(value)
    if not isinstance(value, NeuronConfig):
        raise ConfigError(label, f"must be a NeuronConfig or a mapping, got {value!r}")
    value.validate()


def _odd_kernel(label: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise ConfigError(label, f"must be a positive odd integer, got {value!r}")


def _unit_interval(label: str, value: Any) -> None:
    if not (_is_number(value) and 0.0 <= value <= 1.0):
        raise ConfigError(label, f"must be a number in [0, 1], got {value!r}")


#: The check of one entry of each per-layer field.
_LAYER_ENTRY_RULES: dict[str, Callable[[str, Any], None]] = {
    "num_heads": _positive_int,
    "mlp_ratios": _positive_number,
    "attention": _one_of(ATTENTION_TYPES),
}
_FIELD_RULES: dict[str, Callable[[str, Any], None]] = {
    "in_channels": _positive_int,
    "image_size": _positive_int,
    "num_classes": _positive_int,
    "timesteps": _timesteps,
    "coding": _one_of(CODINGS),
    "stem": _one_of(STEMS),
    "stem_pooling": _stem_pooling,
    "embed_dim": _positive_int,
    "depth": _positive_int,
    "stages": _stages,
    "mlp": _one_of(MLP_TYPES),
    "shortcut": _one_of(SHORTCUTS),
    "qkv_bias": _boolean,
    "attn_scale": _positive_number,
    "neuron": _neuron,
    "tim": _boolean,
    "tim_kernel": _odd_kernel,
    "tim_alpha": _unit_interval,
    "num_experts": _positive_int,
    "sdsa_dvs_pool": _boolean,
    "ssa_flat_proj_lif": _boolean,
}


#: Every field of :class:`ArchConfig` (each has exactly one rule; a test holds them equal).
FIELD_NAMES = tuple(sorted({*_FIELD_RULES, *_LAYER_ENTRY_RULES}))


def check_field(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` when ``value`` can never be valid for field ``name``.

    Per-layer fields take one entry or a list of them (labelled ``name[i]``); rules that
    involve other fields (heads dividing the width, the stem's strides) are left to
    :meth:`ArchConfig.validate`.
    """
    if name in _LAYER_ENTRY_RULES:
        if isinstance(value, (list, tuple)):
            for i, entry in enumerate(value):
                _LAYER_ENTRY_RULES[name](f"{name}[{i}]", entry)
        else:
            _LAYER_ENTRY_RULES[name](name, value)
    elif name in _FIELD_RULES:
        _FIELD_RULES[name](name, value)
    else:
        raise ConfigError(name, _unknown(name, FIELD_NAMES))


def check_layer_entry(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` when ``value`` can never be one layer's entry of the
    per-layer field ``name`` (``num_heads``, ``mlp_ratios`` or ``attention``)."""
    _LAYER_ENTRY_RULES[name](name, value)


def _unknown(name: Any, choices: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown value {name!r}{hint} (choices: {', '.join(choices)})"
