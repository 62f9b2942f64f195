"""FAKD: feature-affinity distillation (He et al., ICIP 2020).

L = w_rec * L_rec + w_kd * mean|S(x) - T(x)| + w_aff * mean_pairs mean|A(F_S) - A(F_T)|, where A is the
spatial affinity (cosine similarity between positions, ``dckd.losses.affinity``) of intermediate features
taken with forward hooks at ``student_layers`` / ``teacher_layers``. No backbone is edited. The
student's features keep their graph, so the affinity term trains the student's body (a published
reimplementation detached them, which silently turns FAKD into Scratch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dckd.losses.affinity import affinity_loss
from dckd.losses.pixel import l1_loss
from dckd.models.averaging import unwrap
from dckd.methods.base import Method, capture_features, reconstruction_function, total


class FAKD(Method):
    loss_names = ("reconstruction", "kd", "affinity")

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_layers: Sequence[str],
        teacher_layers: Sequence[str],
        reconstruction_loss: str = "l1",
        reconstruction_weight: float = 1.0,
        kd_weight: float = 0.0,
        affinity_weight: float = 1.0,
    ) -> None:
        if len(student_layers) != len(teacher_layers) or not student_layers:
            raise ValueError(f"FAKD needs matching, non-empty layer lists; got {list(student_layers)} and {list(teacher_layers)}")
        self.student = student
        self.teacher = teacher
        self.student_layers = list(student_layers)
        self.teacher_layers = list(teacher_layers)
        self.reconstruction = reconstruction_function(reconstruction_loss)
        self.reconstruction_weight = reconstruction_weight
        self.kd_weight = kd_weight
        self.affinity_weight = affinity_weight

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lq = batch["lq"]
        needs_teacher_features = self.affinity_weight > 0
        with capture_features(unwrap(self.student), self.student_layers if needs_teacher_features else []) as student_features:
            output = self.student(lq)
        if needs_teacher_features or self.kd_weight:
            with torch.no_grad(), capture_features(self.teacher, self.teacher_layers if needs_teacher_features else []) as teacher_features:
                teacher = self.teacher(lq)
        terms = {}
        if self.reconstruction_weight:
            terms["reconstruction"] = self.reconstruction_weight * self.reconstruction(output, batch["gt"])
        if self.kd_weight:
            terms["kd"] = self.kd_weight * l1_loss(output, teacher)
        if needs_teacher_features:
            terms["affinity"] = self.affinity_weight * affinity_loss(
                [feature.float() for feature in student_features], [feature.float() for feature in teacher_features]
            )
        return {"loss": total(terms), "output": output, **terms}
