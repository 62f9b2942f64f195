"""Tensor transforms for paired training data: aligned crops and the flips/rotations of BasicSR.

All functions take ``(C, H, W)`` tensors; the crops also take ``(C, H, W)`` numpy arrays, so that
datasets crop the stored 8/16-bit pixels and convert only the patch to float. Random choices come from
the ``torch.Generator`` passed in, so a sample depends only on the generator's seed (see
``datasets.py``, "index protocol").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dckd.errors import DatasetError

ArrayOrTensor = torch.Tensor | np.ndarray
"""A ``(C, H, W)`` image: a tensor, or a numpy array (the crops accept both)."""


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array -> contiguous ``(C, H, W)`` float32 tensor in [0, 1].

    uint8 is divided by 255, uint16 by 65535; a float image is taken to be in [0, 1] already.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    if image.dtype in (np.uint8, np.uint16):
        array = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        array = image.astype(np.float32, copy=False)
    else:
        raise TypeError(f"expected a uint8, uint16 or float image, got dtype {image.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def mod_crop(image: ArrayOrTensor, scale: int) -> ArrayOrTensor:
    """Crop the bottom and right so height and width are multiples of ``scale``.

    A tensor is ``(..., H, W)``; an array is ``(H, W, ...)`` (the two layouts this package uses).
    """
    if torch.is_tensor(image):
        height, width = image.shape[-2:]
        return image[..., : height - height % scale, : width - width % scale]
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def check_scale_consistent(lq: ArrayOrTensor, gt: ArrayOrTensor, scale: int, names: str = "") -> ArrayOrTensor:
    """Return ``gt`` mod-cropped to exactly ``scale`` times ``lq``, or raise if the sizes disagree.

    The standard benchmark LR images are made from the mod-cropped HR image, so an HR side may exceed
    ``scale * LR`` by less than ``scale``; anything else means the pair does not belong together.

    Raises:
        DatasetError: naming ``names`` (the files) and both sizes.
    """
    lq_height, lq_width = lq.shape[-2:]
    gt_height, gt_width = gt.shape[-2:]
    if gt_height // scale != lq_height or gt_width // scale != lq_width:
        raise DatasetError(
            f"{names}: GT is {gt_height}x{gt_width} and LQ is {lq_height}x{lq_width}, which does not agree with "
            f"scale {scale} (GT should be {lq_height * scale}x{lq_width * scale}, up to {scale - 1} extra rows/columns)"
        )
    return gt[..., : lq_height * scale, : lq_width * scale]


def paired_crop(
    lq: ArrayOrTensor, gt: ArrayOrTensor, lq_patch_size: int, scale: int, top: int, left: int
) -> tuple[ArrayOrTensor, ArrayOrTensor]:
    """The LQ patch at ``(top, left)`` and the GT patch covering the same area (``scale`` times larger)."""
    lq_patch = lq[..., top : top + lq_patch_size, left : left + lq_patch_size]
    gt_size = lq_patch_size * scale
    gt_patch = gt[..., top * scale : top * scale + gt_size, left * scale : left * scale + gt_size]
    return lq_patch, gt_patch


def _check_patch_fits(lq: ArrayOrTensor, lq_patch_size: int, name: str) -> None:
    height, width = lq.shape[-2:]
    if height < lq_patch_size or width < lq_patch_size:
        raise DatasetError(
            f"{name}: the LQ image is {height}x{width}, smaller than the {lq_patch_size}x{lq_patch_size} training patch"
        )


def paired_random_crop(
    lq: ArrayOrTensor,
    gt: ArrayOrTensor,
    lq_patch_size: int,
    scale: int,
    generator: torch.Generator,
    name: str = "image",
) -> tuple[ArrayOrTensor, ArrayOrTensor]:
    """An aligned random crop: an ``lq_patch_size`` LQ patch and the ``lq_patch_size * scale`` GT patch.

    ``gt`` must be exactly ``scale`` times ``lq`` (see ``check_scale_consistent``). The position is
    uniform over all LQ positions, drawn from ``generator`` (two ``torch.randint`` calls: top, left).

    Raises:
        DatasetError: naming ``name`` when the image is smaller than the patch.
    """
    if tuple(gt.shape[-2:]) != (lq.shape[-2] * scale, lq.shape[-1] * scale):
        raise ValueError(f"{name}: GT {tuple(gt.shape[-2:])} is not {scale} x LQ {tuple(lq.shape[-2:])}")
    top, left = random_crop_origin(lq, lq_patch_size, generator, name)
    return paired_crop(lq, gt, lq_patch_size, scale, top, left)


def random_crop_origin(
    lq: ArrayOrTensor, lq_patch_size: int, generator: torch.Generator, name: str = "image"
) -> tuple[int, int]:
    """(top, left) of a uniform random LQ patch position: two ``torch.randint`` draws, top then left."""
    _check_patch_fits(lq, lq_patch_size, name)
    height, width = lq.shape[-2:]
    top = int(torch.randint(0, height - lq_patch_size + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - lq_patch_size + 1, (1,), generator=generator))
    return top, left


def center_crop_origin(lq: ArrayOrTensor, lq_patch_size: int, name: str = "image") -> tuple[int, int]:
    """(top, left) of the centre patch (rounded towards the top left)."""
    _check_patch_fits(lq, lq_patch_size, name)
    height, width = lq.shape[-2:]
    return (height - lq_patch_size) // 2, (width - lq_patch_size) // 2


def augment(
    tensors: Sequence[torch.Tensor], generator: torch.Generator, hflip: bool = True, rotation: bool = True
) -> list[torch.Tensor]:
    """Apply one random flip/rotation, the same to every tensor (BasicSR's ``augment``).

    Three coin flips (p = 0.5 each) are always drawn from ``generator``, so the generator advances the
    same way whatever is enabled: horizontal flip (if ``hflip``), vertical flip and H/W transpose
    (if ``rotation``). Together they give the 8 dihedral transforms of a square, uniformly.
    """
    coins = torch.rand(3, generator=generator) < 0.5
    do_hflip = hflip and bool(coins[0])
    do_vflip = rotation and bool(coins[1])
    do_transpose = rotation and bool(coins[2])
    results = []
    for tensor in tensors:
        if do_hflip:
            tensor = tensor.flip(-1)
        if do_vflip:
            tensor = tensor.flip(-2)
        if do_transpose:
            tensor = tensor.transpose(-2, -1)
        results.append(tensor.contiguous())
    return results
