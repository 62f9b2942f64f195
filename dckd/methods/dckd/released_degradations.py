"""The negatives' degradations as the released DCKD code makes them: one draw per degraded copy.

The released code (super-SSS/DCKD, ``basicsr/models/dckd_model.py``) builds each degraded copy of the
student's input batch from the clean input, in this order, every step gated by its own probability,
drawn once per copy:

1. blur (probability ``blur``): one anisotropic Gaussian kernel for the whole batch, sizes
   ``k_h, k_w`` from {3, 5, 7, 9, 11}, ``sigma_h, sigma_w ~ U(0.1, 2)``, axis-aligned, separable,
   ``g(t) ∝ exp(-t^2 / (2 sigma^2))`` on ``t = -k//2 .. k//2``, normalised; reflect border;
2. resize (probability ``resize``): one scale for the whole batch, up with probability 0.25
   (``U(1, 1.5)``) else down (``U(0.5, 1)``), one mode from {area, bilinear, bicubic}; the size is
   ``(int(H * scale), int(W * scale))`` (truncation);
3. noise (probability ``noise``) at that (resized) size: per sample ``sigma ~ U(1, 30) / 255`` and
   gray with probability ``gray``; the gray samples of a copy share ONE standard-normal field (each
   scaled by its own sigma), the others get independent colour noise; clipped to [0, 1];
4. if it was resized: back to (H, W) with a second, independently drawn mode.

Nothing is clamped after a resize (a bicubic resize may leave values slightly outside [0, 1]); only the
noise step clips. So in a batch of N, the N samples of one copy share the blur kernel, the resize scale
and both modes, and which degradations the copy gets; only the noise level, the gray flag and the colour
noise differ per sample. ``dckd.methods.dckd.degradations`` is the per-sample variant
(``dckd.negative_sampling: per_sample``).

Randomness: an explicit ``torch.Generator`` (no ``random``, no ``numpy.random``). Per copy, in order:
three gates (U(0, 1)); blur sizes and sigmas (when blurred); up/down, scale and both modes (when
resized); noise levels, gray flags, the gray field and the colour field (when noised). Every draw is
made on the generator's device and moved to the image's device (see ``degradations``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dckd.methods.dckd.degradations import RESIZE_MODES, check_images, interpolate, uniform

KERNEL_SIZES: tuple[int, ...] = (3, 5, 7, 9, 11)
"""Blur kernel sizes per axis (the released ``random.randint(1, 5) * 2 + 1``)."""
BLUR_SIGMA_RANGE: tuple[float, float] = (0.1, 2.0)
UP_PROBABILITY = 0.25
UP_RANGE: tuple[float, float] = (1.0, 1.5)
DOWN_RANGE: tuple[float, float] = (0.5, 1.0)
NOISE_SIGMA_RANGE: tuple[float, float] = (1 / 255, 30 / 255)
APPLY_ORDER: tuple[str, ...] = ("blur", "resize", "noise")


@dataclass(frozen=True)
class CopyDraw:
    """What one degraded copy gets: the parameters shared by every sample of the batch."""

    blur: tuple[int, int, float, float] | None = None
    """(k_h, k_w, sigma_h, sigma_w), or None when the copy is not blurred."""
    resize: tuple[float, str, str] | None = None
    """(scale, mode down/up, mode back), or None when the copy is not resized."""
    noise: bool = False
    """Whether the copy gets Gaussian noise."""


def selected_kinds(kinds: Sequence[str] | str) -> set[str]:
    """{"blur", "resize", "noise"} named by ``kinds`` ("mix" = all three)."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    unknown = [kind for kind in kinds if kind not in (*APPLY_ORDER, "mix")]
    if unknown:
        raise ValueError(f"unknown degradation kind(s) {unknown}; choose from {(*APPLY_ORDER, 'mix')}")
    return set(APPLY_ORDER) if "mix" in kinds else set(kinds)


def draw_copy(
    generator: torch.Generator, kinds: Sequence[str] | str, probabilities: Mapping[str, float] | None = None
) -> CopyDraw:
    """The shared parameters of one degraded copy (see the module docstring for the order of draws).

    Args:
        kinds: the degradations that may be applied (``noise``, ``blur``, ``resize``; ``mix`` = all).
        probabilities: per kind, the probability that this copy gets it (absent = 1).
    """
    selected = selected_kinds(kinds)
    probabilities = dict(probabilities or {})
    gates = torch.rand(3, generator=generator, device=generator.device, dtype=torch.float64).tolist()
    applied = {kind: kind in selected and gate < probabilities.get(kind, 1.0) for kind, gate in zip(APPLY_ORDER, gates)}
    blur = resize = None
    if applied["blur"]:
        sizes = torch.randint(len(KERNEL_SIZES), (2,), generator=generator, device=generator.device).tolist()
        sigmas = uniform(generator, 2, *BLUR_SIGMA_RANGE).tolist()
        blur = (KERNEL_SIZES[sizes[0]], KERNEL_SIZES[sizes[1]], sigmas[0], sigmas[1])
    if applied["resize"]:
        up, up_scale, down_scale = uniform(generator, 3, 0.0, 1.0).tolist()
        scale = (
            UP_RANGE[0] + (UP_RANGE[1] - UP_RANGE[0]) * up_scale
            if up < UP_PROBABILITY
            else DOWN_RANGE[0] + (DOWN_RANGE[1] - DOWN_RANGE[0]) * down_scale
        )
        modes = torch.randint(len(RESIZE_MODES), (2,), generator=generator, device=generator.device).tolist()
        resize = (scale, RESIZE_MODES[modes[0]], RESIZE_MODES[modes[1]])
    return CopyDraw(blur=blur, resize=resize, noise=applied["noise"])


def gaussian_kernel_1d(size: int, sigma: float) -> torch.Tensor:
    """(size,) float64: ``exp(-t^2 / (2 sigma^2))`` on ``t = -(size//2) .. size//2``, normalised to sum 1."""
    if size % 2 == 0 or size < 1:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def blur_batch(x: torch.Tensor, size_h: int, size_w: int, sigma_h: float, sigma_w: float) -> torch.Tensor:
    """Every image and channel of ``x`` (N, C, H, W) filtered with the same separable Gaussian: (size_h,
    sigma_h) along H, (size_w, sigma_w) along W; reflect border ("replicate" where the image is smaller
    than half the kernel, which reflect cannot pad)."""
    batch, channels, height, width = x.shape
    kernel = torch.outer(gaussian_kernel_1d(size_h, sigma_h), gaussian_kernel_1d(size_w, sigma_w))
    pad_h, pad_w = size_h // 2, size_w // 2
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    planes = F.pad(x.reshape(batch * channels, 1, height, width), (pad_w, pad_w, pad_h, pad_h), mode=mode)
    weight = kernel.to(device=x.device, dtype=x.dtype).view(1, 1, size_h, size_w)
    return F.conv2d(planes, weight).reshape(batch, channels, height, width)


def resized_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(int(H * scale), int(W * scale))`` as the released code (truncation), at least 1 pixel."""
    return max(1, int(height * scale)), max(1, int(width * scale))


def add_noise_shared_gray(
    x: torch.Tensor,
    generator: torch.Generator,
    gray_probability: float,
    sigma_range: tuple[float, float] = NOISE_SIGMA_RANGE,
) -> torch.Tensor:
    """``clip(x + sigma_i * n_i, 0, 1)``: per sample ``sigma_i ~ U(sigma_range)``; with probability
    ``gray_probability`` sample i is gray and ``n_i`` is ONE (H, W) standard-normal field shared by every
    gray sample of ``x`` and by all channels; otherwise ``n_i`` is independent per channel."""
    check_images(x)
    batch, _, height, width = x.shape
    sigma = uniform(generator, batch, *sigma_range)
    gray = torch.rand(batch, generator=generator, device=generator.device) < gray_probability
    # Drawn in float32 whatever the image dtype, so every dtype gets the same draws.
    gray_field = torch.randn((height, width), generator=generator, device=generator.device, dtype=torch.float32)
    colour = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    noise = torch.where(
        gray.to(x.device).view(batch, 1, 1, 1),
        gray_field.to(device=x.device, dtype=x.dtype).expand(batch, 1, height, width),
        colour.to(device=x.device, dtype=x.dtype),
    )
    sigma = sigma.to(device=x.device, dtype=x.dtype).view(batch, 1, 1, 1)
    return (x + sigma * noise).clamp(0.0, 1.0)


def apply_copy(x: torch.Tensor, draw: CopyDraw, generator: torch.Generator, gray_probability: float) -> torch.Tensor:
    """One degraded copy of the batch ``x`` (N, C, H, W): blur -> resize -> noise at the resized size ->
    resize back, as ``draw`` says; the noise is drawn from ``generator`` here."""
    check_images(x)
    height, width = x.shape[-2:]
    out = x
    if draw.blur is not None:
        out = blur_batch(out, *draw.blur)
    if draw.resize is not None:
        out = interpolate(out, resized_size(height, width, draw.resize[0]), draw.resize[1])
    if draw.noise:
        out = add_noise_shared_gray(out, generator, gray_probability)
    if draw.resize is not None and draw.resize[0] != 1.0:
        out = interpolate(out, (height, width), draw.resize[2])
    return out if out is not x else x.clone()


def degrade_copies(
    x: torch.Tensor,
    generator: torch.Generator,
    num_copies: int,
    kinds: Sequence[str] | str,
    probabilities: Mapping[str, float] | None = None,
    gray_probability: float = 0.5,
) -> torch.Tensor:
    """``num_copies`` degraded copies of the batch ``x``, stacked copy-major: (num_copies * N, C, H, W),
    rows ``[k * N, (k + 1) * N)`` are copy k. Each copy draws its own shared parameters (``draw_copy``)."""
    check_images(x)
    copies = []
    for _ in range(num_copies):
        draw = draw_copy(generator, kinds, probabilities)
        copies.append(apply_copy(x, draw, generator, gray_probability))
    return torch.cat(copies) if copies else x.new_empty((0, *x.shape[1:]))
