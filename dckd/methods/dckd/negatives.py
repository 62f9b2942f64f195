"""The negatives of DCKD's contrastive term: the history model's restorations of clean and degraded inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dckd.methods.dckd.degradations import make_negative_inputs


class NegativeInputs:
    """Builds the stacked input batch the history model restores in one forward pass.

    Layout (copy-major): rows [0:N] the clean input (when ``include_clean``), then one block of N rows per
    degraded copy. Degradation parameters come from an explicit generator whose state is checkpointed.
    """

    def __init__(
        self, num_degraded: int, include_clean: bool, degradations: Sequence[str], generator: torch.Generator
    ) -> None:
        if num_degraded < 0 or (num_degraded == 0 and not include_clean):
            raise ValueError(f"no negatives: num_degraded={num_degraded}, include_clean={include_clean}")
        self.num_degraded = num_degraded
        self.include_clean = include_clean
        self.degradations = tuple(degradations)
        self.generator = generator

    @property
    def count(self) -> int:
        return self.num_degraded + int(self.include_clean)

    def __call__(self, lq: Tensor) -> Tensor:
        blocks = [lq] if self.include_clean else []
        if self.num_degraded:
            blocks.append(make_negative_inputs(lq, self.generator, self.num_degraded, self.degradations))
        return torch.cat(blocks) if len(blocks) > 1 else blocks[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
