"""Finding images on disk: image folders, GT/LQ pairing by name, and the official dataset layouts.

Nothing here reads pixels; it only decides which files belong together, and fails with the folder
and the unmatched names when the layout is not what it should be.

Layouts:

- SR benchmarks (EDSR's benchmark package): ``Set5/HR/baby.png`` + ``Set5/LR_bicubic/X4/babyx4.png``;
  also BasicSR's ``Set5/GTmod12/baby.png`` + ``Set5/LRbicx4/baby.png``. Without the LR folder, the LR
  images are made by bicubic downscaling on the fly.
- GoPro: ``<root>/<split>/<sequence>/blur|sharp/*.png`` (the original release), or the flattened
  ``<root>/<split>/input|target`` of the Restormer/NAFNet scripts (``input_crops|target_crops`` too).
- Deraining (Rain13K, Test100, Rain100H, Rain100L, Test2800, Test1200 as Restormer distributes them):
  ``<root>/input`` + ``<root>/target``, with identical file names in both.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dckd.errors import DatasetError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# How many unmatched names an error message lists before summarising the rest as a count.
_LISTED_NAMES = 10

Pair = tuple[Path, Path]
"""``(gt_path, lq_path)``."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name.

    Extensions are matched case-insensitively (``IMAGE_EXTENSIONS``); other files are ignored, and so
    are hidden files (``.name``: editor and OS droppings such as ``._0001.png`` from macOS).

    Raises:
        DatasetError: if the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        if not folder.exists():
            raise DatasetError(f"image folder '{folder}' does not exist")
        raise DatasetError(f"'{folder}' is not a folder")
    images = sorted(
        entry
        for entry in folder.iterdir()
        if not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_EXTENSIONS and entry.is_file()
    )
    if not images:
        raise DatasetError(f"image folder '{folder}' holds no image (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return images


@dataclasses.dataclass(frozen=True)
class PairMatch:
    """The result of matching a GT folder with an LQ folder by name."""

    pairs: list[Pair]
    """Matched ``(gt_path, lq_path)``, in GT name order."""
    gt_without_lq: list[Path]
    """GT files whose LQ partner (``filename_template`` applied to the stem) is missing."""
    lq_without_gt: list[Path]
    """LQ files that no GT file maps to."""
    gt_dir: Path
    lq_dir: Path
    filename_template: str

    def unmatched(self) -> list[tuple[Path, str]]:
        """Each file without its partner, with the reason (for validation reports)."""
        problems = [
            (path, f"missing pair: no LQ image '{self.filename_template.format(path.stem)}.*' in '{self.lq_dir}'")
            for path in self.gt_without_lq
        ]
        problems += [(path, f"missing pair: matches no GT image in '{self.gt_dir}'") for path in self.lq_without_gt]
        return problems

    def describe_unmatched(self) -> str:
        """A readable list of the unmatched files (at most ten of each kind named)."""
        lines = []
        if self.gt_without_lq:
            expected = [f"{self.filename_template.format(path.stem)}.*" for path in self.gt_without_lq]
            lines.append(
                f"{len(self.gt_without_lq)} GT image(s) in '{self.gt_dir}' have no LQ partner in '{self.lq_dir}' "
                f"(filename_template {self.filename_template!r}): "
                + _name_list([f"{gt.name} -> {want}" for gt, want in zip(self.gt_without_lq, expected)])
            )
        if self.lq_without_gt:
            lines.append(
                f"{len(self.lq_without_gt)} LQ image(s) in '{self.lq_dir}' match no GT image in '{self.gt_dir}': "
                + _name_list([path.name for path in self.lq_without_gt])
            )
        return "\n".join(lines)


def find_pairs(gt_dir: str | os.PathLike, lq_dir: str | os.PathLike, filename_template: str = "{}") -> PairMatch:
    """Match every GT image to the LQ image whose stem is ``filename_template.format(gt_stem)``.

    This is BasicSR's convention: ``'{}x4'`` pairs ``0001.png`` with ``0001x4.png``. Extensions may
    differ between the two folders (``0001.png`` with ``0001x4.jpg``). Unmatched files on either side
    are returned, not raised; ``match_pairs`` raises.

    Raises:
        DatasetError: a folder is missing or empty, the template has no ``{}``, or two LQ files share
            a stem (``a.png`` and ``a.jpg``), which would make the pairing ambiguous.
    """
    if "{}" not in filename_template:
        raise ValueError(f"filename_template must contain '{{}}' (e.g. '{{}}x4'), got {filename_template!r}")
    gt_paths = list_images(gt_dir)
    lq_paths = list_images(lq_dir)
    lq_by_stem: dict[str, Path] = {}
    for path in lq_paths:
        if path.stem in lq_by_stem:
            raise DatasetError(
                f"two LQ files in '{lq_dir}' share the name '{path.stem}' ({lq_by_stem[path.stem].name} and "
                f"{path.name}); remove one so the pairing is unambiguous"
            )
        lq_by_stem[path.stem] = path
    pairs, gt_without_lq, used = [], [], set()
    for gt_path in gt_paths:
        lq_path = lq_by_stem.get(filename_template.format(gt_path.stem))
        if lq_path is None:
            gt_without_lq.append(gt_path)
        else:
            pairs.append((gt_path, lq_path))
            used.add(lq_path)
    lq_without_gt = [path for path in lq_paths if path not in used]
    return PairMatch(pairs, gt_without_lq, lq_without_gt, Path(gt_dir), Path(lq_dir), filename_template)


def read_meta_info(path: str | os.PathLike) -> list[str]:
    """The GT file names a BasicSR meta-info file lists: the first word of every non-blank line
    (``0001_s001.png (480,480,3)`` -> ``0001_s001.png``). A name may hold sub-folders but cannot leave the GT
    folder (no absolute path, no ``..``).

    Raises:
        DatasetError: the file is missing or unreadable, lists nothing, or a name leaves the folder.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"meta-info file '{path}' does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"meta-info file '{path}' cannot be read as text: {error}") from None
    names = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name = line.strip().split()[0]
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or "\\" in name:
            raise DatasetError(
                f"meta-info file '{path}', line {number}: {name!r} is not a file name inside the GT folder"
            )
        names.append(name)
    if not names:
        raise DatasetError(f"meta-info file '{path}' lists no file")
    return names


def find_listed_pairs(
    gt_dir: str | os.PathLike,
    lq_dir: str | os.PathLike,
    meta_info_file: str | os.PathLike,
    filename_template: str = "{}",
) -> PairMatch:
    """The pairs of the GT files a meta-info file lists, as BasicSR reads them: no folder is scanned (other
    files in the folders are never read); the LQ file of ``gt_dir/<name>`` is
    ``lq_dir/<filename_template.format(stem)><the GT's extension>``.

    Raises:
        DatasetError: the list is unreadable, or listed GT files do not exist (up to ten named).
    """
    if "{}" not in filename_template:
        raise ValueError(f"filename_template must contain '{{}}' (e.g. '{{}}x4'), got {filename_template!r}")
    gt_dir, lq_dir = Path(gt_dir), Path(lq_dir)
    names = read_meta_info(meta_info_file)
    missing = [name for name in names if not (gt_dir / name).is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} GT image(s) listed in '{meta_info_file}' do not exist in '{gt_dir}': {_name_list(missing)}"
        )
    pairs, gt_without_lq = [], []
    for name in names:
        gt_path = gt_dir / name
        lq_path = lq_dir / f"{filename_template.format(gt_path.stem)}{gt_path.suffix}"
        if lq_path.is_file():
            pairs.append((gt_path, lq_path))
        else:
            gt_without_lq.append(gt_path)
    return PairMatch(pairs, gt_without_lq, [], gt_dir, lq_dir, filename_template)


def match_pairs(gt_dir: str | os.PathLike, lq_dir: str | os.PathLike, filename_template: str = "{}") -> list[Pair]:
    """``find_pairs``, requiring that every file on both sides has its partner.

    Raises:
        DatasetError: listing (up to ten of) the unmatched names, with what was looked for.
    """
    match = find_pairs(gt_dir, lq_dir, filename_template)
    if match.gt_without_lq or match.lq_without_gt:
        raise DatasetError(match.describe_unmatched())
    return match.pairs


@dataclasses.dataclass(frozen=True)
class BenchmarkLayout:
    """An SR benchmark folder: the GT images, and the LR folder when it exists."""

    name: str
    """The set's name (the folder name, e.g. ``Set5``)."""
    gt_dir: Path
    lq_dir: Path | None
    """None when the set has no LR images for this scale: make them by bicubic downscaling."""
    filename_template: str
    """How LR stems derive from HR stems in this layout (``'{}x4'`` or ``'{}'``)."""


# (GT folder, LR folder, LR name template) of each known benchmark layout, in the order they are tried.
_BENCHMARK_LAYOUTS = (
    ("HR", "LR_bicubic/X{scale}", "{{}}x{scale}"),  # EDSR / DIV2K benchmark package
    ("GTmod12", "LRbicx{scale}", "{{}}"),  # BasicSR's Set5/Set14 release
)


def benchmark_layout(root: str | os.PathLike, scale: int) -> BenchmarkLayout:
    """Locate the GT and LR folders of an SR benchmark set (see the module docstring for the layouts).

    Raises:
        DatasetError: when no known GT folder is under ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"benchmark folder '{root}' does not exist")
    for gt_name, lq_pattern, template_pattern in _BENCHMARK_LAYOUTS:
        gt_dir = root / gt_name
        if gt_dir.is_dir():
            lq_dir = root / lq_pattern.format(scale=scale)
            template = template_pattern.format(scale=scale)
            return BenchmarkLayout(root.name, gt_dir, lq_dir if lq_dir.is_dir() else None, template)
    tried = ", ".join(f"'{gt}/' with '{lq.format(scale=scale)}/'" for gt, lq, _ in _BENCHMARK_LAYOUTS)
    raise DatasetError(f"'{root}' is not an SR benchmark folder: expected {tried} inside it")


def gopro_layout(root: str | os.PathLike, split: str, missing_pairs: str = "error") -> PairMatch:
    """The (sharp GT, blurred LQ) pairs of a GoPro split, in either official layout.

    Args:
        root: the folder holding ``train`` and ``test``.
        split: ``"train"`` or ``"test"``.
        missing_pairs: ``"error"`` raises on a file without its partner; ``"report"`` returns the
            unmatched files in the result for validation to list (and excludes them).
    """
    if split not in ("train", "test"):
        raise ValueError(f"GoPro split must be 'train' or 'test', got {split!r}")
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise DatasetError(f"GoPro folder '{split_dir}' does not exist (expected '{root}/train' and '{root}/test')")
    for input_name, target_name in (("input", "target"), ("input_crops", "target_crops")):
        if (split_dir / input_name).is_dir() or (split_dir / target_name).is_dir():
            return _checked(find_pairs(split_dir / target_name, split_dir / input_name), missing_pairs)
    sequences = sorted(entry for entry in split_dir.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    sequences = [sequence for sequence in sequences if (sequence / "sharp").is_dir() or (sequence / "blur").is_dir()]
    if not sequences:
        raise DatasetError(
            f"'{split_dir}' holds neither 'input/' + 'target/' nor sequence folders with 'blur/' + 'sharp/'"
        )
    pairs, gt_without_lq, lq_without_gt = [], [], []
    for sequence in sequences:
        match = _checked(find_pairs(sequence / "sharp", sequence / "blur"), missing_pairs)
        pairs += match.pairs
        gt_without_lq += match.gt_without_lq
        lq_without_gt += match.lq_without_gt
    # The unmatched files carry their sequence in their path; the folders are described generically.
    return PairMatch(
        pairs, gt_without_lq, lq_without_gt, split_dir / "<sequence>" / "sharp", split_dir / "<sequence>" / "blur", "{}"
    )


def input_target_layout(
    root: str | os.PathLike, filename_template: str = "{}", missing_pairs: str = "error"
) -> PairMatch:
    """The (target GT, input LQ) pairs of an ``input/`` + ``target/`` folder (deraining sets, flat GoPro).

    In Restormer's deraining data (Rain13K, Test100, Rain100H, Rain100L, Test2800, Test1200) input and
    target files have identical names, hence the default template ``'{}'`` (target stem -> input stem).
    Extensions may differ. ``missing_pairs`` is as in ``gopro_layout``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder '{root}' does not exist")
    if not (root / "input").is_dir() or not (root / "target").is_dir():
        raise DatasetError(f"'{root}' must hold 'input/' (degraded) and 'target/' (clean) folders")
    return _checked(find_pairs(root / "target", root / "input", filename_template), missing_pairs)


def _checked(match: PairMatch, missing_pairs: str) -> PairMatch:
    if missing_pairs not in ("error", "report"):
        raise ValueError(f"missing_pairs must be 'error' or 'report', got {missing_pairs!r}")
    if missing_pairs == "error" and (match.gt_without_lq or match.lq_without_gt):
        raise DatasetError(match.describe_unmatched())
    return match


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED_NAMES])
    if len(names) > _LISTED_NAMES:
        shown += f", ... and {len(names) - _LISTED_NAMES} more"
    return shown
