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

Neurons are found by type (:func:`find_neurons`): autost's LIF/PLIF, SpikingJelly's
``BaseNode``/``SimpleBaseNode`` (and the legacy ``clock_driven`` ``BaseNode``), snnTorch's
``SpikingNeuron``, Norse's ``SNNCell``/``SNNRecurrentCell``/``SNN``/``SNNRecurrent`` (not its
non-spiking leaky integrators ``LICell``/``LI``/``LIBoxCell``). A library is consulted only
once it is imported (a model built from its neurons has imported it), so nothing is imported
here. Other classes are added with :func:`register_neuron`.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from autost.blocks.common import LayerCost
from autost.config import ArchConfig
from autost.cost import E_AC_PJ, E_MAC_PJ, CostReport, LayerReport, estimate_cost, layer_table
from autost.errors import AutostError
from autost.neurons import LIF
from autost.proxies.base import Proxy, get_proxy
from autost.proxies.kernels import KernelAccumulator

Batch = tuple[Tensor, Tensor]
#: The synaptic layers: what the cost, grad_norm and synflow sum over.
SYNAPTIC = (nn.Linear, nn.modules.conv._ConvNd)
N = TypeVar("N", bound=nn.Module)


class ConfigRequiredError(AutostError):
    """A proxy read ``ctx.config`` of a context that scores a model without an autost config."""


# --------------------------------------------------------------------------- neurons by type


def output_spikes(output: Any) -> Any:
    """The default spike reader: the output itself, or the first element of a tuple/list output
    (snnTorch's ``(spk, mem)``, Norse's ``(z, state)``)."""
    return output[0] if isinstance(output, (tuple, list)) and output else output


@dataclass(frozen=True)
class NeuronKind:
    """How the proxies read one neuron class.

    ``spikes`` maps the module's output to its spike tensor; ``multistep`` says whether that
    tensor is time-major ``[T, B, ...]`` (one call per sequence) or ``[B, ...]`` (one call per
    step): a bool, a function of the module, or ``None`` to tell from the batch size; ``reset``
    (or ``None`` for a stateless neuron) clears the module's state before and after every pass.
    """

    spikes: Callable[[Any], Any] = output_spikes
    multistep: bool | Callable[[Any], bool] | None = None
    reset: Callable[[Any], None] | None = None

    def is_multistep(self, module: nn.Module) -> bool | None:
        """``multistep`` for ``module`` (``None``: unknown)."""
        return self.multistep(module) if callable(self.multistep) else self.multistep


_REGISTERED: dict[type, NeuronKind] = {}


def register_neuron(
    cls: type[N],
    spikes: Callable[[Any], Any] | None = None,
    *,
    multistep: bool | Callable[[N], bool] | None = None,
    reset: Callable[[N], None] | None = None,
) -> type[N]:
    """Make :func:`find_neurons` find ``cls`` (and its subclasses); returns ``cls``.

    ``spikes(output)`` returns the spike tensor from the module's output (default: the output,
    or its first element when it is a tuple: ``spikes=lambda out: out[1]`` for a neuron that
    returns ``(state, spikes)``). ``multistep``: ``True`` if the output is ``[T, B, ...]``,
    ``False`` if ``[B, ...]`` per call, ``None`` to tell from the batch size. ``reset(module)``
    clears a stateful neuron. Registering a class again replaces its entry. (Not to be confused
    with :func:`autost.neurons.register_neuron`, which names neuron kinds for configs.)
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise AutostError(f"register_neuron: {cls!r} is not a torch.nn.Module class")
    for name, fn in (("spikes", spikes), ("reset", reset)):
        if fn is not None and not callable(fn):
            raise AutostError(f"register_neuron: {name} must be callable or None, got {fn!r}")
    _REGISTERED[cls] = NeuronKind(spikes or output_spikes, multistep, reset)
    return cls


def _call(method: str) -> Callable[[nn.Module], None]:
    def reset(module: nn.Module) -> None:
        fn = getattr(module, method, None)
        if callable(fn):
            fn()

    return reset


def _library_kinds() -> dict[type, NeuronKind | None]:
    """The neuron classes of the libraries already imported (``None``: not a spiking neuron)."""
    kinds: dict[type, NeuronKind | None] = {LIF: NeuronKind(multistep=True)}

    def add(module: str, names: Sequence[str], kind: NeuronKind | None) -> None:
        found = sys.modules.get(module)
        for name in names:
            cls = getattr(found, name, None)
            if isinstance(cls, type):
                kinds[cls] = kind

    step_mode = NeuronKind(
        multistep=lambda m: getattr(m, "step_mode", "s") == "m", reset=_call("reset")
    )
    add("spikingjelly.activation_based.neuron", ["BaseNode", "SimpleBaseNode"], step_mode)
    legacy = NeuronKind(
        multistep=lambda m: type(m).__name__.startswith("MultiStep"), reset=_call("reset")
    )
    add("spikingjelly.clock_driven.neuron", ["BaseNode"], legacy)
    add("snntorch", ["SpikingNeuron"], NeuronKind(multistep=False, reset=_call("reset_mem")))
    add("snntorch", ["StateLeaky"], NeuronKind(multistep=True, reset=_call("reset_mem")))
    add("norse.torch.module.snn", ["SNNCell", "SNNRecurrentCell"], NeuronKind(multistep=False))
    add("norse.torch.module.snn", ["SNN", "SNNRecurrent"], NeuronKind(multistep=True))
    add("norse.torch.module.leaky_integrator", ["LICell", "LI"], None)  # voltages, not spikes
    add("norse.torch.module.leaky_integrator_box", ["LIBoxCell"], None)
    return kinds


def _neurons(model: nn.Module) -> list[tuple[str, nn.Module, NeuronKind]]:
    kinds = {**_library_kinds(), **_REGISTERED}
    found: list[tuple[str, nn.Module, NeuronKind]] = []
    for name, module in model.named_modules():
        if found and (not found[-1][0] or name.startswith(found[-1][0] + ".")):
            continue  # inside a neuron: the outermost module is the neuron
        kind = next((kinds[c] for c in type(module).__mro__ if c in kinds), None)
        if kind is not None:
            found.append((name, module, kind))
    return found


def find_neurons(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every spiking neuron module of ``model`` with its path, found by type (outermost only)."""
    return [(name, module) for name, module, _ in _neurons(model)]


def reset_neurons(model: nn.Module) -> None:
    """Clear the state of every stateful neuron of ``model`` (SpikingJelly, snnTorch, ...)."""
    for _, module, kind in _neurons(model):
        if kind.reset is not None:
            kind.reset(module)


def _reset_hook(module: nn.Module, *args: Any) -> None:
    reset_neurons(module)


# --------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Activity:
    """What the shared forward pass recorded.

    ``layer_rates``: neuron module path -> mean spikes per neuron and timestep; ``input_rates``:
    conv/linear module path -> mean of its input (the firing rate of its input spikes);
    ``kernels``: the binary-code kernels, or ``None`` when they were not asked for. Recorded
    without a cost table (a model without config) also: ``input_macs``, conv/linear path ->
    multiply-accumulates over the batch (from the shapes), and ``real_inputs``, the conv/linears
    whose input was real-valued (not all integers: neither spikes nor sums of spikes).
    """

    layer_rates: dict[str, float]
    input_rates: dict[str, float]
    kernels: KernelAccumulator | None = field(default=None, compare=False)
    input_macs: dict[str, int] = field(default_factory=dict)
    real_inputs: frozenset[str] = frozenset()


def _macs(module: nn.Module, x: Tensor, out: Tensor) -> int:
    if isinstance(module, nn.Linear):
        return x.numel() * module.out_features
    assert isinstance(module, nn.modules.conv._ConvNd)
    kernel = prod(module.kernel_size)
    if module.transposed:
        return x.numel() * (module.out_channels // module.groups) * kernel
    return out.numel() * (module.in_channels // module.groups) * kernel


def _codes(
    name: str, module: nn.Module, kind: NeuronKind, out: Tensor, batch: int | None
) -> Tensor:
    """One layer's spikes as codes ``[T, B, ...]`` (a single step becomes ``T = 1``)."""
    multistep = kind.is_multistep(module)
    if multistep is None and batch is not None and out.dim() >= 1:
        first, second = out.shape[0] == batch, out.dim() >= 2 and out.shape[1] == batch
        multistep = None if first == second else second
    if multistep is None:
        raise AutostError(
            f"neuron {name!r} ({type(module).__name__}): cannot tell whether its output "
            f"{list(out.shape)} is [B, ...] or [T, B, ...]; pass multistep= to register_neuron"
        )
    codes = out if multistep else out.unsqueeze(0)
    if codes.dim() < 2 or (batch is not None and codes.shape[1] != batch):
        layout = "[T, B, ...]" if multistep else "[B, ...]"
        raise AutostError(
            f"neuron {name!r} ({type(module).__name__}): output {list(out.shape)} is not "
            f"{layout} with B = {batch}"
        )
    return codes


def record_activity(
    model: nn.Module,
    x: Tensor,
    table: Sequence[LayerCost] | None = None,
    kernels: bool = False,
    *,
    batch_size: int | None = None,
    forward: Callable[[Tensor], Any] | None = None,
) -> Activity:
    """One forward pass (``forward(x)``, default ``model(x)``) under no grad, recording the mean
    spike output of every neuron (:func:`find_neurons`) and the mean input of the conv/linear
    rows of ``table`` (every conv/linear, with MACs and real-valued inputs, when it is
    ``None``); ``kernels`` also accumulates SAHD kernels (``batch_size`` checks their layout).
    """
    # module path -> [sum, count]; sums stay tensors so that no hook waits on the device
    spikes: dict[str, list[Any]] = {}
    inputs: dict[str, list[Any]] = {}
    macs: dict[str, int] = {}
    real: dict[str, Any] = {}  # non-integer inputs: not spikes, nor sums of spikes
    acc = KernelAccumulator() if kernels else None

    def on_spikes(name: str, kind: NeuronKind) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = kind.spikes(output)
            if not isinstance(out, Tensor):
                raise AutostError(
                    f"neuron {name!r} ({type(module).__name__}) gave {type(out).__name__}, not a "
                    "spike tensor; register its class with register_neuron(cls, spikes=...)"
                )
            total = spikes.setdefault(name, [0.0, 0])
            if acc is None:
                count = out.sum()
            else:
                count = acc.add(_codes(name, module, kind, out, batch_size)).sum()
            total[0] = total[0] + count.double()
            total[1] += out.numel()

        return hook

    def on_synapse(name: str, measure: bool) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            if not args:  # called with keywords only: not measured
                return
            total = inputs.setdefault(name, [0.0, 0])
            total[0] = total[0] + args[0].sum().double()
            total[1] += args[0].numel()
            if measure:
                macs[name] = macs.get(name, 0) + _macs(module, args[0], out)
                x = args[0]
                odd = (x != x.round()).sum() if x.is_floating_point() else 0
                real[name] = real.get(name, 0) + odd

        return hook

    handles = [m.register_forward_hook(on_spikes(n, k)) for n, m, k in _neurons(model)]
    if table is None:
        for name, module in model.named_modules():
            if isinstance(module, SYNAPTIC):
                handles.append(module.register_forward_hook(on_synapse(name, True)))
    else:
        modules = dict(model.named_modules())
        for row in table:
            module = modules.get(row.name)
            if row.kind in ("conv", "linear") and module is not None:
                handles.append(module.register_forward_hook(on_synapse(row.name, False)))
    try:
        with torch.no_grad():
            (forward or model)(x)
    finally:
        for handle in handles:
            handle.remove()
    return Activity(
        layer_rates={k: float(s) / n if n else 0.0 for k, (s, n) in spikes.items()},
        input_rates={k: float(s) / n if n else 0.0 for k, (s, n) in inputs.items()},
        kernels=acc,
        input_macs=macs,
        real_inputs=frozenset(k for k, n in real.items() if int(n)),
    )


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


def model_cost(act: Activity, model: nn.Module, batch_size: int) -> CostReport:
    """Per-sample costs of a model without config, from a pass recorded without a table.

    Every conv/linear is one row, its MACs from its shapes. Input spikes (or sums of spikes, all
    integers): ``sops = MACs x mean input`` at 0.9 pJ each; real-valued input: MACs at 4.6 pJ.
    Attention products are not modules: ``matmul_macs`` is 0 and they are not in ``sops``.
    """
    modules = dict(model.named_modules())
    rows: list[LayerReport] = []
    for name, total in act.input_macs.items():
        module, macs = modules[name], total // batch_size
        spiking, rate = name not in act.real_inputs, act.input_rates[name]
        sops = macs * rate if spiking else 0.0
        rows.append(
            LayerReport(
                name,
                "linear" if isinstance(module, nn.Linear) else "conv",
                sum(p.numel() for p in module.parameters(recurse=False)),
                macs,
                0,
                spiking,
                rate if spiking else 1.0,
                sops,
                (sops * E_AC_PJ if spiking else macs * E_MAC_PJ) * 1e-9,
            )
        )
    layers = tuple(rows)
    return CostReport(
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(r.macs for r in layers),
        matmul_macs=0,
        sops=sum(r.sops for r in layers),
        energy_mj=sum(r.energy_mj for r in layers),
        _layers=lambda: layers,
    )


# --------------------------------------------------------------------------- the context


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
        from autost.models import resolve_config

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
