"""The negatives of DCKD's contrastive term: the history model's restorations of clean and degraded inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from dckd.methods.dckd.degradations import check_images, degrade
from dckd.methods.dckd.released_degradations import degrade_copies

NEGATIVE_SAMPLING = ("released", "per_sample")
"""``released``: one draw per degraded copy, shared by the batch (``released_degradations``);
``per_sample``: every sample of every copy draws its own parameters (``degradations``)."""


def make_negative_inputs(
    lq: Tensor,
    generator: torch.Generator,
    num_degraded: int,
    kinds: Sequence[str] | str,
    sampling: str = "released",
    probabilities: Mapping[str, float] | None = None,
    gray_probability: float = 0.5,
) -> Tensor:
    """Degraded copies of the student's input, stacked for one batched history-model forward pass.

    Layout is copy-major: for an input of N samples the result has ``num_degraded * N`` rows and rows
    ``[k * N, (k + 1) * N)`` are copy k, i.e. ``result.view(num_degraded, N, C, H, W)[k]``. The clean
    input is not included (the published code's fifth negative is the history model on the clean input;
    the caller concatenates it).

    Args:
        lq: student inputs (N, C, H, W) in [0, 1].
        generator: source of all randomness; on the GPU prefer a generator on ``lq``'s device for
            deblurring/deraining-sized inputs (see ``degradations``).
        num_degraded: number of degraded copies (the published code uses 4).
        kinds: degradation kinds (noise, blur, resize; mix = all three).
        sampling: ``released`` (per copy, shared by the batch) or ``per_sample``.
        probabilities: per kind, the probability that a copy (released) or a sample (per_sample) gets it.
        gray_probability: per-sample probability that the noise is gray.

    Returns:
        (num_degraded * N, C, H, W) tensor on the device and with the dtype of ``lq``.
    """
    check_images(lq)
    if num_degraded < 0:
        raise ValueError(f"num_degraded must be >= 0, got {num_degraded}")
    if sampling == "released":
        return degrade_copies(lq, generator, num_degraded, kinds, probabilities, gray_probability)
    if sampling != "per_sample":
        raise ValueError(f"negative sampling {sampling!r}: expected one of {NEGATIVE_SAMPLING}")
    # repeat() lays the copies out copy-major; the per-sample degradations draw per row, so one call gives
    # independent draws for every copy of every sample.
    copies = lq.repeat(num_degraded, 1, 1, 1)
    if num_degraded == 0:
        return copies
    return degrade(copies, generator, kinds, probabilities, gray_probability)


class NegativeInputs:
    """Builds the stacked input batch the history model restores in one forward pass.

    Layout (copy-major): rows [0:N] the clean input (when ``include_clean``), then one block of N rows per
    degraded copy. Degradation parameters come from an explicit generator whose state is checkpointed.
    """

    def __init__(
        self,
        num_degraded: int,
        include_clean: bool,
        degradations: Sequence[str],
        generator: torch.Generator,
        sampling: str = "released",
        probabilities: Mapping[str, float] | None = None,
        gray_probability: float = 0.5,
    ) -> None:
        if num_degraded < 0 or (num_degraded == 0 and not include_clean):
            raise ValueError(f"no negatives: num_degraded={num_degraded}, include_clean={include_clean}")
        if sampling not in NEGATIVE_SAMPLING:
            raise ValueError(f"negative sampling {sampling!r}: expected one of {NEGATIVE_SAMPLING}")
        self.num_degraded = num_degraded
        self.include_clean = include_clean
        self.degradations = tuple(degradations)
        self.generator = generator
        self.sampling = sampling
        self.probabilities = dict(probabilities or {})
        self.gray_probability = gray_probability

    @property
    def count(self) -> int:
        return self.num_degraded + int(self.include_clean)

    def __call__(self, lq: Tensor) -> Tensor:
        blocks = [lq] if self.include_clean else []
        if self.num_degraded:
            blocks.append(
                make_negative_inputs(
                    lq,
                    self.generator,
                    self.num_degraded,
                    self.degradations,
                    self.sampling,
                    self.probabilities,
                    self.gray_probability,
                )
            )
        return torch.cat(blocks) if len(blocks) > 1 else blocks[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
