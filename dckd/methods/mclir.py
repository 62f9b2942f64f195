"""MCLIR-style model contrast ("Learning from History", Wu et al., AAAI 2024): no teacher.

    L = w_rec L_rec(S(x), y) + w_mc * sum_l w_l |f_l(S(x)) - f_l(y)| / (|f_l(S(x)) - f_l(H(x))| + 1e-7)

The anchor is the student output, the positive the ground truth, the negative the history model's
output H(x) (a slowly updated copy of the student, the same schedule as DCKD's). Distances are taken in
the frozen VQGAN's feature levels (``feature_space: vqgan``) or in pixels (``pixel``, one level).
This reproduces the idea as DCKD's appendix compares it, not MCLIR's exact released recipe.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dckd.methods.dckd.feature_space import VQGANSpace
from dckd.methods.dckd.history import HistoryModel
from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.methods.base import Method, reconstruction_function, total


class MCLIR(Method):
    loss_names = ("reconstruction", "model_contrast")

    def __init__(
        self,
        student: nn.Module,
        history: HistoryModel,
        vqgan: VQGANSpace | None,
        *,
        reconstruction_loss: str = "l1",
        reconstruction_weight: float = 1.0,
        contrast_weight: float = 0.1,
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
    ) -> None:
        self.student = student
        self.history = history
        self.vqgan = vqgan
        self.reconstruction = reconstruction_function(reconstruction_loss)
        self.reconstruction_weight = reconstruction_weight
        self.contrast_weight = contrast_weight
        self.layer_weights = tuple(layer_weights) if vqgan is not None else (1.0,)

    def _features(self, images: Tensor) -> list[Tensor]:
        return self.vqgan.features(images) if self.vqgan is not None else [images.float()]

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lq, gt = batch["lq"], batch["gt"]
        output = self.student(lq)
        terms = {}
        if self.reconstruction_weight:
            terms["reconstruction"] = self.reconstruction_weight * self.reconstruction(output, gt)
        if self.contrast_weight:
            size = lq.shape[0]
            with torch.no_grad():
                frozen = self._features(torch.cat([gt, self.history.network(lq)]))
            terms["model_contrast"] = self.contrast_weight * contrastive_ratio_loss(
                self._features(output),
                [feature[:size] for feature in frozen],
                [feature[size:] for feature in frozen],
                self.layer_weights,
            )
        return {"loss": total(terms), "output": output, **terms}

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        if not self.contrast_weight:
            return {}
        updated = self.history.maybe_update(iteration, student, ema)
        return {"history_updates": float(self.history.updates)} if updated else {}

    def state_dict(self) -> dict:
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.history.load_state_dict(state["history"])
