"""``SpikingTransformer`` assembled from an :class:`ArchConfig`, the preset registry,
``create_model`` and ``list_models``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from autost.errors import AutostError
from autost.model.blocks.attention import ATTENTIONS
from autost.model.blocks.coding import CODINGS
from autost.model.blocks.common import spiking_neuron
from autost.model.blocks.lowmem import LOW_MEMORY_DEFAULT, checkpoint_module, set_low_memory
from autost.model.blocks.mlp import MLPS
from autost.model.blocks.stems import STEMS, QKDownsample
from autost.model.config import ArchConfig
from autost.model.files import HUB_PREFIX, is_bundle
from autost.registry import Registry

PRESETS: Registry[Callable[[], ArchConfig]] = Registry("model")


class EncoderBlock(nn.Module):
    """One encoder layer: attention then channel mixer, each with its own shortcut."""

    def __init__(self, cfg: ArchConfig, layer: int) -> None:
        super().__init__()
        self.attn = ATTENTIONS.get(cfg.attention[layer])(cfg, layer)
        self.mlp = MLPS.get(cfg.mlp)(cfg, layer)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.mlp(self.attn(x))
        return out


class SpikingTransformer(nn.Module):
    """A spiking transformer built from ``config``; ``model.config`` keeps it.

    ``forward`` takes a static batch ``[B, C, H, W]`` (coded over ``timesteps``) or a
    time-major sequence ``[T, B, C, H, W]`` and returns logits ``[B, classes]`` averaged over
    time, or ``[T, B, classes]`` with ``per_timestep=True`` (for TET-style losses).

    Two switches trade nothing but memory and time, never results: ``low_memory`` (off by
    default) saves the spike inputs of linear layers, convs and products for backward as
    bool/uint8 and max-pools' argmax positions as int16 (see :mod:`autost.model.blocks.lowmem`);
    ``checkpoint_blocks`` (off by default) recomputes each encoder block's activations in
    backward instead of keeping them (in training mode with gradients enabled only).
    """

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config  # validated when it was constructed (ArchConfig is frozen)
        self.checkpoint_blocks = False
        self._low_memory = LOW_MEMORY_DEFAULT
        self.coding = CODINGS.get(config.coding)(config)
        self.stem = STEMS.get(config.stem)(config)
        stages = config.stages or (config.depth,)
        self.downsample = nn.ModuleList(
            QKDownsample(config, width) for width in config.stage_dims[1:]
        )
        self.blocks = nn.ModuleList(EncoderBlock(config, i) for i in range(config.depth))
        self._stage_ends = [sum(stages[: s + 1]) for s in range(len(stages))]
        self.head_lif = spiking_neuron(config.neuron) if config.shortcut == "membrane" else None
        self.head = nn.Linear(config.embed_dim, config.num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: Tensor) -> Tensor:
        """Token features of the last stage, averaged over tokens: ``[T, B, D]``."""
        x = self.coding(x)
        tokens = self.stem(x)
        side = self.config.image_size // self.config.stem_stride
        start = 0
        for stage, end in enumerate(self._stage_ends):
            if stage > 0:
                tokens = self.downsample[stage - 1](tokens, side)
                side //= 2
            for block in self.blocks[start:end]:
                if self.checkpoint_blocks and self.training and torch.is_grad_enabled():
                    tokens = checkpoint_module(block, tokens)
                else:
                    tokens = block(tokens)
            start = end
        return tokens.mean(dim=2)

    def forward(self, x: Tensor, per_timestep: bool = False) -> Tensor:
        return self.forward_head(self.forward_features(x), per_timestep)

    @property
    def low_memory(self) -> bool:
        """Whether spike inputs are saved for backward as bool/uint8 (equal gradients)."""
        return self._low_memory

    @low_memory.setter
    def low_memory(self, enabled: bool) -> None:
        self._low_memory = bool(enabled)
        set_low_memory(self, self._low_memory)

    def save_pretrained(
        self, folder: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None
    ) -> Path:
        """Write a Hub-ready bundle: ``config.json`` (config and ``provenance``),
        ``model.safetensors`` and a ``README.md`` model card; returns the folder."""
        saved: Path = _bundle_io("save")(self, folder, provenance)
        return saved

    @classmethod
    def from_pretrained(
        cls, name: str | os.PathLike[str], revision: str | None = None, **overrides: Any
    ) -> SpikingTransformer:
        """The model of a bundle folder or of Hub repository ``owner/name`` (fetched into the
        Hugging Face cache: config, safetensors and card only), with its weights."""
        model: SpikingTransformer = _bundle_io("load")(name, revision, **overrides)
        return model

    def forward_head(self, feats: Tensor, per_timestep: bool = False) -> Tensor:
        """Logits from the features ``[T, B, D]`` of :meth:`forward_features`."""
        if self.head_lif is not None:
            feats = self.head_lif(feats)
        elif not per_timestep:
            out: Tensor = self.head(feats.mean(dim=0))  # the head is linear: mean first
            return out
        logits: Tensor = self.head(feats)
        return logits if per_timestep else logits.mean(dim=0)


#: How bundles are read and written: ``load(name, revision, **overrides) -> model`` and
#: ``save(model, folder, provenance) -> Path``, registered by :mod:`autost.bundle.hub` when it is
#: imported (``import autost`` does), so that the model layer does not import the bundle layer.
BUNDLE_IO: dict[str, Callable[..., Any]] = {}


def _bundle_io(name: str) -> Callable[..., Any]:
    if name not in BUNDLE_IO:  # only when autost.model is loaded without autost's __init__
        raise AutostError("reading or writing a bundle needs autost.bundle.hub: import autost")
    return BUNDLE_IO[name]


def _init_weights(module: nn.Module) -> None:
    # As the reference implementations: truncated normal (std 0.02) linears with zero bias.
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ---------------------------------------------------------------------------------- resolving


def _config_file(path: Path) -> ArchConfig:
    """A config JSON, or a file that wraps one under ``"config"`` (best.json, train.json)."""
    return ArchConfig.from_json(path)


def _looks_like_path(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a file or folder rather than a preset."""
    text = str(spec)
    separators = [sep for sep in ("/", os.sep, os.altsep) if sep]
    return (
        isinstance(spec, os.PathLike)
        or any(sep in text for sep in separators)
        or text.endswith(".json")
        or Path(text).exists()
    )


def resolve_config(spec: Any, **overrides: Any) -> ArchConfig:
    """An :class:`ArchConfig` from a preset name, config, dict, JSON path (a config, or a file
    holding one under ``"config"``) or search run directory (its best.json), with overrides.

    A spec that looks like a path (a separator, a ``.json`` suffix, an existing file or folder)
    is never taken for a preset: a missing one raises "no such file or folder: PATH"."""
    if isinstance(spec, ArchConfig):
        cfg = spec
    elif isinstance(spec, Mapping):
        cfg = ArchConfig.from_dict(spec)
    elif isinstance(spec, (str, os.PathLike)):
        text, path = str(spec), Path(spec)
        if isinstance(spec, str) and text in PRESETS:
            cfg = PRESETS.get(text)()
        elif not _looks_like_path(spec):
            PRESETS.get(text)  # raises UnknownNameError listing close matches
            raise AssertionError("unreachable")
        elif not path.exists():
            raise AutostError(f"no such file or folder: {text}")
        elif is_bundle(path):
            cfg = _config_file(path / "config.json")
        elif path.is_dir():
            if not (path / "best.json").is_file():
                raise AutostError(
                    f"{text}: folder holds neither a bundle (config.json and "
                    "model.safetensors) nor a search run (best.json)"
                )
            cfg = _config_file(path / "best.json")  # a search run: its best candidate
        else:
            cfg = _config_file(path)
    else:
        raise AutostError(
            f"cannot build a model from {type(spec).__name__}; pass a preset name, an "
            "ArchConfig, a dict or a path to a JSON config"
        )
    return cfg.replace(**overrides) if overrides else cfg


def create_model(spec: Any, **overrides: Any) -> SpikingTransformer:
    """Build a model from a preset name, an ``ArchConfig``, a dict or a JSON config path.

    ``overrides`` replace config fields, e.g. ``create_model("spikformer-4-384-cifar10",
    image_size=16, timesteps=2)``. Unknown preset names raise an error listing close matches.
    A bundle folder (``config.json`` + ``model.safetensors``, or a ``weights.pt`` bundle from
    before, loaded with ``weights_only=True``) or ``hf://owner/name`` (a bundle on the
    Hugging Face Hub) gives the model with its trained weights.
    """
    if isinstance(spec, str) and spec.startswith(HUB_PREFIX):
        return SpikingTransformer.from_pretrained(spec, **overrides)
    if isinstance(spec, (str, os.PathLike)) and is_bundle(spec):
        return SpikingTransformer.from_pretrained(spec, **overrides)
    return SpikingTransformer(resolve_config(spec, **overrides))


def list_models(pattern: str = "*") -> list[str]:
    """Registered preset names matching a shell-style ``pattern``."""
    return PRESETS.names(pattern)


def register_model(name: str) -> Callable[[Callable[[], ArchConfig]], Callable[[], ArchConfig]]:
    """Decorator registering a zero-argument function returning an ``ArchConfig`` as a preset."""
    return PRESETS.register(name)
