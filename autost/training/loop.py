"""The training loop: one code path for a CPU, a CUDA GPU and each worker of a Ray Train run.

A run directory holds ``config.json`` (the architecture), ``train.json`` (settings, dataset,
device, versions, status), ``metrics.jsonl`` and ``metrics.csv`` (one row per epoch),
``checkpoint.pt`` (everything needed to resume, rewritten atomically after every epoch) and
``weights.pt`` (the latest model weights alone). All ``.pt`` files load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.model.config import ArchConfig
from autost.training import checkpoint as ckpt
from autost.training.augment import augment_batch, resolve_augment
from autost.training.losses import Objective
from autost.training.settings import TrainSettings

METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_chance",
    "lr",
    "mean_firing_rate",
    "sops",
    "energy_mj",
    "train_images_per_s",
    "epoch_seconds",
)


class TrainingDiverged(AutostError):
    """The loss became NaN or infinite; the run stopped and recorded it."""


@dataclass
class TrainResult:
    """What :func:`autost.train` returns."""

    out: Path
    config: ArchConfig
    status: str  # "completed" or "diverged"
    metrics: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ""

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's metrics."""
        return self.metrics[-1] if self.metrics else {}

    @property
    def best_val_acc(self) -> float:
        return max((m["val_acc"] for m in self.metrics), default=0.0)


@dataclass
class Distributed:
    """This process's place in a distributed run (``None`` in :class:`Trainer` when alone)."""

    rank: int
    world_size: int
    device: torch.device
    report: Callable[[dict[str, Any], Path | None], None]


# ------------------------------------------------------------------------------ helpers


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise AutostError("--device cuda: no CUDA device is available (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device`` (``None``: full precision)."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "fp16" and device.type != "cuda":
        raise AutostError("--amp fp16 needs a CUDA device (bf16 autocast also runs on CPU)")
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` (fraction of lr)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _versions() -> dict[str, str]:
    from autost.version import __version__

    return {
        "autost": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda or "",
    }


# ------------------------------------------------------------------------------ trainer


class Trainer:
    """Trains ``config`` on ``dataset`` into run directory ``out`` (see the module docstring)."""

    def __init__(
        self,
        config: ArchConfig,
        dataset: str,
        settings: TrainSettings,
        out: Path,
        *,
        root: str | Path | None = None,
        progress: bool = True,
        distributed: Distributed | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.settings = settings
        self.out = Path(out)
        self.root = root
        self.dist = distributed
        self.rank = distributed.rank if distributed else 0
        self.world = distributed.world_size if distributed else 1
        self.device = distributed.device if distributed else resolve_device(settings.device)
        self.amp = resolve_amp(settings.amp, self.device)
        self.progress = progress and self.rank == 0
        self.train_set, self.val_set, self.static = self._datasets()
        self.policy = resolve_augment(settings.augment, dataset)

    # -------------------------------------------------------------- data
    def _datasets(self) -> tuple[Dataset[Any], Dataset[Any], bool]:
        from autost.data import dataset_info, load_dataset

        info = dataset_info(self.dataset)
        static = info.kind == "static"
        steps = 1 if static else self.config.timesteps  # static images are coded by the model
        opts = dict(self.settings.dataset_options)
        train = load_dataset(self.dataset, self.root, "train", timesteps=steps, **opts)
        val = load_dataset(self.dataset, self.root, "val", timesteps=steps, **opts)
        got = (train.info.in_channels, train.info.image_size)
        want = (self.config.in_channels, self.config.image_size)
        if got != want:
            raise AutostError(
                f"dataset {self.dataset!r} gives {got[0]} channels at {got[1]}x{got[1]}, the "
                f"architecture expects {want[0]} at {want[1]}x{want[1]}"
            )
        classes = train.info.num_classes or len(set(train.targets))
        if classes != self.config.num_classes:
            raise AutostError(
                f"dataset {self.dataset!r} has {classes} classes, the architecture "
                f"{self.config.num_classes} (set num_classes in the config)"
            )
        if len(train) == 0 or len(val) == 0:
            raise AutostError(f"dataset {self.dataset!r}: empty train or val split")
        return train, val, static

    def _loader(self, dataset: Dataset[Any], epoch: int, train: bool) -> DataLoader[Any]:
        s = self.settings
        sampler: DistributedSampler[Any] | None = None
        generator = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
        if train and self.world > 1:
            sampler = DistributedSampler(
                dataset, num_replicas=self.world, rank=self.rank, shuffle=True, seed=s.seed
            )
            sampler.set_epoch(epoch)
        return DataLoader(
            dataset,
            batch_size=s.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=s.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=False,
        )

    def _inputs(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True).float().transpose(0, 1)  # [T, B, C, H, W]
        return x[0] if self.static else x.contiguous()

    # -------------------------------------------------------------- run
    def fit(self, resume: bool = False) -> TrainResult:
        """Train (or continue) the run; returns its metrics and status."""
        from autost.model.network import SpikingTransformer

        s = self.settings
        self._prepare_dir(resume)
        torch.manual_seed(s.seed)
        model = SpikingTransformer(self.config).to(self.device)
        model.low_memory = s.low_memory
        model.checkpoint_blocks = s.checkpoint_blocks
        if self.device.type == "cuda" and s.channels_last is not False:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        objective: nn.Module = Objective(model, s, self.static)
        steps_per_epoch = self._steps_per_epoch()
        total = steps_per_epoch * s.epochs
        warmup = round(s.warmup_epochs * steps_per_epoch)
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, p in model.named_parameters():
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": s.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=s.lr,
        )
        floor = s.min_lr / s.lr
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, warmup, total, floor)
        )
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if resume and (self.out / ckpt.CHECKPOINT).exists():
            state = ckpt.load(self.out / ckpt.CHECKPOINT)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            ckpt.set_rng_state(state["rng"])
            history = list(state["metrics"])
            start_epoch = int(state["epoch"])
            self._write_metrics(history)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            objective = DistributedDataParallel(objective, device_ids=ids)
        if s.compile:
            objective = torch.compile(objective)  # type: ignore[assignment]
        self._write_status("running", history)
        bar = self._bar(steps_per_epoch * (s.epochs - start_epoch))
        try:
            for epoch in range(start_epoch, s.epochs):
                row = self._epoch(epoch, model, objective, optimizer, scheduler, scaler, bar)
                if "failure" in row:
                    history.append(row)
                    self._write_metrics(history)
                    self._write_status("diverged", history, row["failure"])
                    return TrainResult(self.out, self.config, "diverged", history, row["failure"])
                history.append(row)
                self._end_epoch(epoch, model, optimizer, scheduler, scaler, history)
        finally:
            bar.close()
        self._write_status("completed", history)
        return TrainResult(self.out, self.config, "completed", history)

    def _steps_per_epoch(self) -> int:
        n = math.ceil(len(self.train_set) / self.world)  # type: ignore[arg-type]
        steps = math.ceil(n / self.settings.batch_size)
        limit = self.settings.limit_train_batches
        return min(steps, limit) if limit else steps

    def _bar(self, total: int) -> Any:
        from autost.training.progress import progress_bar

        return progress_bar(total, desc="train", unit="batch", enabled=self.progress)

    def _epoch(
        self,
        epoch: int,
        model: nn.Module,
        objective: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: torch.amp.GradScaler,
        bar: Any,
    ) -> dict[str, Any]:
        s = self.settings
        start = time.perf_counter()
        objective.train()
        aug = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch + 7919 * (self.rank + 1))
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss*n, correct, n
        autocast = torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext()
        steps = self._steps_per_epoch()
        for step, (x, y) in enumerate(self._loader(self.train_set, epoch, train=True)):
            if step >= steps:
                break
            x = augment_batch(self._inputs(x), self.policy, aug)
            y = y.to(self.device, non_blocking=True)
            with autocast:
                loss, logits = objective(x, y)
            finite = torch.isfinite(loss.detach()).float()
            if self.world > 1:
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            if finite.item() < 1:
                value = float(loss.detach())
                failure = (
                    f"non-finite loss ({value}) at epoch {epoch + 1}, step {step + 1}; "
                    "the run stopped (try a lower --lr or --amp off)"
                )
                return {"epoch": epoch + 1, "status": "diverged", "failure": failure}
            scaler.scale(loss).backward()
            if s.clip_grad > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), s.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            n = y.shape[0]
            sums += torch.stack(
                [
                    loss.detach().double() * n,
                    (logits.detach().argmax(-1) == y).sum().double(),
                    torch.tensor(float(n), dtype=torch.float64, device=self.device),
                ]
            )
            bar.update(1)
        if self.world > 1:
            dist.all_reduce(sums)
        train_seconds = time.perf_counter() - start
        loss_sum, correct, count = sums.tolist()
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(count, 1),
            "train_acc": correct / max(count, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "train_images_per_s": count / train_seconds,
        }
        row.update(self._validate(model))
        row["epoch_seconds"] = time.perf_counter() - start
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
        return row

    @torch.no_grad()
    def _validate(self, model: nn.Module) -> dict[str, Any]:
        """Validation loss/accuracy over the whole split, chance level (the share of its most
        frequent class: what always answering that class scores), and activity on its first
        batch."""
        from autost.model.cost import estimate_cost, layer_table
        from autost.proxies.recording import cost_rates, record_activity

        model.eval()
        table = layer_table(self.config)
        loss_sum, correct, count = 0.0, 0, 0
        per_class = torch.zeros(self.config.num_classes, dtype=torch.long)
        activity = None
        autocast = torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext()
        for x, y in self._loader(self.val_set, 0, train=False):
            per_class += torch.bincount(y.long(), minlength=len(per_class))
            x, y = self._inputs(x), y.to(self.device)
            with autocast:
                if activity is None:
                    activity = record_activity(model, x, table)
                logits = model(x).float()
            loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += y.shape[0]
        model.train()
        assert activity is not None
        rates = activity.layer_rates
        cost = estimate_cost(self.config, firing_rates=cost_rates(activity, table))
        return {
            "val_loss": loss_sum / count,
            "val_acc": correct / count,
            "val_chance": int(per_class.max()) / count,
            "mean_firing_rate": sum(rates.values()) / max(len(rates), 1),
            "sops": cost.sops,
            "energy_mj": cost.energy_mj,
            "firing_rates": dict(sorted(rates.items())),
        }

    # -------------------------------------------------------------- files
    def _prepare_dir(self, resume: bool) -> None:
        if self.rank != 0:
            return
        status_file = self.out / "train.json"
        if resume:
            if not status_file.exists():
                raise AutostError(f"{self.out}: no training run to resume (train.json is missing)")
            previous = json.loads(status_file.read_text())
            if previous.get("status") == "diverged":
                raise AutostError(
                    f"{self.out}: this run diverged ({previous.get('failure')}); nothing to "
                    "resume — start a new run with other settings"
                )
            if ArchConfig.from_dict(previous.get("config", {})) != self.config:
                raise AutostError(f"{self.out}: cannot resume with a different architecture")
            return
        if status_file.exists() or (self.out / ckpt.CHECKPOINT).exists():
            raise AutostError(
                f"{self.out} already holds a training run; pass --resume to continue it or "
                "choose another --out (nothing was changed)"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.json", self.config.to_json() + "\n")

    def _write_status(self, status: str, history: list[dict[str, Any]], failure: str = "") -> None:
        if self.rank != 0:
            return
        path = self.out / "train.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        done = [m for m in history if "failure" not in m]
        data = {
            "schema_version": 1,
            "status": status,
            "failure": failure,
            "dataset": self.dataset,
            "config": self.config.to_dict(),
            "settings": self.settings.to_dict(),
            "device": str(self.device),
            "amp": str(self.amp).replace("torch.", "") if self.amp else "off",
            "world_size": self.world,
            "epochs_done": len(done),
            "best_val_acc": max((m["val_acc"] for m in done), default=None),
            "final": done[-1] if done else None,
            "started": previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
        }
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")

    def _write_metrics(self, history: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl and metrics.csv from the history (atomic, so never torn)."""
        if self.rank != 0:
            return
        lines = "".join(json.dumps(row) + "\n" for row in history)
        atomic_write_text(self.out / "metrics.jsonl", lines)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, [*METRIC_COLUMNS, "status"], extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in [*METRIC_COLUMNS, "status"]})
        atomic_write_text(self.out / "metrics.csv", buffer.getvalue())

    def _end_epoch(
        self,
        epoch: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: torch.amp.GradScaler,
        history: list[dict[str, Any]],
    ) -> None:
        path = None
        if self.rank == 0:
            weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            ckpt.save(
                self.out / ckpt.CHECKPOINT,
                {
                    "epoch": epoch + 1,
                    "model": weights,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": ckpt.rng_state(),
                    "metrics": history,
                    "config": self.config.to_json(),
                },
            )
            ckpt.save(self.out / ckpt.WEIGHTS, {"model": weights, "config": self.config.to_json()})
            self._write_metrics(history)
            self._write_status("running", history)
            path = self.out / ckpt.CHECKPOINT
        if self.dist is not None:
            self.dist.report(history[-1], path)
