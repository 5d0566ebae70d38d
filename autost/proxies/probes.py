"""How the zero-cost proxies read any PyTorch spiking network: layouts and neuron-input probes.

Nothing here depends on autost's own blocks, so that :mod:`autost.proxies.zerocost` also runs
on SpikingJelly, snnTorch or Norse networks (neurons found by type, :func:`find_neurons`):

- layouts: the batch is ``x [T, B, ...]`` (5-D, time-major) or ``x [B, ...]``; neuron tensors
  are read time-major ``[T, B, ...]`` (autost, SpikingJelly multi-step); a tensor whose first axis
  is the batch and whose second is not is one step ``[B, ...]`` (snnTorch / Norse single-step
  calls, every call one timestep). Where ``T == B`` the tensor is taken as time-major;
- :func:`channel_axis`: the channel of a per-sample map ``[C, H, W]`` is its first axis, of
  anything else (tokens ``[N, D]``, vectors ``[D]``) its last;
- :func:`neuron_inputs`: forward pre-hooks that hand every neuron call's input to a callback,
  optionally through a fresh autograd node, so that ``dL/d(input)`` counts only the paths that
  go through the neuron (zero-cost-nas's identity ``dummy`` after each layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from autost.errors import AutostError
from autost.proxies.neuron_types import find_neurons


def input_batch_axis(x: Tensor, batch: int) -> int:
    """The batch axis of a model input: 1 for ``[T, B, C, H, W]`` or ``[T, B, ...]``, else 0."""
    if x.dim() == 5 or (x.dim() >= 2 and x.shape[0] != batch and x.shape[1] == batch):
        return 1
    return 0


def time_major(t: Tensor, batch: int) -> Tensor | None:
    """``t`` as ``[T, B, ...]`` (one step ``[B, ...]`` gains ``T = 1``); ``None`` if no axis
    of the first two has the batch size."""
    if t.dim() >= 2 and t.shape[1] == batch:
        return t
    if t.dim() >= 1 and t.shape[0] == batch:
        return t.unsqueeze(0)
    return None


def channel_axis(t: Tensor) -> int:
    """The channel axis of a time-major ``[T, B, ...]`` tensor (see the module docstring)."""
    return 2 if t.dim() == 5 else t.dim() - 1


def channels_first(t: Tensor) -> Tensor:
    """A time-major ``[T, B, ...]`` tensor (3-D or more) as ``[C, B, rest]``: channels,
    samples, and every other entry (timesteps, positions) of that channel and sample."""
    axis = channel_axis(t)
    moved = t.movedim(axis, 0).movedim(2, 1)  # [C, B, T, ...]
    return moved.reshape(t.shape[axis], t.shape[1], -1)


def split_batch(x: Tensor, y: Tensor, parts: int) -> list[tuple[Tensor, Tensor]]:
    """``(x, y)`` in ``parts`` mini-batches along the batch axis (sizes differ by at most 1)."""
    axis = input_batch_axis(x, len(y))
    if len(y) < parts:
        raise AutostError(f"a batch of {len(y)} samples cannot be split into {parts} mini-batches")
    return list(
        zip(torch.tensor_split(x, parts, dim=axis), torch.tensor_split(y, parts), strict=True)
    )


Probe = Callable[[str, Tensor], None]


@contextmanager
def neuron_inputs(model: nn.Module, probe: Probe, isolate: bool = False) -> Iterator[None]:
    """While the block runs, every neuron call hands ``(module path, input)`` to ``probe``.

    ``isolate``: the neuron consumes a view of its input made in the hook, so that the gradient
    of that view holds only the paths through this neuron (the input may also feed a shortcut).
    """

    def hook_for(name: str) -> Callable[[nn.Module, tuple[Any, ...]], Any]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> Any:
            if not args or not isinstance(args[0], Tensor):
                return None
            drive = args[0].view_as(args[0]) if isolate else args[0]
            probe(name, drive)
            return (drive, *args[1:]) if isolate else None

        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in find_neurons(model)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
