"""The distribution-mapping module's loss: cross-entropy between soft codebook assignments.

For every latent position of the VQGAN encoder (+ quant_conv) output z, the soft assignment over the
K codebook vectors e_k is C = softmax_k(-||z - e_k||^2) (no temperature).

- ``paper`` (Eq. 9):       L_ce = mean_positions( -sum_k C^T_k * log C^S_k )
- ``released`` (the code): L_ce = mean_positions( -sum_k C^T_k * log_softmax(C^S)_k )
  The published code passes the student's *probabilities* to a soft-target cross-entropy as if they
  were logits, i.e. a second softmax over values in [0, 1]. This is the reproduction default.

The logits -||z - e_k||^2 come from ``dckd.models.vqgan.negative_squared_distance_logits`` (float32, stable).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor


def codebook_cross_entropy(
    student_log_probabilities: Tensor,
    teacher_probabilities: Tensor,
    formula: Literal["released", "paper"] = "released",
) -> Tensor:
    """Mean over rows of the cross-entropy between teacher and student code distributions.

    Args:
        student_log_probabilities: (P, K) log C^S (log_softmax of ``code_logits`` of the student output).
        teacher_probabilities: (P, K) C^T (softmax of ``code_logits`` of the teacher output), a target.
        formula: ``released`` (double softmax, the published code) or ``paper`` (Eq. 9).
    """
    if student_log_probabilities.shape != teacher_probabilities.shape:
        raise ValueError(
            f"codebook_cross_entropy: student {tuple(student_log_probabilities.shape)} and teacher "
            f"{tuple(teacher_probabilities.shape)} distributions differ in shape"
        )
    teacher_probabilities = teacher_probabilities.detach()
    if formula == "released":
        log_q = torch.log_softmax(student_log_probabilities.exp(), dim=-1)
    elif formula == "paper":
        log_q = student_log_probabilities
    else:
        raise ValueError(f"codebook_cross_entropy: formula {formula!r}; expected 'released' or 'paper'")
    return -(teacher_probabilities * log_q).sum(dim=-1).mean()
