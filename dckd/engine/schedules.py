"""Learning-rate schedules as pure functions of the iteration (stateless, so resuming needs nothing saved)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence


def multistep_factor(iteration: int, milestones_iters: Sequence[int], gamma: float) -> float:
    """gamma ** (number of milestones already passed); iteration is the 0-based count of finished steps."""
    return gamma ** bisect.bisect_right(sorted(milestones_iters), iteration)


def cosine_restart_lr(
    iteration: int,
    base_lr: float,
    periods_iters: Sequence[int],
    restart_weights: Sequence[float],
    eta_min: Sequence[float],
) -> float:
    """BasicSR's CosineAnnealingRestartCyclicLR (Restormer) / CosineAnnealingRestartLR (NAFNet, one period):

    within period p (starting at s_p, length L_p): eta_min_p + (w_p*base - eta_min_p) * (1 + cos(pi (t - s_p) / L_p)) / 2
    """
    start = 0
    for index, length in enumerate(periods_iters):
        if iteration < start + length or index == len(periods_iters) - 1:
            progress = min(max(iteration - start, 0), length) / length
            weight = restart_weights[index] if restart_weights else 1.0
            minimum = eta_min[index] if len(eta_min) > 1 else eta_min[0]
            return minimum + (weight * base_lr - minimum) * 0.5 * (1 + math.cos(math.pi * progress))
        start += length
    raise ValueError("cosine schedule needs at least one period")


def learning_rate(
    iteration: int,
    base_lr: float,
    name: str,
    total_iters: int,
    milestones_iters: Sequence[int] = (),
    gamma: float = 0.5,
    periods_iters: Sequence[int] = (),
    restart_weights: Sequence[float] = (),
    eta_min: Sequence[float] = (1e-7,),
    warmup_iters: int = 0,
) -> float:
    """Learning rate for the step that follows ``iteration`` finished steps."""
    if name == "constant":
        lr = base_lr
    elif name == "multistep":
        lr = base_lr * multistep_factor(iteration, milestones_iters, gamma)
    elif name == "cosine":
        lr = cosine_restart_lr(iteration, base_lr, list(periods_iters) or [total_iters], restart_weights, eta_min)
    else:
        raise ValueError(f"schedule {name!r}: expected constant, multistep or cosine")
    if warmup_iters and iteration < warmup_iters:
        lr *= (iteration + 1) / warmup_iters
    return lr
