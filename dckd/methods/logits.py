"""Logits: output distillation, L = w_rec * L_rec + w_kd * mean|S(x) - T(x)|."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from dckd.losses.pixel import l1_loss
from dckd.methods.base import Method, Needs, Parts, ReconstructionOptions, check_weights, result, teacher_outputs


@dataclass
class LogitsOptions(ReconstructionOptions):
    """Options of method ``logits``."""

    kd_weight: float = 1.0
    """Weight of mean|S(x) - T(x)| (output distillation)."""

    def __post_init__(self) -> None:
        check_weights(self, ["reconstruction_weight", "kd_weight"])


class Logits(Method):
    Options = LogitsOptions
    loss_names = ("reconstruction", "kd")

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        reconstruction_loss: str = "l1",
        reconstruction_weight: float = 1.0,
        kd_weight: float = 1.0,
    ) -> None:
        super().__init__(student, reconstruction_loss, reconstruction_weight)
        self.teacher = teacher
        self.kd_weight = kd_weight

    @classmethod
    def needs(cls, options: LogitsOptions) -> Needs:
        return Needs(teacher=options.kd_weight > 0, teacher_cache=True)

    @classmethod
    def build(cls, options: LogitsOptions, parts: Parts) -> Logits:
        return cls(
            parts.student, parts.teacher, options.reconstruction_loss, options.reconstruction_weight, options.kd_weight
        )

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.student(batch["lq"])
        terms = self.reconstruction_terms(output, batch["gt"])
        if self.kd_weight:
            terms["kd"] = self.kd_weight * l1_loss(output, teacher_outputs(self.teacher, batch)[0])
        return result(terms, output)
