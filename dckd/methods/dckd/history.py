"""DCKD's history model: a frozen copy of the student, pulled towards it on a growing schedule.

    theta_H <- alpha * theta_H + (1 - alpha) * theta_source        every s(t) iterations, alpha = 0.1

s(t) = initial + growth * floor((t - 1) / growth_every), so with the published values (1000, 1000, 100000)
s = 1000 for iterations 1..100k, 2000 for 100k+1..200k, 3000 for 200k+1..300k, and it keeps growing
beyond (the published code defines only those three ranges and fails after 300k). The source is the
EMA student (published code) or the live student (paper). The history model is part of every
checkpoint, so a resumed run restores the same negatives (the published code loses it on resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from dckd.errors import ConfigError
from dckd.models.averaging import frozen_copy, interpolate_


@dataclass
class HistoryOptions:
    """The history model's update rule and schedule (DCKD's negatives, MCLIR's model contrast)."""

    decay: float = 0.1
    """alpha in theta_H <- alpha * theta_H + (1 - alpha) * theta_source (published: 0.1)."""
    source: Literal["ema", "student"] = "ema"
    """Where the history model's new weights come from: the EMA student (published code) or the live student (paper)."""
    initial_interval_iters: int = 1000
    """Update every s iterations; s starts here (paper's best: 1000)."""
    interval_growth_iters: int = 1000
    """s grows by this much ..."""
    interval_growth_every_iters: int = 100000
    """... every this many iterations (published: s = 1000 / 2000 / 3000 over 0-100k / 100k-200k / 200k-300k;
    this rule continues the pattern for runs of any length)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay <= 1.0:
            raise ConfigError(f"decay must be in [0, 1], got {self.decay}")
        if self.initial_interval_iters < 1:
            raise ConfigError("initial_interval_iters must be >= 1")
        if self.interval_growth_iters < 0:
            raise ConfigError("interval_growth_iters must be >= 0")
        if self.interval_growth_every_iters < 1:
            raise ConfigError("interval_growth_every_iters must be >= 1")


@dataclass(frozen=True)
class HistorySchedule:
    initial_interval_iters: int = 1000
    interval_growth_iters: int = 1000
    interval_growth_every_iters: int = 100000

    def interval(self, iteration: int) -> int:
        """s(t) for 1-based iteration t."""
        stage = max(iteration - 1, 0) // self.interval_growth_every_iters
        return self.initial_interval_iters + self.interval_growth_iters * stage

    def is_update_step(self, iteration: int) -> bool:
        return iteration > 0 and iteration % self.interval(iteration) == 0


class HistoryModel:
    """Owns the frozen history network and applies its update rule."""

    def __init__(self, initial: nn.Module, decay: float, schedule: HistorySchedule, source: str = "ema") -> None:
        if source not in ("ema", "student"):
            raise ValueError(f"history source {source!r}: expected 'ema' or 'student'")
        self.network = frozen_copy(initial)
        self.decay = decay
        self.schedule = schedule
        self.source = source
        self.updates = 0

    @classmethod
    def from_options(cls, student: nn.Module, options: HistoryOptions, ema_decay: float, section: str) -> HistoryModel:
        """The history model of a run; ``ema_decay`` is the run's (an EMA source needs an EMA student)."""
        if options.source == "ema" and ema_decay <= 0:
            raise ConfigError(
                f"{section}.history.source is 'ema' but train.ema_decay is 0 (no EMA student); set "
                f"{section}.history.source: student or train.ema_decay > 0"
            )
        schedule = HistorySchedule(
            options.initial_interval_iters, options.interval_growth_iters, options.interval_growth_every_iters
        )
        return cls(student, options.decay, schedule, options.source)

    def maybe_update(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> bool:
        """Update after optimizer step ``iteration`` (1-based) if the schedule says so; return whether it did."""
        if not self.schedule.is_update_step(iteration):
            return False
        if self.source == "ema":
            if ema is None:
                raise RuntimeError("history source is 'ema' but no EMA student was given")
            interpolate_(self.network, ema, self.decay)
        else:
            interpolate_(self.network, student, self.decay)
        self.updates += 1
        return True

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        """``maybe_update``; ``{"history_updates": count}`` when it updated (a method's ``after_step`` event)."""
        return {"history_updates": float(self.updates)} if self.maybe_update(iteration, student, ema) else {}

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"], strict=True)
        self.updates = int(state["updates"])
