"""What every training method shares: the loss-dict contract, frozen forward passes, feature hooks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from dckd.losses.pixel import RECONSTRUCTION_LOSSES


class Method:
    """A training method turns a batch into ``{"loss": total, "output": restored, <term>: value, ...}``.

    Every ``<term>`` value is already multiplied by its weight, so the terms add up to ``loss``; a term
    whose weight is 0 is absent from the dict and is never computed. ``loss_names`` lists the terms a
    method can return. The loop calls ``after_step`` once per optimizer step (the history schedule lives
    there) and saves ``state_dict()`` in every checkpoint.
    """

    loss_names: tuple[str, ...] = ()

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.forward(batch)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        """Called after optimizer step ``iteration`` (1-based); returns values worth logging."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state but the checkpoint holds {sorted(state)}")


def reconstruction_function(name: str):
    if name not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"reconstruction loss {name!r}: expected one of {sorted(RECONSTRUCTION_LOSSES)}")
    return RECONSTRUCTION_LOSSES[name]


@torch.no_grad()
def frozen_forward(network: nn.Module, x: Tensor) -> Tensor:
    """Forward pass of a frozen network: no graph is recorded."""
    return network(x)


def teacher_output(teacher: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """T(lq), from the teacher-output cache when the batch carries it, else computed without gradients."""
    cached = batch.get("teacher_output")
    if cached is not None:
        return cached
    return frozen_forward(teacher, batch["lq"])


def total(terms: dict[str, Tensor]) -> Tensor:
    if not terms:
        raise ValueError("every loss weight is 0: nothing to optimise")
    return sum(terms.values())


@contextmanager
def capture_features(network: nn.Module, paths: Sequence[str]) -> Iterator[list[Tensor]]:
    """Record the outputs of the submodules at ``paths`` (dotted names) during forward passes.

    Forward hooks leave the backbone unmodified (torchdistill's approach); the captured tensors keep
    their autograd graph, so a loss on them sends gradients into the network.
    """
    modules = dict(network.named_modules())
    missing = [path for path in paths if path not in modules]
    if missing:
        sample = ", ".join(name for name in list(modules)[1:15])
        raise ValueError(f"{type(network).__name__} has no submodule {missing[0]!r}; some names: {sample}, ...")
    captured: list[Tensor | None] = [None] * len(paths)
    handles = []
    for index, path in enumerate(paths):
        def hook(_module: nn.Module, _inputs: tuple, output: Tensor, index: int = index) -> None:
            captured[index] = output[0] if isinstance(output, tuple) else output
        handles.append(modules[path].register_forward_hook(hook))
    try:
        yield captured  # filled in place during the forward pass
    finally:
        for handle in handles:
            handle.remove()
