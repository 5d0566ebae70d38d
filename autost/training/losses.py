"""Training objectives on the model's per-timestep outputs.

- ``ce``: cross-entropy (with label smoothing) of the logits averaged over time.
- ``tet`` (Deng et al., ICLR 2022, as the Spike-driven Transformer trains on DVS):
  ``(1 - lambda) * mean_t CE(o_t, y) + lambda * mean_t MSE(o_t, phi)``, ``lambda = tet_lambda``
  (1e-3), ``phi = tet_target`` (1.0).
- ``trt``, temporal reversed training (after Zuo et al., 2024). With ``f = features [T, B, D]``
  of the last stage and ``f_r`` the same network's features on the time-reversed input
  (event data: the input frames in reverse order; static data, whose direct-coded input is the
  same at every step: the stem's output spikes in reverse order), ``o = head(f)`` and
  ``o_r = head(f_r)`` time-averaged logits, and ``r = mean_t f``, ``r_r = mean_t f_r`` the
  firing rates:

      L = CE(o, y) + trt_consistency * KL(softmax(o).detach() || softmax(o_r))
                   + trt_star * CE(head_linear(r * r_r), y)

  The consistency term pulls the reversed prediction towards the original one (the original
  branch is the teacher, so it is not pulled back); the "star" term classifies the
  element-wise product of the original and reversed firing rates with the model's linear head.
  Inference uses the original branch only; the reversed pass doubles the training compute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autost.model.network import SpikingTransformer
from autost.training.settings import TrainSettings


class Objective(nn.Module):
    """``forward(x, y) -> (loss, logits [B, K])``; wraps the model so that a distributed
    wrapper (DDP) sees the whole loss computation, reversed passes included."""

    def __init__(self, model: SpikingTransformer, settings: TrainSettings, static: bool) -> None:
        super().__init__()
        self.model = model
        self.settings = settings
        self.static = static

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        s = self.settings
        if s.loss == "ce":
            logits = self.model(x)
            return F.cross_entropy(logits, y, label_smoothing=s.label_smoothing), logits
        if s.loss == "tet":
            per_step = self.model(x, per_timestep=True)
            return tet_loss(per_step, y, s.label_smoothing, s.tet_lambda, s.tet_target), (
                per_step.mean(dim=0)
            )
        return self._trt(x, y)

    def _trt(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        s, model = self.settings, self.model
        feats = model.forward_features(x)
        feats_r = self._reversed_features(x)
        logits = model.forward_head(feats)
        logits_r = model.forward_head(feats_r)
        loss = F.cross_entropy(logits, y, label_smoothing=s.label_smoothing)
        consistency = F.kl_div(
            F.log_softmax(logits_r.float(), dim=-1),
            F.softmax(logits.detach().float(), dim=-1),
            reduction="batchmean",
        )
        star = model.head(feats.mean(dim=0) * feats_r.mean(dim=0))
        loss = loss + s.trt_consistency * consistency
        loss = loss + s.trt_star * F.cross_entropy(star, y, label_smoothing=s.label_smoothing)
        return loss, logits

    def _reversed_features(self, x: Tensor) -> Tensor:
        if not self.static:
            return self.model.forward_features(x.flip(0))
        handle = self.model.stem.register_forward_hook(lambda m, args, out: out.flip(0))
        try:
            return self.model.forward_features(x)
        finally:
            handle.remove()


def tet_loss(
    per_step: Tensor, y: Tensor, label_smoothing: float, lam: float, target: float
) -> Tensor:
    """TET: per-timestep cross-entropy plus ``lam`` times the MSE of the outputs to ``target``."""
    steps = per_step.shape[0]
    flat = per_step.reshape(-1, per_step.shape[-1])
    ce = F.cross_entropy(flat, y.repeat(steps), label_smoothing=label_smoothing)
    mse = F.mse_loss(per_step.float(), torch.full_like(per_step.float(), target))
    return (1 - lam) * ce + lam * mse
