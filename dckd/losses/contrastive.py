"""The contrastive ratio loss of DCKD's dynamic contrastive regularisation (paper Eq. 6-7).

    L_dcl = sum_l w_l * mean|f_l(a) - f_l(p)| / (sum_j mean|f_l(a) - f_l(n_j)| + 1e-7)

a: anchor (student output), p: positive (teacher output), n_j: negatives (history model outputs),
f_l: feature level l of the frozen VQGAN encoder, w_l: level weights (published 1/32, 1/16, 1/8, 1/4, 1).
Every mean is over the WHOLE batch tensor (one ratio per level, not per sample), exactly as the
published code and the reference vectors (``dckd/golden``, kind ``losses``) define it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

EPSILON = 1e-7


def contrastive_ratio_loss(
    anchor: Sequence[Tensor],
    positive: Sequence[Tensor],
    negatives: Sequence[Tensor],
    layer_weights: Sequence[float],
    eps: float = EPSILON,
) -> Tensor:
    """Sum over levels of w_l * mean|a_l - p_l| / (sum_j mean|a_l - n_{l,j}| + eps).

    Args:
        anchor: per level, (N, C_l, H_l, W_l) features of the student output. The only input that
            receives gradients.
        positive: per level, features of the teacher output, same shapes (detached here).
        negatives: per level, (J*N, C_l, H_l, W_l) features of the J negatives stacked copy-major
            (rows [j*N:(j+1)*N] are negative j), detached here.
        layer_weights: one weight per level.
    """
    if not (len(anchor) == len(positive) == len(negatives) == len(layer_weights)):
        raise ValueError(
            f"contrastive_ratio_loss: got {len(anchor)} anchor, {len(positive)} positive, {len(negatives)} negative "
            f"levels and {len(layer_weights)} layer weights; they must be equal"
        )
    total = anchor[0].new_zeros(())
    for level, (a, p, n, weight) in enumerate(zip(anchor, positive, negatives, layer_weights)):
        if weight == 0:
            continue
        batch = a.shape[0]
        if n.shape[0] % batch or n.shape[1:] != a.shape[1:] or p.shape != a.shape:
            raise ValueError(
                f"contrastive_ratio_loss level {level}: anchor {tuple(a.shape)}, positive {tuple(p.shape)}, "
                f"negatives {tuple(n.shape)}; negatives must be J*N copies of the anchor's shape"
            )
        n = n.detach().reshape(n.shape[0] // batch, *a.shape)  # (J, N, C, H, W)
        distance_positive = (a - p.detach()).abs().mean()
        # mean over all but the copy axis = one mean|a - n_j| per negative j; then sum over j.
        # (a reduction over dims, not flatten(1): no copy of the J x N features in channels-last memory)
        distance_negatives = (a.unsqueeze(0) - n).abs().mean(dim=(1, 2, 3, 4)).sum()
        total = total + weight * distance_positive / (distance_negatives + eps)
    return total
