"""MCLIR-style model contrast ("Learning from History", Wu et al., AAAI 2024): no teacher.

    L = w_rec L_rec(S(x), y) + w_mc * sum_l w_l |f_l(S(x)) - f_l(y)| / (|f_l(S(x)) - f_l(H(x))| + 1e-7)

The anchor is the student output, the positive the ground truth, the negative the history model's
output H(x) (a slowly updated copy of the student, the same schedule as DCKD's). Distances are taken in
the frozen VQGAN's feature levels (``feature_space: vqgan``) or in pixels (``pixel``, one level).
This reproduces the idea as DCKD's appendix compares it, not MCLIR's exact released recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.methods.base import Method, Needs, Parts, ReconstructionOptions, check_weights, result
from dckd.methods.dckd.feature_space import VQGANSpace
from dckd.methods.dckd.history import HistoryModel, HistoryOptions


@dataclass
class MCLIROptions(ReconstructionOptions):
    """Options of method ``mclir``."""

    contrast_weight: float = 0.1
    """Weight of the model-contrastive term: anchor S(x), positive the ground truth, negative the history model H(x)."""
    feature_space: Literal["vqgan", "pixel"] = "vqgan"
    """Where distances are taken: the frozen VQGAN's feature levels, or plain pixels."""
    layer_weights: list[float] = field(default_factory=lambda: [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0])
    """Weight of each VQGAN level (``vqgan`` feature space)."""
    vqgan_input_range: Literal["zero_one", "minus_one_one"] = "zero_one"
    """Range of the images fed to the VQGAN."""
    history: HistoryOptions = field(default_factory=HistoryOptions)
    """The history model (a slowly updated copy of the student)."""

    def __post_init__(self) -> None:
        check_weights(self, ["reconstruction_weight", "contrast_weight"])


class MCLIR(Method):
    Options = MCLIROptions
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
        super().__init__(student, reconstruction_loss, reconstruction_weight)
        self.history = history
        self.vqgan = vqgan
        self.contrast_weight = contrast_weight
        self.layer_weights = tuple(layer_weights) if vqgan is not None else (1.0,)

    @classmethod
    def needs(cls, options: MCLIROptions) -> Needs:
        contrast = options.contrast_weight > 0
        return Needs(vqgan=contrast and options.feature_space == "vqgan", history=True)

    @classmethod
    def build(cls, options: MCLIROptions, parts: Parts) -> MCLIR:
        use_vqgan = options.contrast_weight > 0 and options.feature_space == "vqgan"
        return cls(
            parts.student,
            HistoryModel.from_options(parts.student, options.history, parts.ema_decay, "mclir"),
            VQGANSpace(parts.vqgan, options.vqgan_input_range) if use_vqgan else None,
            reconstruction_loss=options.reconstruction_loss,
            reconstruction_weight=options.reconstruction_weight,
            contrast_weight=options.contrast_weight,
            layer_weights=options.layer_weights,
        )

    def _features(self, images: Tensor) -> list[Tensor]:
        return self.vqgan.features(images) if self.vqgan is not None else [images.float()]

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lq, gt = batch["lq"], batch["gt"]
        output = self.student(lq)
        terms = self.reconstruction_terms(output, gt)
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
        return result(terms, output)

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        return self.history.after_step(iteration, student, ema) if self.contrast_weight else {}

    def frozen_networks(self) -> dict[str, nn.Module]:
        return {"history": self.history.network}

    def state_dict(self) -> dict:
        return {"history": self.history.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.history.load_state_dict(state["history"])
