"""FAKD: feature-affinity distillation (He et al., ICIP 2020).

L = w_rec * L_rec + w_kd * mean|S(x) - T(x)| + w_aff * mean_pairs mean|A(F_S) - A(F_T)|, where A is the
spatial affinity (cosine similarity between positions, ``dckd.losses.affinity``) of intermediate features
taken with forward hooks at ``student_layers`` / ``teacher_layers``. No backbone is edited. The
student's features keep their graph, so the affinity term trains the student's body (a published
reimplementation detached them, which silently turns FAKD into Scratch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dckd.errors import ConfigError
from dckd.losses.affinity import affinity_loss
from dckd.losses.pixel import l1_loss
from dckd.methods.base import Method, Needs, Parts, ReconstructionOptions, capture_features, check_weights, result
from dckd.models.averaging import unwrap
from dckd.models.backbones import FEATURE_GROUPS


@dataclass
class FAKDOptions(ReconstructionOptions):
    """Options of method ``fakd``."""

    kd_weight: float = 0.0
    """Weight of the output-distillation term mean|S(x) - T(x)| (off in the FAKD paper)."""
    affinity_weight: float = 1.0
    """Weight of the spatial-affinity loss (mean over the layer pairs of mean|A_S - A_T|)."""
    student_layers: list[str] = field(default_factory=list)
    """Module paths in the student whose outputs are compared (forward hooks; empty = the backbone's default)."""
    teacher_layers: list[str] = field(default_factory=list)
    """Matching module paths in the teacher (same length as ``student_layers``)."""

    def __post_init__(self) -> None:
        check_weights(self, ["reconstruction_weight", "kd_weight", "affinity_weight"])
        if len(self.student_layers) != len(self.teacher_layers):
            raise ConfigError(
                f"student_layers ({len(self.student_layers)}) and fakd.teacher_layers "
                f"({len(self.teacher_layers)}) must pair up one to one"
            )


def evenly_paired_layers(student: nn.Module, teacher: nn.Module, backbone: str | None) -> tuple[list[str], list[str]]:
    """Default layers: every student group paired with the teacher group at the same relative depth."""
    groups = FEATURE_GROUPS.get(backbone)
    if groups is None:
        raise ConfigError(
            f"fakd: no default feature layers for backbone {backbone!r}; set fakd.student_layers "
            "and fakd.teacher_layers"
        )
    student_layers, teacher_layers = groups(student), groups(teacher)
    count = len(student_layers)
    paired = [teacher_layers[round((index + 1) * len(teacher_layers) / count) - 1] for index in range(count)]
    return student_layers, paired


class FAKD(Method):
    Options = FAKDOptions
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
        if len(student_layers) != len(teacher_layers) or (affinity_weight and not student_layers):
            raise ValueError(
                f"FAKD needs matching, non-empty layer lists; got {list(student_layers)} and {list(teacher_layers)}"
            )
        super().__init__(student, reconstruction_loss, reconstruction_weight)
        self.teacher = teacher
        self.student_layers = list(student_layers)
        self.teacher_layers = list(teacher_layers)
        self.kd_weight = kd_weight
        self.affinity_weight = affinity_weight

    @classmethod
    def needs(cls, options: FAKDOptions) -> Needs:
        return Needs(teacher=options.kd_weight > 0 or options.affinity_weight > 0)

    @classmethod
    def build(cls, options: FAKDOptions, parts: Parts) -> FAKD:
        student_layers, teacher_layers = list(options.student_layers), list(options.teacher_layers)
        if not student_layers and options.affinity_weight > 0:
            student_layers, teacher_layers = evenly_paired_layers(
                unwrap(parts.student), parts.teacher, parts.student_backbone
            )
        return cls(
            parts.student,
            parts.teacher,
            student_layers,
            teacher_layers,
            options.reconstruction_loss,
            options.reconstruction_weight,
            options.kd_weight,
            options.affinity_weight,
        )

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lq = batch["lq"]
        needs_features = self.affinity_weight > 0
        with capture_features(unwrap(self.student), self.student_layers if needs_features else []) as student_features:
            output = self.student(lq)
        if needs_features or self.kd_weight:
            with (
                torch.no_grad(),
                capture_features(self.teacher, self.teacher_layers if needs_features else []) as teacher_features,
            ):
                teacher = self.teacher(lq)
        terms = self.reconstruction_terms(output, batch["gt"])
        if self.kd_weight:
            terms["kd"] = self.kd_weight * l1_loss(output, teacher)
        if needs_features:
            terms["affinity"] = self.affinity_weight * affinity_loss(
                [feature.float() for feature in student_features], [feature.float() for feature in teacher_features]
            )
        return result(terms, output)
