"""Which checkpoints of a run are good, and writing them: the bookkeeping behind "the last good state".

A checkpoint is *good* once a finite loss was computed from its parameters (any later iteration with a finite
loss proves it). The parameters of the checkpoints written at or after the last finite iteration are the
current ones, not yet known good. So:

- a checkpoint is never written with non-finite parameters;
- rotation (``train.keep_checkpoints``) never deletes the newest known-good checkpoint in favour of newer,
  unproven ones;
- when a non-finite streak stops the run, the checkpoints that hold the parameters behind it are removed and
  the message names the newest good one (``diverged``);
- a stop caused by data saves the progress first when the parameters are good (``save_progress``).

Only the main process writes; ``save`` is called on every rank (the state it is given was gathered by a
collective).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dckd.engine.checkpoints import list_checkpoints, remove_checkpoint, save_checkpoint
from dckd.engine.run_folder import write_error
from dckd.engine.run_log import RunLog


class CheckpointKeeper:
    def __init__(
        self,
        run_dir: Path,
        keep: int,
        is_main: bool,
        run_log: RunLog | None,
        say: Callable[[str], None],
        start_iteration: int,
        resumed_from: Path | None,
    ) -> None:
        self.run_dir, self.keep, self.is_main, self.run_log, self.say = run_dir, keep, is_main, run_log, say
        self.start_iteration = start_iteration
        self.last_finite = start_iteration
        """The last iteration whose loss was finite: its parameters' predecessors are known good."""
        self.written: dict[int, Path] = {}
        """Checkpoints this process wrote."""
        # A checkpoint of this run folder the run resumed from (its parameters are not yet proven either).
        in_folder = resumed_from is not None and resumed_from.resolve().parent == (run_dir / "checkpoints").resolve()
        self.resumed_here = resumed_from if in_folder else None

    def finite_step(self, iteration: int) -> None:
        """Iteration ``iteration`` computed a finite loss (from the parameters after the previous one)."""
        self.last_finite = iteration

    def save(self, iteration: int, state: dict[str, Any]) -> None:
        """Write ``state`` as the checkpoint of ``iteration`` (main process only; other ranks return)."""
        if not self.is_main:
            return
        for part in ("student", "ema"):
            tensors = state[part].values() if state[part] is not None else []
            if not all(bool(torch.isfinite(t).all()) for t in tensors if torch.is_tensor(t) and t.is_floating_point()):
                self.say(f"warning: iteration {iteration}: the {part} parameters are not finite; no checkpoint written")
                return
        good = [number for number, _ in list_checkpoints(self.run_dir) if number < self.last_finite]
        try:
            path = save_checkpoint(state, self.run_dir, iteration, self.keep, max(good, default=None))
        except OSError as error:
            raise write_error(error, self.run_dir / "checkpoints" / f"iter_{iteration:08d}.pth") from None
        self.written[iteration] = path
        self.run_log.event(iteration, checkpoint=str(path))

    def newest(self) -> tuple[int, Path] | None:
        found = list_checkpoints(self.run_dir) if self.is_main else []
        return found[0] if found else None

    def save_progress(self, iteration: int, nonfinite_streak: int, state: Callable[[int], dict[str, Any]]) -> str:
        """Before a stop caused by data: keep the progress when the parameters are good; say where it is.
        ``state(iteration)`` builds the checkpoint (a collective: every rank calls this)."""
        if iteration > self.start_iteration and nonfinite_streak == 0 and iteration not in self.written:
            self.save(iteration, state(iteration))
        newest = self.newest()
        return f"progress up to iteration {newest[0]} is saved" if newest else "no checkpoint was saved yet"

    def diverged(self, nonfinite_streak: int) -> str:
        """Stop after a non-finite streak: the current parameters gave only non-finite losses, so the checkpoints
        that hold them are removed; returns the message, which names the newest good checkpoint (kept)."""
        good_until = self.last_finite
        removed = []
        if self.is_main:
            bad = {number: path for number, path in self.written.items() if number >= good_until}
            if self.resumed_here is not None and good_until == self.start_iteration:
                bad[self.start_iteration] = self.resumed_here
            for number, path in sorted(bad.items()):
                remove_checkpoint(path)
                removed.append(number)
        newest = self.newest()
        where = (
            f"the newest good checkpoint is {newest[1]} (iteration {newest[0]})"
            if newest
            else "no good checkpoint exists yet"
        )
        dropped = f"; removed the checkpoint(s) of iteration(s) {removed}, which hold them" if removed else ""
        return (
            f"{nonfinite_streak} consecutive non-finite losses (train.max_consecutive_nonfinite) from the "
            f"parameters after iteration {good_until}; they are not saved{dropped}; {where}: lower optimizer.lr "
            "or set train.grad_clip_norm, then run the same command to resume from it"
        )
