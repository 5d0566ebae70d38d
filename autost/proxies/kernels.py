"""The kernels over the binary spike codes of one batch behind SAHD (SNASNet) and NASWOT's
Hamming kernel (the proxies themselves are in :mod:`autost.proxies.hamming`).

For every neuron layer ``l`` (:func:`autost.proxies.find_neurons`: autost, SpikingJelly,
snnTorch, Norse or registered neurons; a single-step neuron's call is one timestep) and
timestep ``t`` the spikes of the B samples form binary codes
``x_i`` of length ``N_l`` (the layer's neurons per sample). With ``n_i = |x_i|`` (spike count),
``G = x x^T`` (shared spikes) and the Hamming distance ``d_ij = n_i + n_j - 2 G_ij``:

- ``naswot_hd`` (Mellor et al., ICML 2021, "Neural Architecture Search without Training"):
  ``K_H = sum_{l,t} (N_l - d_ij)`` (= x x^T + (1-x)(1-x)^T), i.e. ``N_A - d_H`` over the
  concatenated codes of all layers and timesteps; score ``log|det K_H|``. The codes are the
  spikes themselves (Mellor et al. binarise ReLU inputs, ``x > 0``: the same on/off pattern).
- ``sahd`` (Kim et al., ECCV 2022, "Neural Architecture Search for Spiking Neural Networks",
  SNASNet): with firing rates ``r_i = n_i / N_l`` the expected distance of two random codes with
  those rates is ``N_l * e_ij``, ``e_ij = r_i (1 - r_j) + (1 - r_i) r_j``, and each layer-step adds
  ``N_l - 0.5 * d_ij / (e_ij + 1e-3)``; the kernel is averaged over the ``L * T`` layer-steps and
  the score is ``log|det K|``. This follows ``find_best_neuroncell`` in ``model_snn.py`` of
  github.com/Intelligent-Computing-Lab-Yale/Neural-Architecture-Search-for-Spiking-Neural-Networks
  (a forward hook on every ``LIFNode``, called once per timestep; ``np.linalg.slogdet`` whose
  sign is dropped). Differences: the official search averages the score of two random batches
  (``repeat = 2``, batch 256); here one fixed batch of the recipe's size is scored. As there,
  each layer-step's terms are float32 (from exact counts) and their sum is float64.

Both scores have sign +1 (more distinguishable codes at initialisation, better architecture).
A singular kernel (two samples with identical codes everywhere, e.g. a silent network) gives
``-inf``, which the ensembles rank last.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

#: SNASNet's ``1e-3`` added to the expected distance before taking its reciprocal.
SAHD_EPS = 1e-3
#: float32 sums of 0/1 products are exact integers below 2**24.
_EXACT_F32 = 1 << 24


def log_abs_det(kernel: np.ndarray) -> float:
    """``log|det K|`` as ``np.linalg.slogdet`` gives it (``-inf`` when K is singular)."""
    return float(np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))[1])


class KernelAccumulator:
    """Accumulates the SAHD and Hamming kernels of binary codes, one layer at a time.

    ``add(spikes)`` takes one layer's spikes ``[T, B, ...]`` (values 0/1); every timestep is a
    code matrix ``[B, N]`` whose Gram matrix ``x x^T`` (``[B, B]``, exact counts) is all that is
    kept. The kernels are formed once, vectorised over every layer-step, when first read.
    """

    def __init__(self) -> None:
        self._grams: list[Tensor] = []
        self._widths: list[int] = []
        self._kernels: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def layer_steps(self) -> int:
        """Number of code matrices added (layers x timesteps)."""
        return len(self._widths)

    def add(self, spikes: Tensor) -> Tensor:
        """Add one layer's codes, ``spikes [T, B, ...]``; returns the spike counts ``[T, B]``."""
        steps, batch = spikes.shape[0], spikes.shape[1]
        x = spikes.reshape(steps, batch, -1)
        width = x.shape[-1]
        dtype = torch.float32 if width < _EXACT_F32 else torch.float64
        x = x.to(dtype)
        gram = torch.bmm(x, x.transpose(1, 2))  # G_ij = shared spikes; G_ii = n_i (x is 0/1)
        if width and batch:
            self._grams.append(gram)
            self._widths += [width] * steps
            self._kernels = None
        return gram.diagonal(dim1=1, dim2=2)

    def _build(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._grams:
            raise ValueError("no spike codes were added")
        if self._kernels is None:
            # each layer-step's terms in float32 as the official code, sums over them in float64
            exact = torch.cat(self._grams)  # [S, B, B] over the S layer-steps, exact counts
            gram = exact.float()
            width = torch.tensor(self._widths, dtype=gram.dtype, device=gram.device)
            count = gram.diagonal(dim1=1, dim2=2)  # [S, B]
            rate = count / width[:, None]
            # d_ij = n_i + n_j - 2 G_ij;  e_ij = r_i (1 - r_j) + (1 - r_i) r_j
            dist = torch.add(count[:, :, None] + count[:, None, :], gram, alpha=-2.0)
            ri, rj = rate[:, :, None], rate[:, None, :]
            expected = torch.addcmul(ri + rj, ri, rj, value=-2.0).add_(SAHD_EPS)
            scaled = dist.div_(expected).sum(dim=0, dtype=torch.float64)
            total_width = float(sum(self._widths))
            sahd = (total_width - 0.5 * scaled) / len(self._widths)
            # sum_s (N_s - d_ij) from summed counts: exact integers in float64
            counts = exact.diagonal(dim1=1, dim2=2).sum(dim=0, dtype=torch.float64)
            shared = exact.sum(dim=0, dtype=torch.float64)
            hamming = total_width - (counts[:, None] + counts[None, :] - 2.0 * shared)
            self._kernels = sahd.cpu().numpy(), hamming.cpu().numpy()
        return self._kernels

    def sahd_kernel(self) -> np.ndarray:
        """SNASNet's kernel: the sum over layer-steps divided by their number."""
        return self._build()[0]

    def hamming_kernel(self) -> np.ndarray:
        """NASWOT's ``N_A - d_H`` over the concatenated codes (a plain sum)."""
        return self._build()[1]
