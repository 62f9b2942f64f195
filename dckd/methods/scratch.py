"""Scratch: the student trained on ground truth alone (L = w_rec * L_rec)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from dckd.methods.base import Method, Parts, ReconstructionOptions, result


@dataclass
class ScratchOptions(ReconstructionOptions):
    """Options of method ``scratch`` (only the reconstruction term)."""


class Scratch(Method):
    Options = ScratchOptions
    loss_names = ("reconstruction",)

    @classmethod
    def build(cls, options: ScratchOptions, parts: Parts) -> Scratch:
        return cls(parts.student, options.reconstruction_loss, options.reconstruction_weight)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.student(batch["lq"])
        return result(self.reconstruction_terms(output, batch["gt"]), output)
