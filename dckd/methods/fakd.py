"""FAKD: feature-affinity distillation (He et al., ICIP 2020), as its official code trains it.

    L = w_rec |S(x) - y| + w_kd |S(x) - T(x)| + w_aff * sum_k mean|A(F_S,k) - A(F_T,k)|

A is the spatial affinity (cosine similarity between positions, ``dckd.losses.affinity``) of intermediate
features taken with forward hooks (``name`` for a submodule's output, ``name:input`` for its input) at
``student_layers`` / ``teacher_layers``; no backbone is edited. The official recipe
(Vincent-Hoo/Knowledge-Distillation-for-Super-resolution, ``--alpha 0.5 --feature_distilation_type 10*SA
--features [1,2,3]``): ground-truth L1 weight 1 - alpha = 0.5, teacher-output L1 weight alpha = 0.5, and 10 x
the affinity L1 SUMMED over three feature pairs: after 1/3 and 2/3 of the body and the upsampler's input
(RCAN: body.2, body.6, upsample:input; ``dckd.models.backbones.FAKD_FEATURES``). Its images are in [0, 255],
so its two pixel terms are 255 times ours in [0, 1] while the affinity term does not depend on the range:
the same balance in our units is affinity weight 10/255 per pair (the defaults here).

The student's features keep their graph, so the affinity term trains the student's body (a published
reimplementation detached them, which silently turns FAKD into Scratch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from dckd.errors import ConfigError
from dckd.losses.affinity import affinity_loss
from dckd.losses.pixel import l1_loss
from dckd.methods.base import Method, Needs, Parts, ReconstructionOptions, capture_features, check_weights, result
from dckd.models.averaging import unwrap
from dckd.models.backbones import FAKD_FEATURES, FEATURE_GROUPS

FAKD_AFFINITY_WEIGHT = 10 / 255
"""The official 10 x SA on [0, 255] images, in our [0, 1] units (its pixel L1 terms are 255 x ours)."""


@dataclass
class FAKDOptions(ReconstructionOptions):
    """Options of method ``fakd``; the defaults are the official recipe in [0, 1] units (module docstring)."""

    reconstruction_weight: float = 0.5
    """Weight of mean|S(x) - y| (official: 1 - alpha = 0.5)."""
    kd_weight: float = 0.5
    """Weight of the output-distillation term mean|S(x) - T(x)| (official: alpha = 0.5)."""
    affinity_weight: float = FAKD_AFFINITY_WEIGHT
    """Weight of the spatial-affinity loss per layer pair: the official 10 on [0, 255] images is 10/255 for our
    [0, 1] images, whose pixel terms are 255 times smaller (the affinity term does not depend on the range)."""
    affinity_reduction: Literal["sum", "mean"] = "sum"
    """How the layer pairs' losses combine: ``sum`` (the official code) or ``mean``."""
    default_layers: Literal["fakd", "evenly_paired"] = "fakd"
    """Layers when ``student_layers``/``teacher_layers`` are empty: ``fakd``, the official recipe's three points
    per backbone (``dckd.models.backbones.FAKD_FEATURES``: after 1/3 and 2/3 of the body, and the upsampler's
    input); ``evenly_paired``, every student group with the teacher group at the same relative depth
    (``FEATURE_GROUPS``)."""
    student_layers: list[str] = field(default_factory=list)
    """Module paths in the student whose outputs are compared (``name:input``: the module's input; empty = by
    ``default_layers``)."""
    teacher_layers: list[str] = field(default_factory=list)
    """Matching module paths in the teacher (same length as ``student_layers``)."""

    earlier_defaults: ClassVar[tuple[dict, ...]] = (
        {"reconstruction_weight": 1.0, "kd_weight": 0.0, "affinity_weight": 1.0},
    )
    """Defaults of dckd 0.1 (a config.yaml of that version lists this section even when method is not fakd)."""

    def __post_init__(self) -> None:
        check_weights(self, ["reconstruction_weight", "kd_weight", "affinity_weight"])
        if len(self.student_layers) != len(self.teacher_layers):
            raise ConfigError(
                f"student_layers ({len(self.student_layers)}) and fakd.teacher_layers "
                f"({len(self.teacher_layers)}) must pair up one to one"
            )


def recipe_layers(student: nn.Module, teacher: nn.Module, student_backbone: str | None, teacher_backbone: str | None):
    """(student layers, teacher layers): FAKD's three points of each network (``FAKD_FEATURES``)."""
    layers = []
    for role, network, backbone in (("student", student, student_backbone), ("teacher", teacher, teacher_backbone)):
        if backbone not in FAKD_FEATURES:
            raise ConfigError(
                f"fakd: no recipe layers for the {role}'s backbone {backbone!r} (known: {', '.join(FAKD_FEATURES)}); "
                "set fakd.student_layers and fakd.teacher_layers, or fakd.default_layers: evenly_paired"
            )
        layers.append(FAKD_FEATURES[backbone](network))
    return layers[0], layers[1]


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
        reconstruction_weight: float = 0.5,
        kd_weight: float = 0.5,
        affinity_weight: float = FAKD_AFFINITY_WEIGHT,
        affinity_reduction: str = "sum",
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
        self.affinity_reduction = affinity_reduction

    @classmethod
    def needs(cls, options: FAKDOptions) -> Needs:
        return Needs(teacher=options.kd_weight > 0 or options.affinity_weight > 0)

    @classmethod
    def build(cls, options: FAKDOptions, parts: Parts) -> FAKD:
        student_layers, teacher_layers = list(options.student_layers), list(options.teacher_layers)
        if not student_layers and options.affinity_weight > 0:
            if options.default_layers == "fakd":
                student_layers, teacher_layers = recipe_layers(
                    unwrap(parts.student), parts.teacher, parts.student_backbone, parts.teacher_backbone
                )
            else:
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
            options.affinity_reduction,
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
                [feature.float() for feature in student_features],
                [feature.float() for feature in teacher_features],
                self.affinity_reduction,
            )
        return result(terms, output)
