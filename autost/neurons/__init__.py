"""Multi-step spiking neurons over time-major tensors ``[T, ...]``.

One LIF equation (SpikingJelly's ``MultiStepLIFNode``, ``decay_input=True``, hard reset)::

    H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau,   V_{-1} = v_reset
    S_t = Heaviside(H_t - v_threshold)                    (a spike when H_t >= v_threshold)
    V_t = H_t * (1 - S_t) + v_reset * S_t

Backward replaces dS/dH by a registered surrogate derivative; ``detach_reset`` treats the S in
the reset as a constant. Two kernels compute it: :func:`lif_multistep_reference`, a plain loop
under ordinary autograd (the ground truth), and :func:`lif_multistep`, a custom autograd
function whose backward runs the reverse-time recurrence by hand. Its backends:

- ``compiled``: ``torch.compile`` turns the whole recurrence into one fused loop (C++ on CPU,
  Triton on CUDA). Forward saves nothing but the input, backward recomputes H on the fly.
- ``eager``: preallocated buffers and in-place ops, one step at a time; forward saves H.
- ``triton``: two hand-written Triton kernels (:mod:`.triton_kernels`), one launch for the
  forward over all T steps and one for the backward; forward saves nothing but the input.
  CUDA tensors only (CPU tensors too under ``TRITON_INTERPRET=1``, Triton's slow interpreter);
  elsewhere, or without triton, the call runs what ``auto`` would, with a warning (once). A
  surrogate the kernels do not implement (only ``sigmoid`` and ``atan``) gets its backward
  from the ``compiled`` or ``eager`` kernel.
- ``auto`` (default): ``$AUTOST_LIF_BACKEND`` (``eager|compiled|triton|auto``) if set, else
  ``triton`` for CUDA tensors where triton is installed, else ``compiled`` where a compiler is
  present and the input has at least ``AUTO_COMPILE_MIN_NUMEL`` elements (small ones do not
  repay compiling), else ``eager``.

Inside an enclosing ``torch.compile`` the fused kernels are traced into the caller's graph;
under a dispatch mode (a FLOP counter, say) the eager kernel runs so the mode sees its ops.
If compiling fails the call runs eagerly with a warning (once); a failure of the toolchain
itself (no C++ compiler, unsupported platform) keeps that device on ``eager`` from then on. A
triton kernel that fails keeps that device off ``triton`` from then on, with a warning (once).
Set ``AUTOST_LIF_BACKEND=eager`` to never compile (short test runs, say).

Neurons keep no state between calls: every forward runs a whole sequence from ``v_reset``.

The code is split where the concepts split: :mod:`.surrogates` (surrogate gradients),
:mod:`.kernels` (the arithmetic: reference loop, fused and eager kernels), :mod:`.triton_kernels`
(the same arithmetic in Triton, imported only when used), :mod:`.backend`
(choosing, compiling and running a kernel; the autograd function) and :mod:`.modules` (LIF and
PLIF modules, their registry, spike recording).
"""

from autost.neurons.backend import (
    AUTO_COMPILE_MIN_NUMEL,
    BACKEND_ENV,
    BACKENDS,
    lif_multistep,
)
from autost.neurons.kernels import lif_multistep_reference
from autost.neurons.modules import (
    LIF,
    PLIF,
    list_neurons,
    make_neuron,
    neuron_layers,
    record_spikes,
    register_neuron,
)
from autost.neurons.surrogates import (
    Surrogate,
    get_surrogate,
    list_surrogates,
    register_surrogate,
)

__all__ = [
    "AUTO_COMPILE_MIN_NUMEL",
    "BACKENDS",
    "BACKEND_ENV",
    "LIF",
    "PLIF",
    "Surrogate",
    "get_surrogate",
    "lif_multistep",
    "lif_multistep_reference",
    "list_neurons",
    "list_surrogates",
    "make_neuron",
    "neuron_layers",
    "record_spikes",
    "register_neuron",
    "register_surrogate",
]
