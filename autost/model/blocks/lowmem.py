"""Memory savers that leave results unchanged: spike operands saved for backward as
``torch.bool``, and encoder blocks recomputed in backward (:func:`checkpoint_module`).

A linear layer, conv, matrix product or elementwise product whose input comes from a spiking
neuron saves that input, in float, for its backward. Spikes are 0 or 1, so a ``torch.bool``
copy (a quarter of float32's bytes) holds them exactly; the spike-shortcut residual stream
(spikes added to spikes) holds small non-negative integers, exact in ``torch.uint8``. Each op
here is a custom autograd function whose forward is the plain op and whose backward rebuilds
the operand in the compute dtype and calls the very kernels autograd would call for the plain
op (the same ``mm``/``bmm`` calls on the same layouts, ``aten.convolution_backward``, the same
``sum_to`` reductions), so outputs and gradients are bit-identical to the default path.
Max-pools (:func:`max_pool2d`) keep only their argmax positions, as int16: their gradient
kernel never reads the input's values.

Callers state what an operand is: ``"binary"`` (a neuron's spikes, or a product or max-pool of
spikes) or ``"count"`` (a sum of spike tensors, at most 255), or ``None`` (real-valued: saved as
is). Nothing checks this by default; with ``AUTOST_CHECK_SPIKES=1`` every packed operand is
verified and a wrong one raises (slow; for debugging a new block).

Modules that use these ops derive from :class:`LowMemory`; :func:`set_low_memory` switches
them all (``SpikingTransformer.low_memory``, the trainer's ``low_memory`` setting). What the
neurons save is already minimal: the LIF op keeps one float tensor per call, H (eager kernel)
or its input (compiled kernel, H recomputed), which is what the surrogate gradient reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from autost.model.config import ArchConfig

SpikeKind = Literal["binary", "count"]
#: Set to 1 to verify that every operand packed as spikes really is (slow).
CHECK_ENV = "AUTOST_CHECK_SPIKES"
#: Whether models use the low-memory ops unless told otherwise: off. They give the same
#: gradients and cost nothing on large models (spikformer-4-384: 0.92-1.06x the speed), but on
#: the small networks of the digits space the extra autograd nodes cost 1.10-1.45x the step
#: time (benchmarks/results/memory.md, benchmarks/lowmem_small.py).
LOW_MEMORY_DEFAULT = False
_COUNT_MAX = 255  # the largest count uint8 holds


class LowMemory:
    """Mixin for modules with a low-memory path; ``low_memory`` switches it."""

    low_memory: bool = LOW_MEMORY_DEFAULT


def set_low_memory(module: nn.Module, enabled: bool) -> None:
    """Switch the low-memory path of every :class:`LowMemory` module inside ``module``."""
    for m in module.modules():
        if isinstance(m, LowMemory):
            m.low_memory = bool(enabled)


def stream_kind(cfg: ArchConfig) -> SpikeKind | None:
    """What the encoder's residual stream holds: spike counts with spike shortcuts (the stem
    adds two spike tensors, every branch one more), real values with membrane shortcuts."""
    spiking = cfg.shortcut == "spike" and cfg.stem != "sps-membrane"
    return "count" if spiking and 2 + 2 * cfg.depth <= _COUNT_MAX else None


def count_kind(terms: int) -> SpikeKind | None:
    """The kind of a sum of ``terms`` spike tensors."""
    return "count" if terms <= _COUNT_MAX else None


# --------------------------------------------------------------------------- packing


def _pack(x: Tensor, kind: SpikeKind | None) -> Tensor:
    """``x`` in its smallest exact dtype (strides kept for dense layouts)."""
    if kind is None:
        return x
    if os.environ.get(CHECK_ENV, "0") not in ("", "0"):
        top = 1 if kind == "binary" else _COUNT_MAX
        values = x.detach()
        if not bool(((values >= 0) & (values <= top) & (values == values.round())).all()):
            raise RuntimeError(
                f"low-memory op: an operand declared {kind!r} is not integers in [0, {top}]"
            )
    return x.to(torch.bool if kind == "binary" else torch.uint8)


def _unpack(x: Tensor | None, dtype: torch.dtype) -> Tensor:
    assert x is not None
    return x.to(dtype)


# --------------------------------------------------------------------------- linear


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, kind: SpikeKind
    ) -> Tensor:
        out = F.linear(x, weight, bias)
        ctx.dtype, ctx.shape = out.dtype, x.shape
        # F.linear flattens contiguous inputs and fuses the bias (addmm); otherwise it adds the
        # bias to the N-d product, so the bias gradient is reduced from that shape.
        ctx.flat_bias = x.is_contiguous() or x.dim() == 2
        ctx.save_for_backward(_pack(x, kind) if ctx.needs_input_grad[1] else None, weight)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        packed, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:  # addmm/mm backward: grad.mm(weight)
            grad_x = grad2.mm(weight.to(ctx.dtype)).view(ctx.shape)
        if ctx.needs_input_grad[1]:  # weight.t() is column-major: grad.t().mm(x)
            grad_w = grad2.t().mm(_unpack(packed, ctx.dtype).reshape(grad2.shape[0], -1))
        if ctx.needs_input_grad[2]:
            grad_b = (grad2 if ctx.flat_bias else grad).sum_to_size(grad.shape[-1])
        return grad_x, grad_w, grad_b, None


def spike_linear(x: Tensor, linear: nn.Linear, kind: SpikeKind | None) -> Tensor:
    """``linear``'s op on ``x``, saving ``x`` (of ``kind``) for backward in its smallest exact
    form (module hooks do not run: call a :class:`SpikeLinear` for those)."""
    if kind is None or not _tracked(x, linear.weight):
        return F.linear(x, linear.weight, linear.bias)
    out: Tensor = _SpikeLinear.apply(x, linear.weight, linear.bias, kind)
    return out


class _SpikeInput(LowMemory):
    """A layer module whose input holds ``spikes`` (the keyword; the rest go to the layer)."""

    def __init__(self, *args: Any, spikes: SpikeKind | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spikes = spikes


class SpikeLinear(_SpikeInput, nn.Linear):
    """``nn.Linear`` whose input holds ``spikes``; with ``low_memory`` that input is saved for
    backward as bool/uint8 (:func:`spike_linear`). Same parameters, hooks and results."""

    def forward(self, x: Tensor) -> Tensor:
        return spike_linear(x, self, self.spikes if self.low_memory else None)


# --------------------------------------------------------------------------- convolution


class _SpikeConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, conv: nn.Module, kind: SpikeKind
    ) -> Tensor:
        assert isinstance(conv, (nn.Conv1d, nn.Conv2d))
        out: Tensor = conv._conv_forward(x, weight, bias)
        ctx.dtype, ctx.bias_sizes = out.dtype, None if bias is None else list(bias.shape)
        ctx.args = (conv.stride, conv.padding, conv.dilation, conv.groups)
        ctx.save_for_backward(_pack(x, kind) if ctx.needs_input_grad[1] else None, weight)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
            ctx.x_meta = (x.shape, x.stride())
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        packed, weight = ctx.saved_tensors
        if packed is None:  # only its shape and layout are read
            shape, stride = ctx.x_meta
            x = torch.empty_strided(shape, stride, dtype=ctx.dtype, device=grad.device).zero_()
        else:
            x = _unpack(packed, ctx.dtype)
        stride, padding, dilation, groups = ctx.args
        mask = list(ctx.needs_input_grad[:3])
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad,
            x,
            weight.to(ctx.dtype),
            ctx.bias_sizes,
            stride,
            padding,
            dilation,
            False,
            [0] * len(stride),
            groups,
            mask,
        )
        return grad_x, grad_w, grad_b, None, None


def spike_conv(x: Tensor, conv: nn.Conv1d | nn.Conv2d, kind: SpikeKind | None) -> Tensor:
    """``conv``'s op on ``x``, saving ``x`` (of ``kind``) in its smallest exact form (module
    hooks do not run: call a :class:`SpikeConv2d` or :class:`SpikeConv1d` for those)."""
    plain = conv.padding_mode != "zeros" or isinstance(conv.padding, str)
    if kind is None or plain or not _tracked(x, conv.weight):
        out: Tensor = conv._conv_forward(x, conv.weight, conv.bias)
        return out
    out = _SpikeConv.apply(x, conv.weight, conv.bias, conv, kind)
    return out


class SpikeConv2d(_SpikeInput, nn.Conv2d):
    """``nn.Conv2d`` whose input holds ``spikes``; with ``low_memory`` that input is saved for
    backward as bool/uint8 (:func:`spike_conv`). Same parameters, hooks and results."""

    def forward(self, x: Tensor) -> Tensor:
        return spike_conv(x, self, self.spikes if self.low_memory else None)


class SpikeConv1d(_SpikeInput, nn.Conv1d):
    """``nn.Conv1d`` counterpart of :class:`SpikeConv2d`."""

    def forward(self, x: Tensor) -> Tensor:
        return spike_conv(x, self, self.spikes if self.low_memory else None)


# --------------------------------------------------------------------------- products


def _save_operands(
    ctx: Any, out: Tensor, a: Tensor, b: Tensor, a_kind: SpikeKind | None, b_kind: SpikeKind | None
) -> None:
    """For a product ``out`` of ``a`` and ``b``: each operand packed only if the other's gradient
    needs it (``a`` for ``b``'s, ``b`` for ``a``'s), with the dtype and shapes to rebuild them."""
    ctx.dtype, ctx.shapes = out.dtype, (a.shape, b.shape)
    ctx.save_for_backward(
        _pack(a, a_kind) if ctx.needs_input_grad[1] else None,
        _pack(b, b_kind) if ctx.needs_input_grad[0] else None,
    )


class _SpikeMatmul(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, a: Tensor, b: Tensor, a_kind: SpikeKind | None, b_kind: SpikeKind | None
    ) -> Tensor:
        out = torch.matmul(a, b)
        _save_operands(ctx, out, a, b, a_kind, b_kind)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        # torch.matmul of two >= 3-d tensors: expand the batch dims, fold them, bmm.
        packed_a, packed_b = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        batch = torch.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        n, p = a_shape[-2], b_shape[-1]
        grad3 = grad.reshape(-1, n, p)
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            b3 = _fold(_unpack(packed_b, ctx.dtype), batch)
            grad_a = grad3.bmm(b3.transpose(1, 2)).reshape(*batch, *a_shape[-2:])
            grad_a = grad_a.sum_to_size(a_shape)
        if ctx.needs_input_grad[1]:
            a3 = _fold(_unpack(packed_a, ctx.dtype), batch)
            grad_b = a3.transpose(1, 2).bmm(grad3).reshape(*batch, *b_shape[-2:])
            grad_b = grad_b.sum_to_size(b_shape)
        return grad_a, grad_b, None, None


def _fold(x: Tensor, batch: torch.Size) -> Tensor:
    return x.expand(*batch, *x.shape[-2:]).reshape(-1, *x.shape[-2:])


def spike_matmul(
    a: Tensor, b: Tensor, a_kind: SpikeKind | None, b_kind: SpikeKind | None
) -> Tensor:
    """``a @ b`` for tensors of >= 3 equal dims, saving spike operands in their smallest form."""
    plain = a_kind is None and b_kind is None
    if plain or a.dim() != b.dim() or a.dim() < 3 or not _tracked(a, b):
        return a @ b
    out: Tensor = _SpikeMatmul.apply(a, b, a_kind, b_kind)
    return out


class _SpikeMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
        out = a * b
        _save_operands(ctx, out, a, b, "binary", "binary")
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        packed_a, packed_b = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = (grad * _unpack(packed_b, ctx.dtype)).sum_to_size(a_shape)
        if ctx.needs_input_grad[1]:
            grad_b = (grad * _unpack(packed_a, ctx.dtype)).sum_to_size(b_shape)
        return grad_a, grad_b


def spike_mul(a: Tensor, b: Tensor) -> Tensor:
    """``a * b`` of two binary spike tensors (broadcasting), saving both as ``torch.bool``."""
    if a.dtype != b.dtype or not _tracked(a, b):
        return a * b
    out: Tensor = _SpikeMul.apply(a, b)
    return out


class _IndexedMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
        args = ([kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False)
        out, indices = torch.ops.aten.max_pool2d_with_indices(x, *args)
        ctx.args, ctx.x_meta = args, (x.shape, x.stride(), x.dtype)
        # positions inside one input plane; int16 holds planes of up to 2**15 - 1 pixels
        small = x.shape[-1] * x.shape[-2] < 2**15
        ctx.save_for_backward(indices.to(torch.int16 if small else torch.int32))
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (indices,) = ctx.saved_tensors
        shape, stride, dtype = ctx.x_meta
        # the kernel reads only the input's shape and layout
        x = torch.empty_strided(shape, stride, dtype=dtype, device=grad.device)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, *ctx.args, indices.to(torch.int64)
        )
        return grad_x, None, None, None


def max_pool2d(x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
    """``F.max_pool2d`` that saves for backward only the argmax positions (int16/int32),
    not its input: the gradient kernel reads the input's shape alone."""
    if not _tracked(x):
        return F.max_pool2d(x, kernel, stride, padding)
    out: Tensor = _IndexedMaxPool.apply(x, kernel, stride, padding)
    return out


def _tracked(*tensors: Tensor) -> bool:
    """Whether autograd records an op on ``tensors`` (else the plain op saves nothing) outside
    ``torch.compile``, whose partitioner chooses for itself what to save and recompute."""
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return False
    return any(t.requires_grad for t in tensors)


# --------------------------------------------------------------------------- checkpointing


def checkpoint_module(module: nn.Module, *args: Tensor) -> Tensor:
    """``module(*args)`` under ``torch.utils.checkpoint`` (non-reentrant): its activations are
    dropped after forward and recomputed in backward, giving the same outputs and gradients.

    The recomputation restores the RNG state (as torch does) and leaves BatchNorm running
    statistics as the forward pass left them, so they are updated once per step, not twice.
    """
    from torch.utils.checkpoint import checkpoint

    def contexts() -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
        return nullcontext(), _kept_running_stats(module)

    if torch.compiler.is_compiling():  # traced once: buffer updates are not replayed
        out: Tensor = checkpoint(module, *args, use_reentrant=False)
    else:
        out = checkpoint(module, *args, use_reentrant=False, context_fn=contexts)
    return out


@contextmanager
def _kept_running_stats(module: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm buffer inside ``module`` on exit."""
    buffers = [
        b
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in (m.running_mean, m.running_var, m.num_batches_tracked)
        if b is not None
    ]
    kept = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in zip(buffers, kept, strict=True):
                b.copy_(value)
