"""Invertible augmentations for label-consistency regularisation (DUKD; DCKD* in the released code).

Each operation is applied per sample with probability p: colour inversion (1 - x), vertical flip,
horizontal flip, H/W transpose, in that order; ``invert`` undoes them in reverse order. The same plan
works on inputs and on (upscaled) outputs, because all four commute with resizing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

OPERATIONS = ("invert", "vflip", "hflip", "transpose")


class InvertibleAugmentation:
    def __init__(self, operations: Sequence[str], probability: float, generator: torch.Generator) -> None:
        unknown = [name for name in operations if name not in OPERATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; expected a subset of {OPERATIONS}")
        # Keep the canonical order whatever order the config lists them in.
        self.operations = tuple(name for name in OPERATIONS if name in operations)
        self.probability = probability
        self.generator = generator

    def draw(self, batch_size: int) -> Tensor:
        """(N, len(operations)) bool plan, drawn on the CPU from the explicit generator."""
        return torch.rand(batch_size, len(self.operations), generator=self.generator) < self.probability

    def _apply_one(self, x: Tensor, name: str, mask: Tensor) -> Tensor:
        mask = mask.to(x.device).view(-1, *([1] * (x.dim() - 1)))
        if name == "invert":
            changed = 1 - x
        elif name == "vflip":
            changed = x.flip(-2)
        elif name == "hflip":
            changed = x.flip(-1)
        else:
            if x.shape[-1] != x.shape[-2]:
                raise ValueError(f"transpose augmentation needs square images, got {tuple(x.shape[-2:])}")
            changed = x.transpose(-1, -2)
        return torch.where(mask, changed, x)

    def apply(self, x: Tensor, plan: Tensor) -> Tensor:
        for index, name in enumerate(self.operations):
            x = self._apply_one(x, name, plan[:, index])
        return x

    def invert(self, y: Tensor, plan: Tensor) -> Tensor:
        for index in reversed(range(len(self.operations))):
            y = self._apply_one(y, self.operations[index], plan[:, index])
        return y

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
