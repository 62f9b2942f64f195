"""Map-style datasets of (LQ, GT) image pairs for training and evaluation.

Each sample is ``{"lq": (3, h, w) float32, "gt": (3, h * scale, w * scale) float32, "name": str}``,
values in [0, 1].

Index protocol (exact resume). ``dataset[key]`` takes either

- an ``int``: deterministic, no augmentation; a training dataset (``lq_patch_size`` set) returns the
  centre patch, so validation on it is stable; or
- a tuple ``(index, seed)``: every random choice of that sample (crop position, flips) is drawn from
  ``torch.Generator().manual_seed(seed)``.

A sample therefore depends only on its key, never on the DataLoader worker count or on which process
loads it; ``sampler.TrainBatchSampler`` produces the keys.

Two kinds of data:

- ``PairedDataset``: LQ and GT files on disk (SR with stored LR, deblurring, deraining). For SR, GT may
  exceed ``scale`` x LQ by fewer than ``scale`` rows/columns (benchmark LR images are made from the
  mod-cropped HR), and is mod-cropped; any other size is an error naming both files.
- ``BicubicDataset``: GT files only; the LQ image is MATLAB-exact bicubic downscaling of the whole
  mod-cropped GT image (``dckd.data.imresize.bicubic_degrade``), quantised to uint8 like stored benchmark LR
  images (``quantize_lq=False`` keeps the float result, clipped to [0, 1]). Cropping happens after
  downscaling, so the LQ patch equals the corresponding region of the stored-LR pipeline.

Constructors from the official layouts: ``sr_benchmark``, ``paired_folders``, ``hr_folder``, ``gopro``,
``input_target``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dckd.data.folders import (
    Pair,
    PairMatch,
    benchmark_layout,
    find_listed_pairs,
    find_pairs,
    gopro_layout,
    input_target_layout,
    list_images,
    match_pairs,
)
from dckd.data.image_io import DEFAULT_MAX_PIXELS, decode_image
from dckd.data.imresize import bicubic_degrade, imresize, modcrop
from dckd.data.transforms import augment as augment_tensors
from dckd.data.transforms import (
    center_crop_origin,
    check_scale_consistent,
    paired_crop,
    random_crop_origin,
)
from dckd.errors import DatasetError

SampleKey = int | tuple[int, int]
"""``index`` (deterministic) or ``(index, seed)`` (random crop and augmentation from ``seed``)."""


class RestorationDataset(Dataset):
    """What ``PairedDataset`` and ``BicubicDataset`` share: the index protocol, crops, augmentation.

    Attributes used by validation (``validate.py``): ``gt_paths``, ``lq_paths`` (None entries where
    LQ is synthesised), ``scale``, ``lq_patch_size``, ``alpha``, ``max_pixels``, ``missing_pairs``.
    """

    def __init__(
        self,
        gt_paths: Sequence[str | os.PathLike],
        lq_paths: Sequence[str | os.PathLike | None],
        scale: int,
        lq_patch_size: int | None,
        augment: bool,
        *,
        cache_images: bool,
        name: str,
        alpha: str,
        max_pixels: int,
        missing_pairs: Sequence[tuple[Path, str]],
    ):
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"dataset '{name}': scale must be a positive integer, got {scale!r}")
        if lq_patch_size is not None and (not isinstance(lq_patch_size, int) or lq_patch_size < 1):
            raise ValueError(
                f"dataset '{name}': lq_patch_size must be a positive integer or None, got {lq_patch_size!r}"
            )
        if len(gt_paths) != len(lq_paths):
            raise ValueError(f"dataset '{name}': {len(gt_paths)} GT paths but {len(lq_paths)} LQ paths")
        self.gt_paths = [Path(path) for path in gt_paths]
        self.lq_paths = [None if path is None else Path(path) for path in lq_paths]
        self.scale = scale
        self.lq_patch_size = lq_patch_size
        self.augment = augment
        self.cache_images = cache_images
        self.name = name
        self.alpha = alpha
        self.max_pixels = max_pixels
        self.missing_pairs = list(missing_pairs)
        self.sample_names = _unique_names(self.gt_paths)
        # Per process: with DataLoader workers, each worker fills its own copy (see the subclasses).
        self._cache: dict[Path, np.ndarray] = {}
        # Optional extra target aligned with GT (the teacher-output cache, ``dckd.engine.teacher_cache``): an object
        # with ``load(gt_path) -> (C, H*scale, W*scale) array``; cropped and augmented exactly like GT and
        # returned as ``"teacher_output"``.
        self.teacher_outputs = None

    def __len__(self) -> int:
        return len(self.gt_paths)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor | str]:
        index, seed = parse_key(key, len(self))
        # Crop the stored integer pixels (CHW views, no copy) and convert only the patch to float:
        # converting a whole 2K image per sample would cost more than decoding it.
        lq, gt = self.load_pixels(index)
        extra = None if self.teacher_outputs is None else self.teacher_outputs.load(self.gt_paths[index])
        if extra is not None and (extra.ndim != 3 or not np.issubdtype(extra.dtype, np.floating)):
            raise DatasetError(
                f"teacher-output cache entry for '{self.gt_paths[index]}' holds {extra.dtype} values of shape "
                f"{tuple(extra.shape)}, not a float (C, H, W) image: the cache was not written by dckd; delete it"
            )
        if extra is not None and tuple(extra.shape[-2:]) != tuple(gt.shape[-2:]):
            raise DatasetError(
                f"teacher-output cache for '{self.gt_paths[index]}' is {tuple(extra.shape[-2:])}, "
                f"the GT image is {tuple(gt.shape[-2:])}: the cache does not belong to this data"
            )
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        label = self._describe(index)
        if self.lq_patch_size is not None:
            if generator is None:
                top, left = center_crop_origin(lq, self.lq_patch_size, name=label)
            else:
                top, left = random_crop_origin(lq, self.lq_patch_size, generator, name=label)
            lq_patch, gt = paired_crop(lq, gt, self.lq_patch_size, self.scale, top, left)
            if extra is not None:
                extra = paired_crop(lq, extra, self.lq_patch_size, self.scale, top, left)[1]
            lq = lq_patch
        tensors = [_chw_tensor(lq), _chw_tensor(gt)] + ([] if extra is None else [_chw_tensor(extra)])
        if self.augment and generator is not None:
            tensors = augment_tensors(tensors, generator)
        sample = {"lq": tensors[0], "gt": tensors[1], "name": self.sample_names[index]}
        if extra is not None:
            sample["teacher_output"] = tensors[2]
        return sample

    def load_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole ``(lq, gt)`` images of item ``index`` as float tensors, GT exactly ``scale`` times LQ."""
        lq, gt = self.load_pixels(index)
        return _chw_tensor(lq), _chw_tensor(gt)

    def load_pixels(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole ``(lq, gt)`` images of item ``index`` as stored: ``(3, H, W)`` array views
        (uint8, uint16 for 16-bit files, or float32 in [0, 1]), GT exactly ``scale`` times LQ."""
        raise NotImplementedError

    def subset(self, indices: Sequence[int]) -> RestorationDataset:
        """A copy holding only ``indices`` (in that order); used to skip bad items explicitly."""
        restricted = copy.copy(self)
        restricted.gt_paths = [self.gt_paths[index] for index in indices]
        restricted.lq_paths = [self.lq_paths[index] for index in indices]
        restricted.sample_names = [self.sample_names[index] for index in indices]
        restricted.missing_pairs = []
        return restricted

    def _read(self, path: Path) -> np.ndarray:
        """Stored pixels ``(H, W, 3)``: uint8, or uint16 for 16-bit files; cached if ``cache_images``."""
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        pixels = decode_image(path, alpha=self.alpha, max_pixels=self.max_pixels).pixels
        if self.cache_images:
            self._cache[path] = pixels
        return pixels

    def _describe(self, index: int) -> str:
        lq_path = self.lq_paths[index]
        if lq_path is None:
            return f"'{self.gt_paths[index]}'"
        return f"pair GT '{self.gt_paths[index]}' / LQ '{lq_path}'"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, items={len(self)}, scale={self.scale}, "
            f"lq_patch_size={self.lq_patch_size}, augment={self.augment})"
        )


class PairedDataset(RestorationDataset):
    """LQ/GT image pairs stored on disk.

    Args:
        pairs: ``(gt_path, lq_path)`` for each item.
        scale: GT size / LQ size (1 for deblurring and deraining).
        lq_patch_size: LQ training patch side (GT patch is ``scale`` times larger); None for whole images.
        augment: random flips/rotations for seeded keys.
        cache_images: keep decoded pixels in memory (per process: every DataLoader worker holds its own
            copy; 800 DIV2K pairs at x4 take about 7 GB as uint8 per process).
        name: the dataset's name in logs and reports.
        alpha: ``read_image``'s alpha policy (``"error"`` or ``"drop"``).
        max_pixels: the largest image accepted (``image_io.DEFAULT_MAX_PIXELS``).
        missing_pairs: files left unmatched when the pairs were found, with reasons; reported by
            validation (they are not items).
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        scale: int,
        lq_patch_size: int | None = None,
        augment: bool = False,
        *,
        cache_images: bool = False,
        name: str = "paired",
        alpha: str = "error",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        missing_pairs: Sequence[tuple[Path, str]] = (),
    ):
        super().__init__(
            [gt for gt, _ in pairs],
            [lq for _, lq in pairs],
            scale,
            lq_patch_size,
            augment,
            cache_images=cache_images,
            name=name,
            alpha=alpha,
            max_pixels=max_pixels,
            missing_pairs=missing_pairs,
        )

    @property
    def pairs(self) -> list[Pair]:
        return list(zip(self.gt_paths, self.lq_paths))

    def load_pixels(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        lq = self._read(self.lq_paths[index]).transpose(2, 0, 1)
        gt = self._read(self.gt_paths[index]).transpose(2, 0, 1)
        return lq, check_scale_consistent(lq, gt, self.scale, names=self._describe(index))


class BicubicDataset(RestorationDataset):
    """GT images only; LQ made by MATLAB-exact bicubic downscaling of each whole GT image.

    The LQ image of an item is computed once per process and kept in memory (``quantize_lq``: uint8,
    ``H*W*3 / scale**2`` bytes per image, e.g. about 0.5 GB for DIV2K's 800 images at x4, 1.7 GB at x2,
    per DataLoader worker; use ``persistent_workers=True`` so it survives epochs). Computing one costs
    about as much as decoding the PNG. For large training sets, storing LR files and using
    ``PairedDataset`` is cheaper.

    Args:
        gt_paths: the GT images.
        quantize_lq: round the LQ image to uint8 as stored benchmark LR images are (MATLAB's
            ``im2uint8``); False keeps the float bicubic result (clipped to [0, 1]).
        other arguments: as ``PairedDataset``.
    """

    def __init__(
        self,
        gt_paths: Sequence[str | os.PathLike],
        scale: int,
        lq_patch_size: int | None = None,
        augment: bool = False,
        *,
        quantize_lq: bool = True,
        cache_images: bool = False,
        name: str = "bicubic",
        alpha: str = "error",
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        super().__init__(
            gt_paths,
            [None] * len(gt_paths),
            scale,
            lq_patch_size,
            augment,
            cache_images=cache_images,
            name=name,
            alpha=alpha,
            max_pixels=max_pixels,
            missing_pairs=(),
        )
        self.quantize_lq = quantize_lq
        self._lq_cache: dict[Path, np.ndarray] = {}

    def load_pixels(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.gt_paths[index]
        pixels = self._read(path)
        if min(pixels.shape[:2]) < self.scale:
            height, width = pixels.shape[:2]
            raise DatasetError(f"'{path}': the image {height}x{width} is smaller than the scale {self.scale}")
        gt_pixels = modcrop(pixels, self.scale)
        lq_pixels = self._lq_cache.get(path)
        if lq_pixels is None:
            lq_pixels = self._downscale(gt_pixels)
            self._lq_cache[path] = lq_pixels
        return lq_pixels.transpose(2, 0, 1), gt_pixels.transpose(2, 0, 1)

    def _downscale(self, gt_pixels: np.ndarray) -> np.ndarray:
        if self.scale == 1:  # clean images as both input and target (the codebook autoencoder)
            return gt_pixels
        # bicubic_degrade takes uint8 exactly as MATLAB does; 16-bit sources go through [0, 1] floats.
        source = gt_pixels if gt_pixels.dtype == np.uint8 else gt_pixels.astype(np.float64) / 65535.0
        if self.quantize_lq:
            return bicubic_degrade(source, self.scale)
        if source.dtype == np.uint8:
            source = source.astype(np.float64) / 255.0
        resized = imresize(source, 1.0 / self.scale, antialiasing=True)
        return np.clip(resized, 0.0, 1.0).astype(np.float32)

    def subset(self, indices: Sequence[int]) -> BicubicDataset:
        restricted = super().subset(indices)
        assert isinstance(restricted, BicubicDataset)
        return restricted


# ---------------------------------------------------------------------------------------------------
# Constructors from layouts


def sr_benchmark(root: str | os.PathLike, scale: int, **options) -> RestorationDataset:
    """An SR benchmark set (``Set5/HR`` + ``Set5/LR_bicubic/X4``, see ``folders.benchmark_layout``) for
    evaluation: stored LR images when the folder exists, bicubic LR made on the fly otherwise.
    ``options`` go to the dataset (``lq_patch_size``, ``augment``, ``cache_images``, ``alpha``, ...)."""
    layout = benchmark_layout(root, scale)
    options.setdefault("name", layout.name)
    if layout.lq_dir is None:
        return BicubicDataset(list_images(layout.gt_dir), scale, **options)
    return PairedDataset(match_pairs(layout.gt_dir, layout.lq_dir, layout.filename_template), scale, **options)


def paired_folders(
    gt_dir: str | os.PathLike,
    lq_dir: str | os.PathLike,
    scale: int,
    filename_template: str = "{}",
    missing_pairs: str = "error",
    meta_info_file: str | os.PathLike | None = None,
    **options,
) -> PairedDataset:
    """GT and LQ folders matched by name (``'{}x4'`` pairs ``0001.png`` with ``0001x4.png``); with
    ``meta_info_file`` (BasicSR) only the GT files it lists, without scanning the folders.

    ``missing_pairs="report"`` keeps going when a file has no partner and leaves it to validation to
    report (or skip); ``"error"`` raises at once. ``options`` go to ``PairedDataset``.
    """
    if meta_info_file is not None:
        match = find_listed_pairs(gt_dir, lq_dir, meta_info_file, filename_template)
    else:
        match = find_pairs(gt_dir, lq_dir, filename_template)
    options.setdefault("name", Path(gt_dir).name)
    return _from_match(match, scale, missing_pairs, options)


def hr_folder(gt_dir: str | os.PathLike, scale: int, **options) -> BicubicDataset:
    """A folder of GT images; LQ images by bicubic downscaling. ``options`` go to ``BicubicDataset``."""
    options.setdefault("name", Path(gt_dir).name)
    return BicubicDataset(list_images(gt_dir), scale, **options)


def gopro(root: str | os.PathLike, split: str, missing_pairs: str = "error", **options) -> PairedDataset:
    """GoPro deblurring pairs (scale 1), either official layout (see ``folders.gopro_layout``)."""
    options.setdefault("name", f"GoPro-{split}")
    return _from_match(gopro_layout(root, split, missing_pairs="report"), 1, missing_pairs, options)


def input_target(
    root: str | os.PathLike, filename_template: str = "{}", missing_pairs: str = "error", **options
) -> PairedDataset:
    """An ``input/`` + ``target/`` set (Rain13K, Test100, Rain100H/L, Test2800, Test1200, flat GoPro), scale 1."""
    options.setdefault("name", Path(root).name)
    match = input_target_layout(root, filename_template, missing_pairs="report")
    return _from_match(match, 1, missing_pairs, options)


def _from_match(match: PairMatch, scale: int, missing_pairs: str, options: dict) -> PairedDataset:
    if missing_pairs not in ("error", "report"):
        raise ValueError(f"missing_pairs must be 'error' or 'report', got {missing_pairs!r}")
    if missing_pairs == "error" and (match.gt_without_lq or match.lq_without_gt):
        raise DatasetError(match.describe_unmatched())
    if not match.pairs:
        raise DatasetError(
            f"no image pairs found in '{match.gt_dir}' and '{match.lq_dir}'\n{match.describe_unmatched()}"
        )
    return PairedDataset(match.pairs, scale, missing_pairs=match.unmatched(), **options)


# ---------------------------------------------------------------------------------------------------


def parse_key(key: SampleKey, length: int) -> tuple[int, int | None]:
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"a dataset key is an index or (index, seed), got {key!r}")
        index, seed = int(key[0]), int(key[1])
    elif (isinstance(key, (int, np.integer)) and not isinstance(key, bool)) or (
        torch.is_tensor(key) and key.dim() == 0
    ):
        index, seed = int(key), None
    else:
        raise TypeError(f"a dataset key is an index or (index, seed), got {key!r}")
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    return index, seed


def _chw_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``(C, H, W)`` uint8 / uint16 / float32 array -> contiguous float32 tensor in [0, 1]."""
    if pixels.dtype in (np.uint8, np.uint16):
        array = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    else:
        array = pixels.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def _unique_names(paths: list[Path]) -> list[str]:
    """File stems, or paths relative to the common folder where stems repeat (GoPro sequences)."""
    stems = [path.stem for path in paths]
    if len(set(stems)) == len(stems):
        return stems
    common = Path(os.path.commonpath([str(path.parent) for path in paths]))
    return [path.relative_to(common).with_suffix("").as_posix() for path in paths]
