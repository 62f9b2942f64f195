"""FAKD's feature-affinity loss (He et al., "FAKD: Feature-Affinity Based Knowledge Distillation for
Efficient Image Super-Resolution", ICIP 2020).

For a feature map F with HW positions and C channels, every position's channel vector is divided by its
L2 norm (plus eps = 1e-8, as the official code) and the spatial affinity matrix is A = F_hat^T F_hat
(HW x HW, cosine similarity between positions). The loss of one layer pair is mean|A_S - A_T| (mean over
N x HW x HW); the pairs are summed, as the official code does (``reduction="sum"``), or averaged
(``"mean"``). Because A does not depend on C, student and teacher layers may have different widths, and
because it is a cosine similarity it does not depend on the images' value range.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def spatial_affinity(features: Tensor, eps: float = 1e-8) -> Tensor:
    """(N, HW, HW) cosine similarity between spatial positions.

    Args:
        features: (N, C, H, W) convolutional features, or (N, L, C) transformer tokens (SwinIR layers).
    """
    if features.dim() == 4:
        vectors = features.flatten(2)  # (N, C, HW)
    elif features.dim() == 3:
        vectors = features.transpose(1, 2)  # tokens (N, L, C) -> (N, C, L)
    else:
        raise ValueError(f"spatial_affinity: expected (N,C,H,W) or (N,L,C) features, got {tuple(features.shape)}")
    vectors = vectors / (vectors.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)
    return vectors.transpose(1, 2) @ vectors


def affinity_loss(
    student_features: Sequence[Tensor], teacher_features: Sequence[Tensor], reduction: str = "sum"
) -> Tensor:
    """sum (or mean) over layer pairs k of mean|A(F_S,k) - A(F_T,k)|; gradients reach the student features only."""
    if len(student_features) != len(teacher_features) or not student_features:
        raise ValueError(
            f"affinity_loss: {len(student_features)} student and {len(teacher_features)} teacher feature maps; "
            "they must pair up one to one (and not be empty)"
        )
    if reduction not in ("sum", "mean"):
        raise ValueError(f"affinity_loss: reduction {reduction!r}: expected 'sum' or 'mean'")
    total = 0
    for student, teacher in zip(student_features, teacher_features):
        total = total + (spatial_affinity(student) - spatial_affinity(teacher.detach())).abs().mean()
    return total if reduction == "sum" else total / len(student_features)
