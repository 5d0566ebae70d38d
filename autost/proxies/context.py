"""``ProxyContext``: one architecture or model, one batch, shared work; neurons found by type.

A context scores either an autost config (``ProxyContext(config, batch, seed)`` builds the model
once, ``torch.manual_seed(seed)`` inside a forked RNG) or any PyTorch spiking network
(:meth:`ProxyContext.from_model`, behind :func:`score`). It caches what several proxies read:

- :meth:`ProxyContext.activity`: ONE forward pass under ``torch.no_grad`` with hooks that
  stream per-layer statistics (no spike tensor outlives its layer): the firing rate of every
  neuron module (:func:`find_neurons`; TIM's inline neurons are not modules), the mean input of
  every conv/linear (keyed by module path, the cost table's row names) and, when asked, the
  SAHD/Hamming kernels. ``firing_rate``, ``sops``, ``energy``, ``sahd`` and ``naswot_hd`` read it.
- ``grad_norm`` and ``synflow`` run their own passes (they need gradients).

Normalisation: the model runs in eval mode, but its BatchNorm layers normalise with the batch's
statistics (their running statistics are dropped). A freshly built network's running statistics
are mean 0 / variance 1, so eval-mode BN would be the identity and, with the reference weight
initialisation, no neuron would ever fire (every spike code zero, every kernel singular);
SNASNet, NASWOT and zero-cost-nas likewise score freshly built networks whose BN uses batch
statistics. Nothing is updated, so the proxies do not depend on the order they run in.

Neurons are found by type (:func:`~autost.proxies.neuron_types.find_neurons`: autost's,
SpikingJelly's, snnTorch's and Norse's, others added with
:func:`~autost.proxies.neuron_types.register_neuron`); the shared forward pass is recorded by
:func:`~autost.proxies.recording.record_activity`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from autost.errors import AutostError
from autost.model.blocks.common import LayerCost
from autost.model.config import ArchConfig
from autost.model.cost import CostReport, estimate_cost, layer_table
from autost.proxies.base import Proxy, get_proxy
from autost.proxies.kernels import KernelAccumulator
from autost.proxies.neuron_types import (
    _neurons,
    _reset_hook,
    find_neurons,
    reset_neurons,
)
from autost.proxies.recording import (
    Activity,
    cost_rates,
    model_cost,
    record_activity,
)

Batch = tuple[Tensor, Tensor]


class ConfigRequiredError(AutostError):
    """A proxy read ``ctx.config`` of a context that scores a model without an autost config."""


# --------------------------------------------------------------------------- neurons by type


def batch_statistics_norm(model: nn.Module) -> None:
    """Make every BatchNorm of ``model`` normalise with batch statistics, in any mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None


def check_batch(batch: Any) -> Batch:
    """``batch`` checked: ``y`` integer labels ``[B]``, ``x`` ``[B, ...]`` or ``[T, B, ...]``."""
    if not (
        isinstance(batch, (tuple, list))
        and len(batch) == 2
        and all(isinstance(t, Tensor) for t in batch)
    ):
        raise AutostError("batch must be a pair of tensors (x, y)")
    x, y = batch
    integer = not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
    if y.dim() != 1 or len(y) == 0 or not integer:
        raise AutostError(
            f"y must be integer class labels [B] (B > 0), got {y.dtype} of shape {list(y.shape)}"
        )
    if x.dim() < 2 or len(y) not in x.shape[:2]:
        raise AutostError(
            f"x of shape {list(x.shape)} does not fit {len(y)} labels: x must be [B, ...] or "
            f"time-major [T, B, ...] with B = len(y) = {len(y)}"
        )
    return x, y


class ProxyContext:
    """Scores one architecture: ``config`` (anything :func:`autost.create_model` takes), an
    optional ``batch = (x [T, B, C, H, W] or [B, C, H, W], y [B])`` and the model seed; or,
    through :meth:`from_model`, any spiking network.

    ``seconds`` collects wall time per proxy (and ``"activity"`` for the shared pass).
    """

    def __init__(self, config: Any, batch: Batch | None = None, seed: int = 0) -> None:
        from autost.model.network import resolve_config

        self._setup(resolve_config(config), batch, seed)

    def _setup(self, config: ArchConfig | None, batch: Batch | None, seed: int) -> None:
        self._config = config
        self.batch = None if batch is None else check_batch(batch)
        self.seed = int(seed)
        self.seconds: dict[str, float] = {}
        self._model: nn.Module | None = None
        self._foreign = False  # a model without config: its errors are the user's
        self._activity: Activity | None = None
        self._cost: CostReport | None = None
        self._table: list[LayerCost] | None = None

    @classmethod
    def from_model(cls, model: nn.Module, batch: Batch, seed: int = 0) -> ProxyContext:
        """A context that scores ``model`` (``model(x)`` returns logits ``[B, classes]``).

        The model is deep-copied (after its neuron states are reset): the copy runs in eval
        mode on the batch's device with BN on batch statistics and its neuron states reset
        around every call, so ``model`` is left as it was. ``seed`` seeds each proxy's passes
        (stochastic neurons). A model that keeps its :class:`ArchConfig` as ``model.config``
        (every autost model) is costed by the analytic cost model; other models are costed
        from their modules (see :func:`model_cost`), and proxies that read ``ctx.config``
        raise :class:`ConfigRequiredError`.
        """
        if not isinstance(model, nn.Module):
            raise AutostError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not find_neurons(model):
            raise AutostError(
                f"found no spiking neurons in {type(model).__name__}: autost, SpikingJelly, "
                "snnTorch and Norse neurons are found by type; register another class with "
                "autost.proxies.register_neuron(cls)"
            )
        config = getattr(model, "config", None)
        ctx = cls.__new__(cls)
        ctx._setup(config if isinstance(config, ArchConfig) else None, check_batch(batch), seed)
        ctx._foreign = ctx._config is None
        reset_neurons(model)
        try:
            scored = copy.deepcopy(model)
        except Exception as exc:  # a module attribute that cannot be copied (a lock, a file)
            raise AutostError(f"cannot copy {type(model).__name__} to score it: {exc}") from exc
        batch_statistics_norm(scored)
        if any(kind.reset is not None for _, _, kind in _neurons(scored)):
            scored.register_forward_pre_hook(_reset_hook)
            scored.register_forward_hook(_reset_hook)
        ctx._model = scored.to(ctx.device).eval()
        return ctx

    # ------------------------------------------------------------------ shared products
    def reset(self) -> None:
        """Forget the shared pass and the measured cost (keep the model); for benchmarks."""
        self._activity = None
        self._cost = None
        self.seconds.clear()

    @property
    def has_config(self) -> bool:
        """Whether an autost config describes the model (not so for most foreign models)."""
        return self._config is not None

    @property
    def config(self) -> ArchConfig:
        """The autost config; :class:`ConfigRequiredError` for a model given without one."""
        if self._config is None:
            raise ConfigRequiredError(
                "needs an autost ArchConfig, and the model was given without one "
                "(score an autost config or model instead)"
            )
        return self._config

    @property
    def layer_table(self) -> list[LayerCost]:
        """The config's analytic layer table (cached)."""
        if self._table is None:
            self._table = layer_table(self.config)
        return self._table

    @property
    def device(self) -> torch.device:
        """Where the model runs: the batch's device (CPU without a batch)."""
        return self.batch[0].device if self.batch is not None else torch.device("cpu")

    @property
    def model(self) -> nn.Module:
        """The model, built once with ``torch.manual_seed(seed)``, BN on batch statistics."""
        if self._model is None:
            from autost.model import network as models

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = models.create_model(self.config)
            batch_statistics_norm(model)
            self._model = model.to(self.device).eval()
        return self._model

    def inputs(self) -> Batch:
        """The batch; an :class:`AutostError` if there is none."""
        if self.batch is None:
            raise AutostError(
                "this proxy needs a batch of data: pass batch=(x, y) (an evaluator recipe "
                "loads one from its dataset)"
            )
        return self.batch

    def forward(
        self, x: Tensor | None = None, model: nn.Module | None = None, batch_size: int | None = None
    ) -> Tensor:
        """Logits of ``model`` (default: :attr:`model`) on ``x`` (default: the batch's), checked
        to be ``[batch_size, classes]`` (default: the batch's size). A foreign model's failure
        is reported as an :class:`AutostError` naming the input's shape."""
        if x is None:
            x, y = self.inputs()
            batch_size = len(y) if batch_size is None else batch_size
        elif batch_size is None and self.batch is not None:
            batch_size = len(self.batch[1])
        try:
            out = (self.model if model is None else model)(x)
        except AutostError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            if not self._foreign:
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AutostError(f"the model failed on x of shape {list(x.shape)}: {first}") from exc
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch_size:
            shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise AutostError(
                f"model(x) must return logits [B, classes] with B = {batch_size}, got {shape}"
            )
        return out

    def activity(self, kernels: bool = False) -> Activity:
        """The shared forward pass (run once; again only if kernels are asked for later)."""
        if self._activity is None or (kernels and self._activity.kernels is None):
            start = time.perf_counter()
            self._activity = self._record(kernels)
            self.seconds["activity"] = time.perf_counter() - start
        return self._activity

    def kernels(self) -> KernelAccumulator:
        """The SAHD/Hamming kernels of the shared pass."""
        acc = self.activity(kernels=True).kernels
        assert acc is not None
        return acc

    def measured_cost(self) -> CostReport:
        """Costs at the rates measured by the shared pass.

        With a config, ``estimate_cost``: conv/linear rows get the mean of their input,
        ``<block>.attn.qkv`` product rows the firing rate of ``<block>.attn.q_lif``. Without
        one, :func:`model_cost` (conv/linear layers only).
        """
        if self._cost is None:
            if self.has_config:
                rates = cost_rates(self.activity(), self.layer_table)
                self._cost = estimate_cost(self.config, firing_rates=rates)
            else:
                self._cost = model_cost(self.activity(), self.model, len(self.inputs()[1]))
        return self._cost

    def prepare(self, proxies: Iterable[Proxy]) -> None:
        """Run the shared pass once for every proxy in ``proxies`` that reads it."""
        shared = set().union(*(p.shares for p in proxies))
        if shared:
            self.activity(kernels="kernels" in shared)

    def score(self, names: Sequence[str]) -> dict[str, float]:
        """Raw values of the proxies ``names`` (shared work done once).

        Each proxy (and the shared pass) starts from ``torch.manual_seed(seed)`` inside a
        forked RNG, so the caller's random state is untouched.
        """
        proxies = [get_proxy(name) for name in names]
        needing = [p.name for p in proxies if p.needs_data]
        if needing and self.batch is None:
            raise AutostError(f"proxies {', '.join(needing)} need a batch of data (batch=(x, y))")
        out: dict[str, float] = {}
        with self._seeded():
            self.prepare(proxies)
        for proxy in proxies:
            start = time.perf_counter()
            try:
                with self._seeded():
                    out[proxy.name] = float(proxy.compute(self))
            except ConfigRequiredError as exc:
                raise ConfigRequiredError(f"proxy {proxy.name!r} {exc}") from None
            self.seconds[proxy.name] = time.perf_counter() - start
        return out

    @contextmanager
    def _seeded(self) -> Iterator[None]:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(self.seed)
            yield

    # ------------------------------------------------------------------ the shared pass
    def _record(self, kernels: bool) -> Activity:
        x, y = self.inputs()
        table = self.layer_table if self.has_config else None
        return record_activity(
            self.model, x, table, kernels, batch_size=len(y), forward=self.forward
        )


@dataclass(frozen=True)
class ProxyScores:
    """What :func:`score` returns: ``raw`` values, ``oriented`` ones (``sign * raw``, higher is
    better for every proxy), each keyed by proxy name, and ``seconds`` of wall time per proxy
    (and ``"activity"`` for the shared pass)."""

    raw: dict[str, float]
    oriented: dict[str, float]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{"raw": ..., "oriented": ..., "seconds": ...}`` (JSON-ready)."""
        return {"raw": self.raw, "oriented": self.oriented, "seconds": self.seconds}


def score(
    model: nn.Module, batch: Batch, proxies: str | Sequence[str], seed: int = 0
) -> ProxyScores:
    """The proxies ``proxies`` of any PyTorch spiking network ``model`` on ``batch = (x, y)``.

    Convention: ``model(x)`` returns logits ``[B, classes]``; ``y`` holds ``B`` integer labels;
    ``x`` is whatever the model takes, batch first ``[B, ...]`` or time-major ``[T, B, ...]``.
    Neurons are found by type (:func:`find_neurons`, :func:`register_neuron`). The same shared
    pass and gradient passes run as for a config (:func:`score_all`); ``model`` itself is not
    changed (see :meth:`ProxyContext.from_model`). Without an autost config, ``params`` counts
    the model's parameters, ``flops`` is counted by ``torch.utils.flop_counter`` on the batch,
    and ``sops``/``energy`` cover the conv/linear layers (not attention products).
    """
    names = [proxies] if isinstance(proxies, str) else list(proxies)
    ctx = ProxyContext.from_model(model, batch, seed)
    raw = ctx.score(names)
    oriented = {name: get_proxy(name).oriented(value) for name, value in raw.items()}
    return ProxyScores(raw, oriented, dict(ctx.seconds))


def score_all(
    config: Any, names: Sequence[str], batch: Batch | None = None, seed: int = 0
) -> dict[str, float]:
    """Raw values of the proxies ``names`` for ``config``, sharing one model and one forward pass.

    ``batch = (x, y)`` is needed by the data proxies; ``seed`` seeds the model's weights.
    """
    return ProxyContext(config, batch, seed).score(names)
