"""PSNR and SSIM exactly as the SR literature reports them (MATLAB-equivalent, BasicSR's numbers).

Papers evaluate on uint8 RGB images, remove ``crop_border`` pixels (usually the scale) from every side,
and, for SR, measure on the Y channel of ITU-R BT.601 YCbCr (MATLAB's ``rgb2ycbcr``, range 16..235).
SSIM is Wang et al.'s: an 11x11 Gaussian window with sigma 1.5, statistics only where the window fits
inside the image ("valid"), ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, averaged over channels.

The Y channel is not rounded (MATLAB's ``rgb2ycbcr`` of a uint8 image would round it; BasicSR, whose
numbers papers copy, does not), and it passes through float32 exactly as BasicSR's ``to_y_channel``
does, so results equal BasicSR's to the last bit rather than to ~1e-6 dB.

The functions take ``(H, W, C)`` uint8 images (or float images in [0, 255]) and return floats; network
outputs reach them through ``tensor_to_uint8`` (``dckd.eval.restoration.score_image``), as saved images
would, both for ``dckd test`` and for validation during training.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dckd.data.image_io import to_uint8

# MATLAB rgb2ycbcr (BT.601): Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1].
Y_COEFFICIENTS_RGB = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel (BT.601, 16..235) of an ``(H, W, 3)`` RGB image in [0, 255] (uint8 or float).

    Returns an ``(H, W)`` float64 array in [16, 235], not rounded. The arithmetic copies BasicSR's
    ``to_y_channel``: the image is scaled to [0, 1] in float32, the weighted sum is taken in float64,
    and the result is stored in float32 before returning to the 0..255 scale.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects an (H, W, 3) RGB image, got shape {image.shape}")
    unit = image.astype(np.float32) / np.float32(255.0)  # float32, as BasicSR
    luma = np.dot(unit.astype(np.float64), np.array(Y_COEFFICIENTS_RGB)) + Y_OFFSET
    luma_unit = (luma / 255.0).astype(np.float32)
    return (luma_unit * np.float32(255.0)).astype(np.float64)


def _prepare_pair(
    image_a: np.ndarray, image_b: np.ndarray, crop_border: int, y_channel: bool, minimum_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, crop and (optionally) convert to Y; return two ``(H, W, C)`` float64 arrays in [0, 255]."""
    for label, image in (("a", image_a), ("b", image_b)):
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image {label} must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
            raise TypeError(f"image {label} must be uint8 or float in [0, 255], got dtype {image.dtype}")
        if image.ndim not in (2, 3):
            raise ValueError(f"image {label} must be (H, W, C) or (H, W), got shape {image.shape}")
    if image_a.shape != image_b.shape:
        raise ValueError(f"image shapes differ: {image_a.shape} vs {image_b.shape}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    height, width = image_a.shape[:2]
    remaining = (height - 2 * crop_border, width - 2 * crop_border)
    if min(remaining) < minimum_size:
        raise ValueError(
            f"crop_border={crop_border} leaves {remaining[0]}x{remaining[1]} of a {height}x{width} image; "
            f"at least {minimum_size}x{minimum_size} is needed"
        )
    if image_a.ndim == 2:
        image_a, image_b = image_a[..., None], image_b[..., None]
    if crop_border:
        image_a = image_a[crop_border:-crop_border, crop_border:-crop_border]
        image_b = image_b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        if image_a.shape[2] != 3:
            raise ValueError(f"y_channel=True needs 3-channel RGB images, got {image_a.shape[2]} channel(s)")
        return rgb_to_y(image_a)[..., None], rgb_to_y(image_b)[..., None]
    return image_a.astype(np.float64), image_b.astype(np.float64)


def psnr(image_a: np.ndarray, image_b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(255^2 / MSE)``; ``inf`` for identical images.

    Args:
        image_a, image_b: ``(H, W, C)`` (or ``(H, W)``) RGB images, uint8 or float in [0, 255].
        crop_border: pixels removed from each of the four sides before measuring.
        y_channel: measure on the BT.601 Y channel (``rgb_to_y``) instead of all RGB values.
    """
    a, b = _prepare_pair(image_a, image_b, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _gaussian_window_1d(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian (OpenCV's getGaussianKernel); the 2-D SSIM window is its outer product."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    window = np.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(channel: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Filter an (H, W) array with the separable window, keeping only fully covered positions.

    Returns (H - k + 1, W - k + 1). The window is symmetric, so correlation equals convolution.
    """
    size = window.shape[0]
    # sliding_window_view adds a trailing axis of length k: (H-k+1, W, k) @ (k,) -> (H-k+1, W).
    vertical = np.lib.stride_tricks.sliding_window_view(channel, size, axis=0) @ window
    return np.lib.stride_tricks.sliding_window_view(vertical, size, axis=1) @ window


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two (H, W) float64 channels in [0, 255] (Wang et al. 2004, eq. 13)."""
    window = _gaussian_window_1d()
    mean_a = _filter_valid(a, window)
    mean_b = _filter_valid(b, window)
    variance_a = _filter_valid(a * a, window) - mean_a**2
    variance_b = _filter_valid(b * b, window) - mean_b**2
    covariance = _filter_valid(a * b, window) - mean_a * mean_b
    numerator = (2 * mean_a * mean_b + SSIM_C1) * (2 * covariance + SSIM_C2)
    denominator = (mean_a**2 + mean_b**2 + SSIM_C1) * (variance_a + variance_b + SSIM_C2)
    return float(np.mean(numerator / denominator))


def ssim(image_a: np.ndarray, image_b: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity (11x11 Gaussian window, sigma 1.5, valid region), averaged over channels.

    Same arguments as ``psnr``. After cropping, each side must be at least 11 pixels. 1.0 for identical
    images; symmetric in its two arguments.
    """
    a, b = _prepare_pair(image_a, image_b, crop_border, y_channel, minimum_size=SSIM_WINDOW_SIZE)
    return float(np.mean([_ssim_channel(a[..., channel], b[..., channel]) for channel in range(a.shape[2])]))


# ---------------------------------------------------------------------------------------------------
# Tensor helpers: the network's (N, C, H, W) outputs in [0, 1].


def tensor_to_uint8(image: torch.Tensor) -> np.ndarray:
    """Turn a ``(C, H, W)`` or ``(1, C, H, W)`` tensor in [0, 1] into an ``(H, W, C)`` uint8 RGB array.

    BasicSR's ``tensor2img`` without its RGB->BGR swap: to float32 on the CPU, clamp to [0, 1],
    multiply by 255, round half to even, cast. A one-channel image stays ``(H, W, 1)``.
    """
    if not torch.is_tensor(image):
        raise TypeError(f"tensor_to_uint8 takes a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"tensor_to_uint8 converts one image; got a batch of shape {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3:
        raise ValueError(f"tensor_to_uint8 expects (C, H, W) or (1, C, H, W), got shape {tuple(image.shape)}")
    return to_uint8(image)
