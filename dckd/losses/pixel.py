"""Pixel losses: reconstruction to ground truth and output distillation to the teacher."""

from __future__ import annotations

import torch
from torch import Tensor


def l1_loss(output: Tensor, target: Tensor) -> Tensor:
    """mean |output - target| over every element (BasicSR L1Loss, reduction 'mean')."""
    return (output - target).abs().mean()


def charbonnier_loss(output: Tensor, target: Tensor, eps: float = 1e-12) -> Tensor:
    """mean sqrt((output - target)^2 + eps) (BasicSR CharbonnierLoss; eps = 1e-12 as there)."""
    return torch.sqrt((output - target) ** 2 + eps).mean()


RECONSTRUCTION_LOSSES = {"l1": l1_loss, "charbonnier": charbonnier_loss}
