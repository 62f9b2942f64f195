"""Per-sample degradations of DCKD's negatives (``dckd.negative_sampling: per_sample``), and their parts.

The history model restores degraded copies of the student's input; its outputs are the negatives of
the contrastive term. The degradations act in input (LQ) space, on images in [0, 1], NCHW.

The released code draws the blur kernel, the resize scale and modes, and whether a copy is degraded at
all ONCE PER COPY, shared by the whole batch, adds the noise at the resized size and resizes back without
clamping: that is ``dckd.methods.dckd.released_degradations`` (``negative_sampling: released``, the
default). This module is the per-sample variant: every parameter is drawn independently for every sample
(row) of the batch, so the N samples of a copy get N different kernels and scales.

- noise:  x + sigma * n, n ~ N(0, 1), sigma ~ U(1, 30) / 255; with probability ``gray_probability``
  (0.5) the noise is gray (one field for all channels, its own field per sample), otherwise independent
  per channel; clipped to [0, 1].
- blur:   anisotropic Gaussian k(u, v) ∝ exp(-u^2 / (2 sigma_x^2) - v^2 / (2 sigma_y^2)) on a
  k_y x k_x grid, k_x and k_y drawn independently from {3, 5, 7, 9, 11} ("per axis"),
  sigma_x, sigma_y ~ U(0.1, 2); normalised to sum 1; reflect padding.
- resize: up with probability 0.25 (scale ~ U(1, 1.5)) or down (scale ~ U(0.5, 1)) to
  ``round(H * scale)``, interpolation mode drawn from {area, bilinear, bicubic}, then back to the original
  size with an independently drawn mode; clamped to [0, 1].
- mix:    all three, in the order blur -> resize (round trip) -> noise at full size.
- ``degrade(..., probabilities=...)``: a kind with probability p < 1 is applied to each sample with
  probability p (drawn per sample).

Reading of the spec: the published description lists only kernel sizes and the two sigmas, so the
blur kernels are axis-aligned (no rotation). Real-ESRGAN also rotates its anisotropic kernels by an
angle ~ U(-pi, pi); ``rotation_range`` offers that, off by default.

Randomness: every function takes a ``torch.Generator``. All random numbers (parameters and noise
fields) are drawn on the generator's device and then moved to the image's device, so a CPU generator
gives the same degradations on CPU and GPU for the same seed (up to float arithmetic). A generator on
the image's device draws the large noise fields there instead: the result then depends on the
device, but on GPUs it is much faster for large inputs (measured on one H200, 4 noisy copies of a
32x3x256x256 batch: 141 ms with a CPU generator, 0.45 ms with a CUDA one; of a 16x3x48x48 SR batch:
1.9 ms and 0.15 ms). The draws do not depend on the image values, and each function draws a fixed
amount for a given input shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

DEGRADATION_KINDS: tuple[str, ...] = ("noise", "blur", "resize", "mix")
"""Names accepted by :func:`degrade`; "mix" means blur, resize and noise together."""

RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")
"""Interpolation modes of :func:`random_resize` (the published set)."""

# Real-ESRGAN's order of the first-order degradation model.
_APPLY_ORDER: tuple[str, ...] = ("blur", "resize", "noise")


def uniform(generator: torch.Generator, count: int, low: float, high: float) -> torch.Tensor:
    """``count`` draws from U(low, high), float64 on the generator's device."""
    draws = torch.rand(count, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * draws


def check_images(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point image tensor, got {x.dtype}")


def add_gaussian_noise(
    x: torch.Tensor,
    generator: torch.Generator,
    sigma_range: tuple[float, float] = (1 / 255, 30 / 255),
    gray_probability: float = 0.5,
) -> torch.Tensor:
    """Add Gaussian noise of a random level per sample; gray or colour per sample.

    ``y = clip(x + sigma_i * n, 0, 1)`` with ``sigma_i ~ U(sigma_range)`` per sample (default
    U(1, 30) / 255) and ``n ~ N(0, 1)``: the same field on every channel (gray noise) with
    probability ``gray_probability``, otherwise independent per channel.

    Args:
        x: images (N, C, H, W) in [0, 1].
        generator: source of all randomness.
        sigma_range: bounds of the noise standard deviation, in image units ([0, 1] scale).
        gray_probability: per-sample probability of gray noise.

    Returns:
        A new tensor of the shape, dtype and device of ``x``.
    """
    check_images(x)
    batch = x.shape[0]
    sigma = uniform(generator, batch, *sigma_range)
    gray = torch.rand(batch, generator=generator, device=generator.device) < gray_probability
    # One colour field for every sample; a gray sample reuses its first channel on all channels,
    # so the amount drawn does not depend on which samples are gray.
    # Drawn in float32 whatever the image dtype, so float32/float64/half images get the same draws.
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    noise = noise.to(device=x.device, dtype=x.dtype)
    gray = gray.to(x.device).view(batch, 1, 1, 1)
    noise = torch.where(gray, noise[:, :1].expand_as(noise), noise)
    sigma = sigma.to(device=x.device, dtype=x.dtype).view(batch, 1, 1, 1)
    return (x + sigma * noise).clamp(0.0, 1.0)


def gaussian_kernels(
    size_x: torch.Tensor,
    size_y: torch.Tensor,
    sigma_x: torch.Tensor,
    sigma_y: torch.Tensor,
    rotation: torch.Tensor | None = None,
    common_size: int | None = None,
) -> torch.Tensor:
    """Anisotropic Gaussian kernels, each zero-padded (centred) to one common odd size.

    ``k_i(u, v) ∝ exp(-u'^2 / (2 sigma_x^2) - v'^2 / (2 sigma_y^2))`` for
    ``|u| <= size_x // 2, |v| <= size_y // 2`` and 0 elsewhere, where u is the column offset, v the
    row offset from the centre and ``(u', v')`` is ``(u, v)`` rotated by ``-rotation`` (so the
    kernel's x axis points along ``rotation``); normalised to sum 1.

    Args:
        size_x, size_y: (N,) odd integer kernel widths and heights.
        sigma_x, sigma_y: (N,) standard deviations in pixels.
        rotation: (N,) angles in radians, or None for axis-aligned kernels.
        common_size: side of the returned kernels; default the largest of the sizes.

    Returns:
        (N, K, K) kernels, float64 on the device of ``sigma_x``.
    """
    if bool(((size_x % 2) == 0).any() or ((size_y % 2) == 0).any()):
        raise ValueError("Gaussian kernel sizes must be odd so that the kernel has a centre pixel")
    largest = int(torch.maximum(size_x, size_y).max())
    side = largest if common_size is None else common_size
    if side < largest or side % 2 == 0:
        raise ValueError(f"common_size must be odd and >= {largest}, got {side}")
    device = sigma_x.device
    offsets = torch.arange(side, device=device, dtype=torch.float64) - side // 2
    v = offsets.view(1, side, 1)  # row offsets, (1, K, 1)
    u = offsets.view(1, 1, side)  # column offsets, (1, 1, K)
    sigma_x = sigma_x.to(torch.float64).view(-1, 1, 1)
    sigma_y = sigma_y.to(torch.float64).view(-1, 1, 1)
    if rotation is None:
        along_x, along_y = u, v
    else:
        cosine = torch.cos(rotation.to(torch.float64)).view(-1, 1, 1)
        sine = torch.sin(rotation.to(torch.float64)).view(-1, 1, 1)
        along_x = cosine * u + sine * v
        along_y = -sine * u + cosine * v
    kernels = torch.exp(-0.5 * ((along_x / sigma_x) ** 2 + (along_y / sigma_y) ** 2))
    inside = (u.abs() <= (size_x.to(device).view(-1, 1, 1) // 2)) & (v.abs() <= (size_y.to(device).view(-1, 1, 1) // 2))
    kernels = kernels * inside
    return kernels / kernels.sum(dim=(1, 2), keepdim=True)


def filter_per_sample(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter sample i of ``x`` with ``kernels[i]`` on every channel, in one grouped convolution.

    Padding is "reflect" (Real-ESRGAN's ``filter2D``), or "replicate" where the image is too small
    to reflect by half the kernel size. The kernels must be point-symmetric or the caller must accept
    correlation (no flip), which is what ``conv2d`` computes.

    Args:
        x: (N, C, H, W) images.
        kernels: (N, K, K) with K odd.

    Returns:
        (N, C, H, W) filtered images, same dtype and device as ``x``.
    """
    batch, channels, height, width = x.shape
    side = kernels.shape[-1]
    pad = side // 2
    mode = "reflect" if pad < height and pad < width else "replicate"
    # (N, C, H, W) -> (1, N*C, H, W): each (sample, channel) plane is its own group.
    planes = x.reshape(1, batch * channels, height, width)
    planes = F.pad(planes, (pad, pad, pad, pad), mode=mode)
    weight = kernels.to(device=x.device, dtype=x.dtype).repeat_interleave(channels, dim=0)
    weight = weight.unsqueeze(1)  # (N*C, 1, K, K)
    filtered = F.conv2d(planes, weight, groups=batch * channels)
    return filtered.reshape(batch, channels, height, width)


def random_gaussian_blur(
    x: torch.Tensor,
    generator: torch.Generator,
    kernel_sizes: Sequence[int] = (3, 5, 7, 9, 11),
    sigma_range: tuple[float, float] = (0.1, 2.0),
    rotation_range: tuple[float, float] = (0.0, 0.0),
) -> torch.Tensor:
    """Blur each sample with its own random anisotropic Gaussian kernel.

    Per sample: ``k_x, k_y`` drawn independently and uniformly from ``kernel_sizes`` (default
    {3, 5, 7, 9, 11}), ``sigma_x, sigma_y ~ U(sigma_range)`` (default U(0.1, 2)), rotation
    ``~ U(rotation_range)`` radians (default 0: axis-aligned; Real-ESRGAN uses (-pi, pi)). The kernel
    is :func:`gaussian_kernels`; all kernels are zero-padded to the largest drawn size and applied in
    one grouped convolution with reflect padding.

    Args:
        x: images (N, C, H, W) in [0, 1].
        generator: source of all randomness.

    Returns:
        A new tensor of the shape, dtype and device of ``x``.
    """
    check_images(x)
    batch = x.shape[0]
    sizes = torch.as_tensor(list(kernel_sizes), dtype=torch.int64)
    size_x = sizes[torch.randint(len(sizes), (batch,), generator=generator, device=generator.device).cpu()]
    size_y = sizes[torch.randint(len(sizes), (batch,), generator=generator, device=generator.device).cpu()]
    sigma_x = uniform(generator, batch, *sigma_range)
    sigma_y = uniform(generator, batch, *sigma_range)
    rotation = uniform(generator, batch, *rotation_range)
    if batch == 0:
        return x.clone()
    kernels = gaussian_kernels(
        size_x.to(x.device),
        size_y.to(x.device),
        sigma_x.to(x.device),
        sigma_y.to(x.device),
        rotation.to(x.device) if rotation_range != (0.0, 0.0) else None,
    )
    return filter_per_sample(x, kernels)


def interpolate(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    # align_corners only exists for the linear modes; False is what Real-ESRGAN uses.
    if mode == "area":
        return F.interpolate(image, size=size, mode=mode)
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


def random_resize(
    x: torch.Tensor,
    generator: torch.Generator,
    up_probability: float = 0.25,
    up_range: tuple[float, float] = (1.0, 1.5),
    down_range: tuple[float, float] = (0.5, 1.0),
    modes: Sequence[str] = RESIZE_MODES,
) -> torch.Tensor:
    """Resize each sample by a random scale and back to its size, with random interpolation modes.

    Per sample: ``scale ~ U(up_range)`` with probability ``up_probability`` (default 0.25,
    U(1, 1.5)), else ``scale ~ U(down_range)`` (default U(0.5, 1)); resized to
    ``(max(1, round(H * scale)), max(1, round(W * scale)))`` with a mode drawn uniformly from
    ``modes``, then back to (H, W) with an independently drawn mode; clamped to [0, 1] (bicubic
    overshoots).

    The intermediate size differs per sample, so this loops over the batch (N small resizes).

    Args:
        x: images (N, C, H, W) in [0, 1].
        generator: source of all randomness.

    Returns:
        A new tensor of the shape, dtype and device of ``x``.
    """
    check_images(x)
    unknown = [mode for mode in modes if mode not in RESIZE_MODES]
    if unknown or not modes:
        raise ValueError(f"resize modes must be a non-empty subset of {RESIZE_MODES}, got {tuple(modes)}")
    batch, _, height, width = x.shape
    # Draw every parameter for every sample, used or not, so the amount drawn is fixed.
    go_up = (torch.rand(batch, generator=generator, device=generator.device) < up_probability).cpu()
    up_scale = uniform(generator, batch, *up_range).cpu()
    down_scale = uniform(generator, batch, *down_range).cpu()
    first_mode = torch.randint(len(modes), (batch,), generator=generator, device=generator.device).cpu()
    back_mode = torch.randint(len(modes), (batch,), generator=generator, device=generator.device).cpu()
    scale = torch.where(go_up, up_scale, down_scale).tolist()
    resized = []
    for index in range(batch):
        size = (max(1, round(height * scale[index])), max(1, round(width * scale[index])))
        image = interpolate(x[index : index + 1], size, modes[int(first_mode[index])])
        resized.append(interpolate(image, (height, width), modes[int(back_mode[index])]))
    if batch == 0:
        return x.clone()
    return torch.cat(resized).clamp(0.0, 1.0)


def degrade(
    x: torch.Tensor,
    generator: torch.Generator,
    kinds: Sequence[str] | str,
    probabilities: Mapping[str, float] | None = None,
    gray_probability: float = 0.5,
) -> torch.Tensor:
    """Apply the selected degradations per sample, in the order blur -> resize -> noise.

    Args:
        x: images (N, C, H, W) in [0, 1].
        generator: source of all randomness.
        kinds: names from :data:`DEGRADATION_KINDS` (a single name is accepted); "mix" means all
            three. Each kind is applied once even if named twice or implied by "mix".
        probabilities: per kind (blur, resize, noise), the probability that a sample gets it (absent: 1).
            For p < 1 one gate per sample is drawn before the kind's parameters; p = 1 draws no gate.
        gray_probability: per-sample probability that the noise is gray.

    Returns:
        A new tensor of the shape, dtype and device of ``x``, in [0, 1].
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    unknown = [kind for kind in kinds if kind not in DEGRADATION_KINDS]
    if unknown:
        raise ValueError(f"unknown degradation kind(s) {unknown}; choose from {DEGRADATION_KINDS}")
    if not kinds:
        raise ValueError(f"no degradation kind given; choose from {DEGRADATION_KINDS}")
    selected = set(_APPLY_ORDER) if "mix" in kinds else set(kinds)
    probabilities = dict(probabilities or {})
    functions = {
        "blur": random_gaussian_blur,
        "resize": random_resize,
        "noise": lambda images, generator: add_gaussian_noise(images, generator, gray_probability=gray_probability),
    }
    degraded = x
    for kind in _APPLY_ORDER:
        if kind not in selected:
            continue
        probability = probabilities.get(kind, 1.0)
        if probability >= 1.0:
            degraded = functions[kind](degraded, generator)
            continue
        gate = torch.rand(x.shape[0], generator=generator, device=generator.device) < probability
        changed = functions[kind](degraded, generator)
        degraded = torch.where(gate.to(x.device).view(-1, 1, 1, 1), changed, degraded)
    return degraded
