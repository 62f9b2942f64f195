"""FAKD's feature-affinity loss (He et al., "FAKD: Feature-Affinity Based Knowledge Distillation for
Efficient Image Super-Resolution", ICIP 2020).

For a feature map F with HW positions and C channels, every position's channel vector is L2-normalised
and the spatial affinity matrix is A = F_hat^T F_hat (HW x HW, cosine similarity between positions). The
loss is mean|A_S - A_T| per layer pair, averaged over the pairs. Because A does not depend on C, student
and teacher layers may have different widths.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def spatial_affinity(features: Tensor, eps: float = 1e-7) -> Tensor:
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


def affinity_loss(student_features: Sequence[Tensor], teacher_features: Sequence[Tensor]) -> Tensor:
    """mean over layer pairs of mean|A(F_S) - A(F_T)|; gradients reach the student features only."""
    if len(student_features) != len(teacher_features) or not student_features:
        raise ValueError(
            f"affinity_loss: {len(student_features)} student and {len(teacher_features)} teacher feature maps; "
            "they must pair up one to one (and not be empty)"
        )
    total = 0
    for student, teacher in zip(student_features, teacher_features):
        total = total + (spatial_affinity(student) - spatial_affinity(teacher.detach())).abs().mean()
    return total / len(student_features)
