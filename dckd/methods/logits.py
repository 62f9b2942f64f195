"""Logits: output distillation, L = w_rec * L_rec + w_kd * mean|S(x) - T(x)|."""

from __future__ import annotations

from torch import Tensor, nn

from dckd.losses.pixel import l1_loss
from dckd.methods.base import Method, reconstruction_function, teacher_output, total


class Logits(Method):
    loss_names = ("reconstruction", "kd")

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        reconstruction_loss: str = "l1",
        reconstruction_weight: float = 1.0,
        kd_weight: float = 1.0,
    ) -> None:
        self.student = student
        self.teacher = teacher
        self.reconstruction = reconstruction_function(reconstruction_loss)
        self.reconstruction_weight = reconstruction_weight
        self.kd_weight = kd_weight

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.student(batch["lq"])
        terms = {}
        if self.reconstruction_weight:
            terms["reconstruction"] = self.reconstruction_weight * self.reconstruction(output, batch["gt"])
        if self.kd_weight:
            terms["kd"] = self.kd_weight * l1_loss(output, teacher_output(self.teacher, batch))
        return {"loss": total(terms), "output": output, **terms}
