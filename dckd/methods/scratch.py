"""Scratch: the student trained on ground truth alone (L = w_rec * L_rec)."""

from __future__ import annotations

from torch import Tensor, nn

from dckd.methods.base import Method, reconstruction_function, total


class Scratch(Method):
    loss_names = ("reconstruction",)

    def __init__(self, student: nn.Module, reconstruction_loss: str = "l1", reconstruction_weight: float = 1.0) -> None:
        self.student = student
        self.reconstruction = reconstruction_function(reconstruction_loss)
        self.reconstruction_weight = reconstruction_weight

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.student(batch["lq"])
        terms = {}
        if self.reconstruction_weight:
            terms["reconstruction"] = self.reconstruction_weight * self.reconstruction(output, batch["gt"])
        return {"loss": total(terms), "output": output, **terms}
