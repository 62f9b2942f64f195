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

from torch import nn

from dckd.models.averaging import frozen_copy, interpolate_


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

    def maybe_update(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> bool:
        """Update after optimizer step ``iteration`` (1-based) if the schedule says so; return whether it did."""
        if not self.schedule.is_update_step(iteration):
            return False
        if self.source == "ema":
            if ema is None:
                raise RuntimeError("history source is 'ema' but the run has no EMA student (train.ema_decay = 0); "
                                   "set dckd.history.source: student or enable the EMA")
            interpolate_(self.network, ema, self.decay)
        else:
            interpolate_(self.network, student, self.decay)
        self.updates += 1
        return True

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"], strict=True)
        self.updates = int(state["updates"])
