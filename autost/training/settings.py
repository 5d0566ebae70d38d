"""``TrainSettings``: every knob of a training run, as data (JSON round trip, validation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from autost.errors import AutostError

LOSSES = ("ce", "tet", "trt")
AMP_MODES = ("auto", "bf16", "fp16", "off")
DEVICES = ("auto", "cuda", "cpu")
AUGMENTS = ("auto", "none", "crop", "crop-flip")


@dataclass(frozen=True)
class TrainSettings:
    """How to train: optimisation, loss, precision, data and bookkeeping.

    AdamW with ``warmup_epochs`` of linear warm-up then cosine decay to ``min_lr`` (stepped per
    batch); label smoothing; gradient clipping by global norm (``clip_grad=0`` turns it off).
    ``loss``: ``ce`` (cross-entropy of the time-averaged logits), ``tet`` or ``trt`` (see
    :mod:`autost.training.losses`). ``amp="auto"`` is bf16 on CUDA devices that support it,
    fp16 with a grad scaler on other CUDA devices, off on CPU. ``limit_train_batches`` (0 = all)
    cuts epochs short, for smoke runs and short-training evaluators.

    Two memory savers leave the results unchanged: ``low_memory`` (off by default) saves spike
    inputs for backward as bool/uint8 and max-pool argmaxes as int16
    (:mod:`autost.model.blocks.lowmem`); ``checkpoint_blocks`` recomputes each encoder block in
    backward (``torch.utils.checkpoint``; about one more forward pass of the blocks).
    """

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    clip_grad: float = 1.0
    loss: str = "ce"
    tet_lambda: float = 1e-3
    tet_target: float = 1.0
    trt_consistency: float = 1.0
    trt_star: float = 0.5
    augment: str = "auto"
    amp: str = "auto"
    device: str = "auto"
    compile: bool = False
    low_memory: bool = False
    checkpoint_blocks: bool = False
    channels_last: bool | None = None
    seed: int = 0
    workers: int = 0
    limit_train_batches: int = 0
    dataset_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset_options", dict(self.dataset_options))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`AutostError` naming the first bad field."""
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("min_lr", 0 <= self.min_lr <= self.lr, "in [0, lr]"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("clip_grad", self.clip_grad >= 0, ">= 0"),
            ("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
            ("augment", self.augment in AUGMENTS, f"one of {', '.join(AUGMENTS)}"),
            ("amp", self.amp in AMP_MODES, f"one of {', '.join(AMP_MODES)}"),
            ("device", self.device in DEVICES, f"one of {', '.join(DEVICES)}"),
            ("workers", self.workers >= 0, ">= 0"),
            ("limit_train_batches", self.limit_train_batches >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                value = getattr(self, name)
                raise AutostError(f"train setting {name}={value!r}: expected {expected}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainSettings:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AutostError(f"unknown train settings: {', '.join(unknown)}")
        return cls(**data)
