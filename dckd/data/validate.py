"""Checking a dataset before training starts: every file once, in parallel, with a readable report.

A corrupt image found at iteration 180k costs days; found before iteration 0 it costs seconds. Each
file is fully decoded once (not just its header: truncation shows only in the data) by a thread pool
(Pillow's decoders and file reads run outside the GIL), and each item is checked against the rules
the dataset will apply: pair sizes agree with the scale, the LQ image holds a training patch, the
image is a supported mode and within the pixel limit, and every file has its partner.

The result is a ``ValidationReport``. ``report.raise_if_problems()`` stops with a summary naming each
bad file; ``check_dataset(..., skip_bad=True)`` instead drops the bad items explicitly and says how many.
A file that goes bad after validation (removed, truncated) still raises ``ImageReadError`` naming it
when it is loaded.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from dckd.data.datasets import RestorationDataset
from dckd.data.image_io import DEFAULT_MAX_PIXELS, decode_image
from dckd.errors import DatasetError, ImageReadError

# Problems listed in a summary before the rest are counted; ``report.problems`` always has them all.
_SUMMARY_LIMIT = 100


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem: the file(s) concerned and what is wrong."""

    paths: tuple[Path, ...]
    reason: str
    index: int | None
    """The dataset item it makes unusable; None for a file that is not part of any item (unmatched)."""

    def __str__(self) -> str:
        return f"{' / '.join(repr(str(path)) for path in self.paths)}: {self.reason}"


@dataclasses.dataclass
class ValidationReport:
    """What ``validate_dataset`` found."""

    dataset_name: str
    num_items: int
    num_files: int
    problems: list[Problem]
    bad_indices: list[int]
    """Sorted indices of the items that cannot be used."""
    notes: dict[str, int]
    """Conversions applied to good files (``"grayscale replicated to RGB"``: count); not problems."""
    skipped: int = 0
    """Items dropped by ``check_dataset(skip_bad=True)``."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int | None = _SUMMARY_LIMIT) -> str:
        """A readable multi-line summary naming each problem's file(s) (the first ``limit`` problems)."""
        head = f"dataset '{self.dataset_name}': {self.num_items} items, {self.num_files} files checked"
        lines = [head + (f", {len(self.problems)} problem(s):" if self.problems else ", no problems")]
        shown = self.problems if limit is None else self.problems[:limit]
        lines += [f"  - {problem}" for problem in shown]
        if len(shown) < len(self.problems):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problem(s)")
        if self.notes:
            lines.append(
                "  notes: " + "; ".join(f"{count} file(s): {note}" for note, count in sorted(self.notes.items()))
            )
        if self.skipped:
            remaining = self.num_items - self.skipped
            lines.append(f"  skipped {self.skipped} of {self.num_items} items (skip_bad); {remaining} remain")
        return "\n".join(lines)

    def raise_if_problems(self) -> None:
        """Raise ``DatasetError`` with the summary if anything is wrong."""
        if self.problems:
            raise DatasetError(self.summary())


@dataclasses.dataclass(frozen=True)
class _FileResult:
    height: int = 0
    width: int = 0
    conversion: str | None = None
    error: str | None = None


def validate_dataset(
    data: RestorationDataset | Sequence[tuple[str | os.PathLike, str | os.PathLike]],
    scale: int | None = None,
    lq_patch_size: int | None = None,
    workers: int = 4,
    *,
    alpha: str = "error",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Check every file of a dataset once, in parallel, and report each problem with its file(s).

    Args:
        data: a dataset from ``datasets.py`` (its scale, patch size, alpha policy, pixel limit and
            unmatched files are used), or a list of ``(gt_path, lq_path)`` pairs.
        scale: for pairs (default 1); for a dataset, if given, must equal its scale.
        lq_patch_size: for pairs, the training patch (None: evaluation, sizes not checked against a
            patch); for a dataset, overrides its ``lq_patch_size`` if given.
        workers: threads decoding in parallel.
        alpha, max_pixels: for pairs, the read policy (``image_io.read_image``).
        name: the name in the report (default: the dataset's).
        progress: called as ``progress(files_done, files_total)`` after each file.
    """
    if isinstance(data, RestorationDataset):
        if scale is not None and scale != data.scale:
            raise ValueError(f"validate_dataset: scale {scale} given for dataset '{data.name}' of scale {data.scale}")
        scale = data.scale
        lq_patch_size = data.lq_patch_size if lq_patch_size is None else lq_patch_size
        alpha, max_pixels = data.alpha, data.max_pixels
        gt_paths, lq_paths = data.gt_paths, data.lq_paths
        missing = data.missing_pairs
        name = data.name if name is None else name
    else:
        scale = 1 if scale is None else scale
        gt_paths = [Path(gt) for gt, _ in data]
        lq_paths = [Path(lq) for _, lq in data]
        missing = []
        name = "pairs" if name is None else name

    files = list(dict.fromkeys([*gt_paths, *(path for path in lq_paths if path is not None)]))
    results = _inspect_all(files, alpha, max_pixels, workers, progress)

    problems: list[Problem] = [Problem((path,), reason, None) for path, reason in missing]
    bad: set[int] = set()
    for index, (gt_path, lq_path) in enumerate(zip(gt_paths, lq_paths)):
        item_problems = _check_item(index, gt_path, lq_path, results, scale, lq_patch_size)
        if item_problems:
            bad.add(index)
            problems += item_problems

    # A file shared by several items is reported once (its first item).
    unique_problems, seen = [], set()
    for problem in problems:
        if (problem.paths, problem.reason) not in seen:
            seen.add((problem.paths, problem.reason))
            unique_problems.append(problem)
    notes = collections.Counter(
        result.conversion for result in results.values() if result.error is None and result.conversion
    )
    return ValidationReport(name, len(gt_paths), len(files), unique_problems, sorted(bad), dict(notes))


def check_dataset(
    dataset: RestorationDataset, workers: int = 4, skip_bad: bool = False, **options
) -> tuple[RestorationDataset, ValidationReport]:
    """Validate ``dataset``; raise on problems, or with ``skip_bad`` return it without the bad items.

    Returns:
        ``(dataset, report)``: the dataset itself when nothing is wrong, otherwise (``skip_bad``) a
        subset holding only the good items; ``report.summary()`` names what was skipped and counts it.

    Raises:
        DatasetError: with the report's summary, if there are problems and not ``skip_bad``, or if
            no good item is left.
    """
    report = validate_dataset(dataset, workers=workers, **options)
    if report.ok:
        return dataset, report
    if not skip_bad:
        raise DatasetError(report.summary() + "\n(fix or remove these files, or skip them explicitly with skip_bad)")
    bad = set(report.bad_indices)
    good = [index for index in range(len(dataset)) if index not in bad]
    report.skipped = len(bad)
    if not good:
        raise DatasetError(report.summary() + "\nno usable item is left")
    return dataset.subset(good), report


def _inspect_all(
    files: list[Path], alpha: str, max_pixels: int, workers: int, progress: Callable[[int, int], None] | None
) -> dict[Path, _FileResult]:
    results: dict[Path, _FileResult] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(_inspect, path, alpha, max_pixels): path for path in files}
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(done, len(files))
    return results


def _inspect(path: Path, alpha: str, max_pixels: int) -> _FileResult:
    try:
        decoded = decode_image(path, alpha=alpha, max_pixels=max_pixels)
    except ImageReadError as error:
        return _FileResult(error=error.reason or str(error))
    height, width = decoded.pixels.shape[:2]
    return _FileResult(height, width, decoded.conversion)


def _check_item(
    index: int,
    gt_path: Path,
    lq_path: Path | None,
    results: dict[Path, _FileResult],
    scale: int,
    lq_patch_size: int | None,
) -> list[Problem]:
    problems = [
        Problem((path,), results[path].error, index)
        for path in (gt_path, lq_path)
        if path is not None and results[path].error is not None
    ]
    if problems:
        return problems
    gt = results[gt_path]
    if lq_path is None:
        # LQ is made by bicubic downscaling of the mod-cropped GT.
        if gt.height < scale or gt.width < scale:
            return [Problem((gt_path,), f"the image is {gt.height}x{gt.width}, smaller than the scale {scale}", index)]
        lq_height, lq_width, patch_file = gt.height // scale, gt.width // scale, gt_path
    else:
        lq = results[lq_path]
        if gt.height // scale != lq.height or gt.width // scale != lq.width:
            return [
                Problem(
                    (gt_path, lq_path),
                    f"GT is {gt.height}x{gt.width} and LQ is {lq.height}x{lq.width}, which does not agree with scale "
                    f"{scale} (GT should be {lq.height * scale}x{lq.width * scale}, up to {scale - 1} extra rows/columns)",
                    index,
                )
            ]
        lq_height, lq_width, patch_file = lq.height, lq.width, lq_path
    if lq_patch_size is not None and (lq_height < lq_patch_size or lq_width < lq_patch_size):
        return [
            Problem(
                (patch_file,),
                f"the LQ image is {lq_height}x{lq_width}, smaller than the {lq_patch_size}x{lq_patch_size} training patch",
                index,
            )
        ]
    return []
