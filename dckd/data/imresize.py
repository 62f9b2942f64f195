"""MATLAB-compatible bicubic ``imresize``, and the bicubic degradation that makes benchmark LR images.

The SR literature's low-resolution inputs (``LR_bicubic`` of DIV2K, Set5, ...) are made by MATLAB's
``imresize(img, 1/scale, 'bicubic')``, which differs from PyTorch's ``interpolate(mode="bicubic")``: it
uses Keys' cubic kernel with a = -0.5, *widens* the kernel by ``1/scale`` when downscaling (antialiasing),
and mirrors the image at its borders ("symmetric" padding). Results differ by several dB of PSNR if the
wrong one is used, so this module reproduces MATLAB (and BasicSR's ``matlab_functions.imresize``, which
copies it) to 1e-6.

Resizing is separable: each axis is a fixed linear map, an ``(out_length, in_length)`` matrix whose
row ``i`` holds the kernel weights of output pixel ``i`` with the mirrored border folded back onto the
edge pixels. ``imresize`` (numpy) and ``imresize_tensor`` (torch, batched, any device, differentiable)
apply the same two matrices, so they agree to the precision of the dtype they run in.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

# Keys' cubic convolution kernel is supported on [-2, 2]: four taps at scale 1.
_KERNEL_WIDTH = 4.0


def cubic(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``'bicubic'``), elementwise.

    ``k(x) = 1.5|x|^3 - 2.5|x|^2 + 1`` for ``|x| <= 1``, ``-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2`` for
    ``1 < |x| <= 2``, and 0 beyond.
    """
    absolute = np.abs(distance)
    absolute2 = absolute**2
    absolute3 = absolute**3
    inner = (1.5 * absolute3 - 2.5 * absolute2 + 1.0) * (absolute <= 1)
    outer = (-0.5 * absolute3 + 2.5 * absolute2 - 4.0 * absolute + 2.0) * ((absolute > 1) & (absolute <= 2))
    return inner + outer


def output_length(in_length: int, scale: float) -> int:
    """MATLAB's output size: ``ceil(in_length * scale)`` (computed in float64 exactly as MATLAB does)."""
    return math.ceil(in_length * scale)


@functools.lru_cache(maxsize=64)
def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """The ``(out_length, in_length)`` float64 matrix that resizes one axis like MATLAB's ``imresize``.

    Follows MATLAB's ``contributions``: output pixel ``x`` (1-based) sits at input coordinate
    ``u = x / scale + 0.5 * (1 - 1 / scale)`` (pixel centres aligned, not corners); it reads the
    ``ceil(width) + 2`` input pixels from ``floor(u - width / 2)``, weighted by the cubic kernel
    (stretched by ``1 / scale`` and scaled by ``scale`` when downscaling with antialiasing), normalised
    to sum to 1. Taps outside the image are mirrored back in ("symmetric": index -1 reads 0, index n
    reads n - 1), and taps that land on the same pixel are summed. The result is cached and read-only.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"resize_matrix needs positive lengths, got in_length={in_length}, out_length={out_length}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    shrink_kernel = scale < 1 and antialiasing
    kernel_width = _KERNEL_WIDTH / scale if shrink_kernel else _KERNEL_WIDTH

    positions = np.arange(1, out_length + 1, dtype=np.float64)
    centres = positions / scale + 0.5 * (1 - 1 / scale)  # (out,), 1-based input coordinates
    left = np.floor(centres - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2  # one spare tap on each side, as MATLAB takes
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # (out, taps), 1-based
    distances = centres[:, None] - indices
    if shrink_kernel:
        weights = scale * cubic(distances * scale)
    else:
        weights = cubic(distances)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Mirror with period 2n so that even taps further out than the image is long land inside it
    # (MATLAB: aux = [1:n, n:-1:1]; indices = aux(mod(indices - 1, 2n) + 1)).
    zero_based = indices.astype(np.int64) - 1
    folded = np.mod(zero_based, 2 * in_length)
    folded = np.where(folded < in_length, folded, 2 * in_length - 1 - folded)

    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], folded.shape)
    np.add.at(matrix, (rows, folded), weights)
    matrix.setflags(write=False)  # shared through the cache
    return matrix


def _validated_scale(scale: float) -> float:
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number (0.25 = downscale x4), got {scale!r}")
    return scale


def imresize(image: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Resize an ``(H, W, C)`` or ``(H, W)`` float image like MATLAB's ``imresize(image, scale, 'bicubic')``.

    Args:
        image: float32 or float64 array, values normally in [0, 1] (any range works: the map is linear).
        scale: the same factor for both axes; 0.25 downscales x4, 4 upscales x4. The output is
            ``(ceil(H * scale), ceil(W * scale))``, as in MATLAB.
        antialiasing: widen the kernel when downscaling (MATLAB's default). Ignored when upscaling.

    Returns:
        The resized image, same number of dimensions and dtype as ``image``, not rounded or clipped
        (bicubic overshoots slightly outside [0, 1] at edges). Computed in float64.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"imresize takes a numpy array, got {type(image).__name__}; use imresize_tensor for tensors")
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(
            f"imresize expects a float image in [0, 1], got dtype {image.dtype}; divide a uint8 image by 255 "
            "(or use bicubic_degrade, which does the whole uint8 pipeline)"
        )
    scale = _validated_scale(scale)
    height, width = image.shape[:2]
    out_height, out_width = output_length(height, scale), output_length(width, scale)
    rows = resize_matrix(height, out_height, scale, antialiasing)  # (out_H, H)
    columns = resize_matrix(width, out_width, scale, antialiasing)  # (out_W, W)

    # Height first, then width, as MATLAB does for equal scales: (out_H, H) @ (H, W*C).
    data = image.astype(np.float64, copy=False)
    trailing = data.shape[1:]
    resized = (rows @ data.reshape(height, -1)).reshape(out_height, *trailing)
    # Width: contract axis 1 with (out_W, W); tensordot puts the new axis last, so move it back.
    resized = np.moveaxis(np.tensordot(resized, columns, axes=([1], [1])), -1, 1)
    return np.ascontiguousarray(resized).astype(image.dtype, copy=False)


def imresize_tensor(images: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """``imresize`` for ``(N, C, H, W)`` or ``(C, H, W)`` float tensors, on any device, differentiable.

    Two matrix products with the same weights as the numpy ``imresize``
    (``resize_matrix(H) @ images @ resize_matrix(W).T``), run in ``images.dtype``: a float64 tensor
    equals ``imresize`` of the same image to ~1e-15, a float32 one to float32 precision (~1e-6). On a
    GPU with TF32 matrix products allowed (``torch.backends.cuda.matmul.allow_tf32`` or
    ``torch.set_float32_matmul_precision("high")``), float32 errors grow to ~1e-3 (0.2 grey levels;
    measured on an H200): pass float64 when the result must be MATLAB's, e.g. for benchmark LR images.
    """
    if not torch.is_tensor(images):
        raise TypeError(f"imresize_tensor takes a torch.Tensor, got {type(images).__name__}; use imresize for numpy")
    if images.dim() not in (3, 4):
        raise ValueError(
            f"imresize_tensor expects an (N, C, H, W) or (C, H, W) tensor, got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise TypeError(f"imresize_tensor expects a float tensor in [0, 1], got dtype {images.dtype}")
    scale = _validated_scale(scale)
    height, width = images.shape[-2:]
    out_height, out_width = output_length(height, scale), output_length(width, scale)
    rows = torch.from_numpy(resize_matrix(height, out_height, scale, antialiasing).copy())
    columns = torch.from_numpy(resize_matrix(width, out_width, scale, antialiasing).copy())
    rows = rows.to(device=images.device, dtype=images.dtype)  # (out_H, H)
    columns = columns.to(device=images.device, dtype=images.dtype)  # (out_W, W)
    # (out_H, H) @ (..., H, W) -> (..., out_H, W); then @ (W, out_W) -> (..., out_H, out_W).
    return rows @ images @ columns.T


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right of an ``(H, W, ...)`` image so both sides are multiples of ``scale``.

    This is the first step of the benchmark pipeline, so that ``HR`` is exactly ``scale`` times ``LR``.
    Returns a view of ``image``.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"modcrop scale must be a positive integer, got {scale!r}")
    if image.ndim < 2:
        raise ValueError(f"modcrop expects an (H, W, ...) image, got shape {image.shape}")
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise ValueError(f"image of size {height}x{width} is smaller than the scale {scale}; nothing would remain")
    return image[: height - height % scale, : width - width % scale]


def bicubic_degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """Make the standard bicubic LR image (MATLAB / BasicSR ``generate_LR`` convention) from an HR image.

    Steps, exactly: (1) ``modcrop(hr, scale)``; (2) to float64 in [0, 1] (uint8 is divided by 255, a
    float image is taken to be in [0, 1] already); (3) ``imresize(., 1 / scale)`` with antialiasing;
    (4) multiply by 255, clip to [0, 255] and round half away from zero (MATLAB's ``im2uint8``,
    which ``imwrite`` applies to a double image) to uint8.

    Args:
        hr: ``(H, W, C)`` or ``(H, W)`` uint8, or float in [0, 1].
        scale: the integer SR factor (2, 3, 4, ...).

    Returns:
        uint8 array of ``(H // scale, W // scale[, C])``.
    """
    if hr.dtype != np.uint8 and not np.issubdtype(hr.dtype, np.floating):
        raise TypeError(f"bicubic_degrade expects a uint8 image or a float image in [0, 1], got dtype {hr.dtype}")
    cropped = modcrop(hr, scale)
    if cropped.dtype == np.uint8:
        unit = cropped.astype(np.float64) / 255.0
    else:
        unit = cropped.astype(np.float64)
    resized = imresize(unit, 1.0 / scale, antialiasing=True)
    # floor(v + 0.5) on non-negative v is MATLAB's round-half-away-from-zero; np.round would round half to even.
    return np.floor(np.clip(resized * 255.0, 0.0, 255.0) + 0.5).astype(np.uint8)
