"""What every training method shares: the method contract, what it needs, the reconstruction term.

A method is one module with one class, listed in ``dckd.methods.METHODS`` under the name a config's
``method:`` selects. The class declares

- ``Options``: a dataclass of its options (the YAML section named like the method; a docstring under
  every field, ``__post_init__`` checks that name the option);
- ``needs(options)``: what the engine must build for it (teacher, VQGAN), whether it keeps a history
  model, and whether a teacher-output cache can replace the teacher's pass on the clean input;
- ``build(options, parts)``: the method from its options and the networks the engine built;
- ``forward(batch)``: ``{"loss": total, "output": restored, <term>: value, ...}``, every term already
  multiplied by its weight; a term whose weight is 0 is absent and never computed;
- ``after_step`` (called once per optimiser step; what it returns is recorded at that iteration as an event
  line of ``log.jsonl``), ``interval_values`` (called at each log interval, added to the training record),
  ``state_dict``/``load_state_dict`` (saved in every checkpoint).

No other module asks which method runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from dckd.errors import ConfigError
from dckd.losses.pixel import RECONSTRUCTION_LOSSES


@dataclass(frozen=True)
class Needs:
    """What a method needs from the engine, for the options it was given."""

    teacher: bool = False
    """A frozen teacher network (``teacher:`` section)."""
    vqgan: bool = False
    """The frozen VQGAN encoder (``vqgan:`` section)."""
    history: bool = False
    """The method keeps a history model (a slowly updated frozen copy of the student)."""
    teacher_cache: bool = False
    """The teacher's output on the clean input is all it takes from the teacher's clean pass, so the
    teacher-output cache (``teacher_cache.enabled``) can supply it."""


@dataclass(frozen=True)
class Parts:
    """What the engine hands ``Method.build``: the networks it built and the run's facts."""

    student: nn.Module
    """The network being trained (possibly wrapped in DistributedDataParallel or torch.compile)."""
    teacher: nn.Module | None
    """Frozen teacher, when ``needs.teacher``."""
    vqgan: nn.Module | None
    """Frozen ``dckd.models.vqgan.VQGANEncoder``, when ``needs.vqgan``."""
    scale: int
    """Super-resolution factor (1 for deblurring, deraining)."""
    generator: Callable[[str], torch.Generator]
    """``generator(purpose)``: a CPU generator seeded from the run's seed, the process rank and ``purpose``;
    its state belongs in the method's ``state_dict``."""
    total_iters: int = 1
    """Length of the run in optimiser steps."""
    ema_decay: float = 0.0
    """The run's student EMA decay (0: no EMA student exists)."""
    student_backbone: str | None = None
    """Key of the student's backbone in ``dckd.models.backbones.BACKBONES`` (None for a user's class)."""
    teacher_backbone: str | None = None
    """Key of the teacher's backbone, likewise."""


def check_weights(options: Any, names: Sequence[str]) -> None:
    """Every named loss weight is >= 0 (an option check for ``__post_init__``)."""
    for name in names:
        value = getattr(options, name)
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")


@dataclass
class ReconstructionOptions:
    """The term every method has: a loss to the ground truth."""

    reconstruction_loss: Literal["l1", "charbonnier"] = "l1"
    """Loss to ground truth."""
    reconstruction_weight: float = 1.0
    """Weight of the loss to ground truth (0 = off)."""

    def __post_init__(self) -> None:
        check_weights(self, ["reconstruction_weight"])


class Method:
    """Base class of the training methods (see the module docstring for the contract)."""

    Options: ClassVar[type] = ReconstructionOptions
    loss_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, student: nn.Module, reconstruction_loss: str = "l1", reconstruction_weight: float = 1.0) -> None:
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"reconstruction loss {reconstruction_loss!r}: expected one of {sorted(RECONSTRUCTION_LOSSES)}"
            )
        self.student = student
        self.reconstruction = RECONSTRUCTION_LOSSES[reconstruction_loss]
        self.reconstruction_weight = reconstruction_weight

    @classmethod
    def needs(cls, options: Any) -> Needs:
        return Needs()

    @classmethod
    def build(cls, options: Any, parts: Parts) -> Method:
        raise NotImplementedError

    def __call__(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.forward(batch)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def reconstruction_terms(self, output: Tensor, gt: Tensor) -> dict[str, Tensor]:
        """``{"reconstruction": w_rec * L_rec(output, gt)}``, or nothing when the weight is 0."""
        if not self.reconstruction_weight:
            return {}
        return {"reconstruction": self.reconstruction_weight * self.reconstruction(output, gt)}

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        """Called after optimiser step ``iteration`` (1-based), with the unwrapped student and the EMA;
        returns what happened worth recording at this iteration (e.g. a history update), usually nothing."""
        return {}

    def interval_values(self) -> dict[str, float]:
        """Values worth logging, gathered since the previous call (called at every log interval)."""
        return {}

    def frozen_networks(self) -> dict[str, nn.Module]:
        """The frozen networks the method owns (history model, ...), by name."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state but the checkpoint holds {sorted(state)}")


def result(terms: dict[str, Tensor], output: Tensor) -> dict[str, Tensor]:
    """The method's return value: the terms, their sum as ``loss``, and ``output``."""
    if not terms:
        raise ValueError("every loss weight is 0: nothing to optimise")
    return {"loss": sum(terms.values()), "output": output, **terms}


@torch.no_grad()
def frozen_forward(network: nn.Module, x: Tensor) -> Tensor:
    """Forward pass of a frozen network: no graph is recorded."""
    return network(x)


def teacher_outputs(
    teacher: nn.Module, batch: dict[str, Tensor], extra: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """(T(lq), T(extra)) from one teacher pass under ``no_grad``; T(lq) comes from the teacher-output cache
    when the batch carries it (``teacher_output``), and then only ``extra`` (if any) goes through the teacher."""
    cached = batch.get("teacher_output")
    inputs = ([] if cached is not None else [batch["lq"]]) + ([] if extra is None else [extra])
    outputs = frozen_forward(teacher, torch.cat(inputs)) if inputs else None
    clean = cached if cached is not None else outputs[: batch["lq"].shape[0]]
    return clean, (outputs[-extra.shape[0] :] if extra is not None else None)


@contextmanager
def capture_features(network: nn.Module, paths: Sequence[str]) -> Iterator[list[Tensor]]:
    """Record the outputs of the submodules at ``paths`` (dotted names) during forward passes.

    A path ending in ``:input`` records the submodule's input instead (its forward pre-hook), e.g.
    ``upsample:input`` for the features entering an upsampler. Forward hooks leave the backbone
    unmodified (torchdistill's approach); the captured tensors keep their autograd graph, so a loss on
    them sends gradients into the network.
    """
    modules = dict(network.named_modules())
    names = [path.removesuffix(":input") for path in paths]
    missing = [name for name in names if name not in modules]
    if missing:
        sample = ", ".join(name for name in list(modules)[1:15])
        raise ValueError(f"{type(network).__name__} has no submodule {missing[0]!r}; some names: {sample}, ...")
    captured: list[Tensor | None] = [None] * len(paths)
    handles = []
    for index, (path, name) in enumerate(zip(paths, names)):
        if path.endswith(":input"):

            def pre_hook(_module: nn.Module, inputs: tuple, index: int = index) -> None:
                captured[index] = inputs[0]

            handles.append(modules[name].register_forward_pre_hook(pre_hook))
        else:

            def hook(_module: nn.Module, _inputs: tuple, output: Tensor, index: int = index) -> None:
                captured[index] = output[0] if isinstance(output, tuple) else output

            handles.append(modules[name].register_forward_hook(hook))
    try:
        yield captured  # filled in place during the forward pass
    finally:
        for handle in handles:
            handle.remove()
