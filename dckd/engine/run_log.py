"""What a run tells the world: a console progress line, ``log.jsonl``, TensorBoard scalars.

``log.jsonl`` holds one JSON object per logged iteration (``{"iter", "lr", "loss", <every term>,
"seconds_per_iter"}``) and one per validation (``{"iter", "validation": {set: {"psnr", "ssim"}}}``).
Only the main process writes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from dckd.engine.run_folder import write_error


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """One status line: iteration, rate, ETA and the latest losses (redrawn in place on a terminal)."""

    def __init__(self, total: int, start: int = 0, stream: TextIO | None = None, label: str = "train") -> None:
        self.total = total
        self.start_iteration = start
        self.stream = stream or sys.stderr
        self.label = label
        self.started = time.monotonic()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_draw = 0.0

    def rate(self, iteration: int) -> float:
        elapsed = time.monotonic() - self.started
        done = iteration - self.start_iteration
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def line(self, iteration: int, values: dict[str, float]) -> str:
        rate = self.rate(iteration)
        eta = (self.total - iteration) / rate if rate > 0 else float("inf")
        shown = " ".join(f"{name} {value:.4g}" for name, value in values.items())
        width = len(str(self.total))
        percent = 100.0 * iteration / self.total
        return f"{self.label} {iteration:>{width}}/{self.total} {percent:5.1f}% | {rate:.2f} it/s | ETA {format_duration(eta)} | {shown}"

    def update(self, iteration: int, values: dict[str, float], force: bool = False) -> None:
        """Redraw at most 4 times a second on a terminal; print a line per call otherwise."""
        now = time.monotonic()
        if self.interactive:
            if force or now - self.last_draw > 0.25 or iteration == self.total:
                self.stream.write("\r\033[K" + self.line(iteration, values))
                self.stream.flush()
                self.last_draw = now
        elif force:
            self.stream.write(self.line(iteration, values) + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line that must not be overwritten (validation results, warnings)."""
        if self.interactive:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


class RunLog:
    """Appends to ``log.jsonl`` and, when available and wanted, TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "log.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional dependency
                self.writer = None
            else:
                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def _append(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
        except OSError as error:  # disk full, read-only folder: one line naming the file, not a traceback
            raise write_error(error, self.path) from None

    def training(self, iteration: int, values: dict[str, float]) -> None:
        self._append({"iter": iteration, **values})
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"train/{name}", value, iteration)

    def validation(self, iteration: int, results: dict[str, dict[str, float]]) -> None:
        self._append({"iter": iteration, "validation": results})
        if self.writer is not None:
            for dataset, metrics in results.items():
                for name, value in metrics.items():
                    self.writer.add_scalar(f"validation/{dataset}/{name}", value, iteration)

    def event(self, iteration: int, **fields: Any) -> None:
        self._append({"iter": iteration, **fields})

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``log.jsonl`` (a partly written last line, from a killed run, is ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
