"""``ProxyContext``: one architecture, one batch, one seeded model, shared work; ``score_all``.

The context builds the model once (``torch.manual_seed(seed)`` inside a forked RNG, so the
caller's random state is untouched) and caches what several proxies read:

- :meth:`ProxyContext.activity`: ONE forward pass under ``torch.no_grad`` with hooks that
  stream per-layer statistics (no spike tensor outlives its layer): the firing rate of every
  LIF module (:func:`autost.neurons.neuron_layers`; TIM's inline neurons are not modules), the
  mean input of every conv/linear (keyed by module path, the cost table's row names) and, when
  asked, the SAHD/Hamming kernels. ``firing_rate``, ``sops``, ``energy``, ``sahd`` and
  ``naswot_hd`` all read it.
- ``grad_norm`` and ``synflow`` run their own passes (they need gradients).

Normalisation: the model runs in eval mode, but its BatchNorm layers normalise with the batch's
statistics (their running statistics are dropped). A freshly built network's running statistics
are mean 0 / variance 1, so eval-mode BN would be the identity and, with the reference weight
initialisation, no neuron would ever fire (every spike code zero, every kernel singular);
SNASNet, NASWOT and zero-cost-nas likewise score freshly built networks whose BN uses batch
statistics. Nothing is updated, so the proxies do not depend on the order they run in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from autost.blocks.common import LayerCost
from autost.config import ArchConfig
from autost.cost import CostReport, estimate_cost, layer_table
from autost.errors import AutostError
from autost.neurons import neuron_layers
from autost.proxies.base import Proxy, get_proxy
from autost.proxies.kernels import KernelAccumulator

Batch = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Activity:
    """What the shared forward pass recorded.

    ``layer_rates``: LIF module path -> mean spikes per neuron and timestep; ``input_rates``:
    conv/linear module path -> mean of its input (the firing rate of its input spikes);
    ``kernels``: the binary-code kernels, or ``None`` when they were not asked for.
    """

    layer_rates: dict[str, float]
    input_rates: dict[str, float]
    kernels: KernelAccumulator | None = field(default=None, compare=False)


def batch_statistics_norm(model: nn.Module) -> None:
    """Make every BatchNorm of ``model`` normalise with batch statistics, in any mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.track_running_stats = False
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None


class ProxyContext:
    """Scores one architecture: ``config`` (anything :func:`autost.create_model` takes), an
    optional ``batch = (x [T, B, C, H, W] or [B, C, H, W], y [B])`` and the model seed.

    ``seconds`` collects wall time per proxy (and ``"activity"`` for the shared pass).
    """

    def __init__(self, config: Any, batch: Batch | None = None, seed: int = 0) -> None:
        from autost.models import resolve_config

        self.config: ArchConfig = resolve_config(config)
        self.batch = batch
        self.seed = int(seed)
        self.seconds: dict[str, float] = {}
        self._model: nn.Module | None = None
        self._activity: Activity | None = None
        self._cost: CostReport | None = None
        self._table: list[LayerCost] | None = None

    # ------------------------------------------------------------------ shared products
    def reset(self) -> None:
        """Forget the shared pass and the measured cost (keep the model); for benchmarks."""
        self._activity = None
        self._cost = None
        self.seconds.clear()

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
            from autost import models

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
        """``estimate_cost`` with the rates measured by the shared pass.

        Conv/linear rows get the mean of their input; ``<block>.attn.qkv`` product rows get
        the firing rate of ``<block>.attn.q_lif``.
        """
        if self._cost is None:
            rates = cost_rates(self.activity(), self.layer_table)
            self._cost = estimate_cost(self.config, firing_rates=rates)
        return self._cost

    def prepare(self, proxies: Iterable[Proxy]) -> None:
        """Run the shared pass once for every proxy in ``proxies`` that reads it."""
        shared = set().union(*(p.shares for p in proxies))
        if shared:
            self.activity(kernels="kernels" in shared)

    def score(self, names: Sequence[str]) -> dict[str, float]:
        """Raw values of the proxies ``names`` (shared work done once)."""
        proxies = [get_proxy(name) for name in names]
        needing = [p.name for p in proxies if p.needs_data]
        if needing and self.batch is None:
            raise AutostError(f"proxies {', '.join(needing)} need a batch of data (batch=(x, y))")
        self.prepare(proxies)
        out: dict[str, float] = {}
        for proxy in proxies:
            start = time.perf_counter()
            out[proxy.name] = float(proxy.compute(self))
            self.seconds[proxy.name] = time.perf_counter() - start
        return out

    # ------------------------------------------------------------------ the shared pass
    def _record(self, kernels: bool) -> Activity:
        x, _ = self.inputs()
        return record_activity(self.model, x, self.layer_table, kernels)


def cost_rates(act: Activity, table: Sequence[LayerCost]) -> dict[str, float]:
    """Input rates for :func:`autost.estimate_cost` from a recorded pass.

    Conv/linear rows get the mean of their input; ``<block>.attn.qkv`` product rows get the
    firing rate of ``<block>.attn.q_lif``.
    """
    rates = dict(act.input_rates)
    for row in table:
        if row.kind == "matmul" and row.name.endswith(".qkv"):
            q_lif = row.name[: -len("qkv")] + "q_lif"
            if q_lif in act.layer_rates:
                rates[row.name] = act.layer_rates[q_lif]
    return rates


def record_activity(
    model: nn.Module, x: Tensor, table: Sequence[LayerCost], kernels: bool = False
) -> Activity:
    """One forward pass of ``model`` on ``x`` (no grad), recording the mean output of every
    neuron layer (firing rates) and the mean input of every conv/linear row of ``table``
    (input rates for :func:`autost.estimate_cost`); ``kernels`` also accumulates SAHD kernels.
    """
    # module path -> [sum, count]; sums stay tensors so that no hook waits on the device
    spikes: dict[str, list[Any]] = {}
    inputs: dict[str, list[Any]] = {}
    acc = KernelAccumulator() if kernels else None

    def on_spikes(name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Tensor) -> None:
            total = spikes.setdefault(name, [0.0, 0])
            count = out.sum() if acc is None else acc.add(out).sum()
            total[0] = total[0] + count.double()
            total[1] += out.numel()

        return hook

    def on_input(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            total = inputs.setdefault(name, [0.0, 0])
            total[0] = total[0] + args[0].sum().double()
            total[1] += args[0].numel()

        return hook

    modules = dict(model.named_modules())
    handles = [m.register_forward_hook(on_spikes(n)) for n, m in neuron_layers(model)]
    for row in table:
        module = modules.get(row.name)
        if row.kind in ("conv", "linear") and module is not None:
            handles.append(module.register_forward_pre_hook(on_input(row.name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return Activity(
        layer_rates={k: float(s) / n if n else 0.0 for k, (s, n) in spikes.items()},
        input_rates={k: float(s) / n if n else 0.0 for k, (s, n) in inputs.items()},
        kernels=acc,
    )


def score_all(
    config: Any, names: Sequence[str], batch: Batch | None = None, seed: int = 0
) -> dict[str, float]:
    """Raw values of the proxies ``names`` for ``config``, sharing one model and one forward pass.

    ``batch = (x, y)`` is needed by the data proxies; ``seed`` seeds the model's weights.
    """
    return ProxyContext(config, batch, seed).score(names)
