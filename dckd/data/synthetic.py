"""Synthetic blur and rain: paired training data from clean images alone.

A stand-in for GoPro (motion deblurring) and Rain13K (deraining) when those folders are not
available, e.g. for smoke runs and tests. The distributions are plausible, not the real ones: GoPro's
blur comes from averaging high-speed video frames (non-uniform, with moving objects), and Rain13K
mixes several synthetic rain generators. Numbers obtained on these pairs are not comparable with the
paper's.

- Blur: ``blurred = clip(k * clean + sigma * n, 0, 1)`` with ``k`` a random camera-shake trajectory
  kernel (:func:`random_motion_kernel`) or an isotropic Gaussian (:func:`gaussian_blur_kernel`), ``*``
  a 2-D convolution with reflect padding, ``n ~ N(0, 1)``, ``sigma ~ U(noise_sigma_range)``.
- Rain: one to three streak layers ``R_j`` (:func:`rain_layer`: random drop seeds smeared along a
  direction), composited with the screen blend ``rainy = 1 - (1 - clean) * prod_j (1 - R_j)``.
  The screen blend only brightens, stays in [0, 1] without clipping, and leaves white pixels white;
  additive compositing with clipping (Rain100L/H's ``clean + rain``) would saturate bright regions.

All randomness comes from an explicit ``torch.Generator`` (drawn on its device, then moved to the
image's device); the functions are deterministic under a seed. Images are float tensors (C, H, W) in
[0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TASKS: tuple[str, ...] = ("deblur", "derain")
"""Tasks accepted by :func:`synthesize`."""

BLUR_KINDS: tuple[str, ...] = ("motion", "gaussian", "mixed")
"""Kernel families accepted by :func:`synthesize_blur`."""


@dataclass(frozen=True)
class BlurSettings:
    """Parameter distributions of :func:`synthesize_blur` (every draw independent and uniform)."""

    kernel_size: int = 31
    """Side of the blur kernels in pixels (odd). Motion trajectories are shrunk to fit inside."""
    motion_length_range: tuple[float, float] = (4.0, 24.0)
    """Path length of the camera trajectory in pixels (the extent of the blur)."""
    motion_anxiety_range: tuple[float, float] = (0.0, 0.01)
    """Boracchi-Foi "anxiety": 0 gives straight lines, larger values shakier, curled paths (with
    2000 steps, as in their code; DeblurGAN picks from 0.003-0.01)."""
    motion_steps: int = 2000
    """Number of segments of the simulated trajectory (the anxiety's effect depends on it)."""
    gaussian_sigma_range: tuple[float, float] = (0.5, 3.0)
    """Standard deviation of the Gaussian (defocus-like) kernels, in pixels."""
    motion_probability: float = 0.5
    """For kind "mixed": probability of a motion kernel rather than a Gaussian one."""
    noise_sigma_range: tuple[float, float] = (0.0, 2 / 255)
    """Standard deviation of the Gaussian noise added after blurring, in [0, 1] image units."""

    def __post_init__(self) -> None:
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if not 0.0 <= self.motion_probability <= 1.0:
            raise ValueError(f"motion_probability must lie in [0, 1], got {self.motion_probability}")


@dataclass(frozen=True)
class RainSettings:
    """Parameter distributions of :func:`synthesize_rain` (every draw independent and uniform)."""

    layer_count_range: tuple[int, int] = (1, 3)
    """Number of streak layers, both bounds included."""
    density_range: tuple[float, float] = (0.002, 0.012)
    """Probability that a pixel seeds a drop, per layer."""
    angle_range_degrees: tuple[float, float] = (-30.0, 30.0)
    """Common direction of the layers, in degrees from vertical (positive leans right at the bottom)."""
    angle_spread_degrees: float = 8.0
    """Each layer deviates from the common direction by U(-spread, spread) degrees."""
    length_range: tuple[float, float] = (8.0, 32.0)
    """Streak length in pixels."""
    intensity_range: tuple[float, float] = (0.3, 0.8)
    """Peak brightness of a streak from a full-brightness drop."""
    thickness_range: tuple[float, float] = (1.0, 2.0)
    """Streak width in pixels (twice the standard deviation of the cross profile)."""

    def __post_init__(self) -> None:
        low, high = self.layer_count_range
        if not 1 <= low <= high:
            raise ValueError(f"layer_count_range must satisfy 1 <= low <= high, got {self.layer_count_range}")


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One draw from U(low, high)."""
    draw = torch.rand((), generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * float(draw)


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 3 or not image.is_floating_point():
        raise ValueError(f"expected a float image of shape (C, H, W), got {image.dtype} {tuple(image.shape)}")


def gaussian_blur_kernel(
    size: int, sigma: float, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Isotropic Gaussian kernel ``k(u, v) ∝ exp(-(u^2 + v^2) / (2 sigma^2))``, size x size, sum 1.

    ``u, v`` are integer offsets from the centre; ``size`` must be odd.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    offsets = torch.arange(size, dtype=torch.float64, device=device) - size // 2
    profile = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = profile[:, None] * profile[None, :]  # separable: outer product of two 1-D profiles
    return (kernel / kernel.sum()).to(dtype)


def _trajectory(generator: torch.Generator, length: float, anxiety: float, steps: int) -> torch.Tensor:
    """Boracchi-Foi camera trajectory: (steps + 1, 2) points (x right, y down) of path length ``length``.

    A point moving at constant speed; at each step its velocity gets a Gaussian kick scaled by the
    anxiety, a pull back towards the start (centripetal term) and, rarely, an abrupt turn
    (G. Boracchi, A. Foi, "Modeling the performance of image restoration from motion blur", IEEE TIP
    2012; the parameter distributions of their code: centripetal ~ 0.7 U, big-shake probability
    ~ 0.2 U, Gaussian shake ~ 10 U).
    """
    draws = torch.rand(4 + 2 * steps, generator=generator, device=generator.device, dtype=torch.float64)
    kicks = torch.randn(2 * steps, generator=generator, device=generator.device, dtype=torch.float64)
    draws, kicks = draws.tolist(), kicks.tolist()
    centripetal, big_shake_probability, gaussian_shake = 0.7 * draws[0], 0.2 * draws[1], 10.0 * draws[2]
    step = length / steps
    velocity = step * complex(math.cos(2 * math.pi * draws[3]), math.sin(2 * math.pi * draws[3]))
    points = [0j]
    # A sequential recurrence on Python complex numbers: ~1 ms per 1000 steps, far cheaper than
    # the same loop on 0-d tensors.
    for index in range(steps):
        turn = 0j
        if draws[4 + 2 * index] < big_shake_probability * anxiety:
            angle = math.pi + (draws[5 + 2 * index] - 0.5)
            turn = 2 * velocity * complex(math.cos(angle), math.sin(angle))
        kick = complex(kicks[2 * index], kicks[2 * index + 1])
        velocity += turn + anxiety * (gaussian_shake * kick - centripetal * points[-1]) * step
        speed = abs(velocity)
        velocity = velocity / speed * step if speed > 0 else step + 0j
        points.append(points[-1] + velocity)
    return torch.tensor([[point.real, point.imag] for point in points], dtype=torch.float64)


def random_motion_kernel(
    size: int,
    generator: torch.Generator,
    length: float | None = None,
    anxiety: float | None = None,
    steps: int = 2000,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A random camera-shake blur kernel: a Boracchi-Foi trajectory rasterised with sub-pixel accuracy.

    The trajectory (``steps`` segments, path length ``length``) is sampled every <= 0.25 px; each
    sample spreads an equal weight over its four neighbouring pixels (bilinear splatting), so the
    kernel is the time the camera spent over each pixel. It is centred on its centre of mass (the
    blurred image is not shifted against the sharp one) and shrunk, if needed, to keep one pixel of
    margin inside the ``size`` x ``size`` grid (so ``length`` is effectively capped near ``size``).

    Args:
        size: odd kernel side in pixels.
        generator: source of all randomness.
        length: path length in pixels; None draws U(0.2, 0.8) * size.
        anxiety: shakiness >= 0 (0: a straight line at a random angle); None draws U(0, 0.01).
        steps: segments of the trajectory; the Boracchi-Foi code uses 2000 (the anxiety's effect
            is calibrated to it: per step, the direction turns by about anxiety * 10 * N(0, 1) rad).
        dtype: dtype of the returned kernel.

    Returns:
        (size, size) kernel, non-negative, summing to 1, on the CPU.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"motion kernel size must be odd and >= 3, got {size}")
    if length is None:
        length = _uniform(generator, 0.2 * size, 0.8 * size)
    if anxiety is None:
        anxiety = _uniform(generator, 0.0, 0.01)
    if length < 0 or anxiety < 0 or steps < 1:
        raise ValueError(f"need length >= 0, anxiety >= 0, steps >= 1; got {length}, {anxiety}, {steps}")
    vertices = _trajectory(generator, float(length), float(anxiety), steps)
    # Densify: equal time per sample, <= 0.25 px apart, so the rasterised path has no gaps.
    per_segment = max(1, math.ceil(4 * length / steps))
    fractions = torch.arange(per_segment, dtype=torch.float64) / per_segment
    starts, deltas = vertices[:-1, None, :], (vertices[1:] - vertices[:-1])[:, None, :]
    samples = torch.cat([(starts + fractions[None, :, None] * deltas).reshape(-1, 2), vertices[-1:]])
    samples = samples - samples.mean(dim=0)
    half = size // 2
    reach = float(samples.abs().max())
    if reach > half - 1:
        samples = samples * ((half - 1) / reach)
    positions = samples + half  # (M, 2) as (column, row)
    corner = positions.floor()
    fraction = positions - corner
    corner = corner.long()
    kernel = torch.zeros(size, size, dtype=torch.float64)
    for row_offset in (0, 1):
        for column_offset in (0, 1):
            weight_x = fraction[:, 0] if column_offset else 1 - fraction[:, 0]
            weight_y = fraction[:, 1] if row_offset else 1 - fraction[:, 1]
            kernel.index_put_(
                (corner[:, 1] + row_offset, corner[:, 0] + column_offset),
                weight_x * weight_y,
                accumulate=True,
            )
    return (kernel / kernel.sum()).to(dtype)


def motion_blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve every channel with one blur kernel (motion or Gaussian): ``(k * x)(p) = sum_q k(q) x(p - q)``.

    A true convolution (the kernel is flipped before ``conv2d``'s correlation), with reflect padding,
    or replicate padding where the image is smaller than half the kernel.

    Args:
        image: (C, H, W) or (N, C, H, W).
        kernel: (K, K) with K odd.

    Returns:
        Tensor of the shape, dtype and device of ``image``.
    """
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"expected an odd square kernel, got shape {tuple(kernel.shape)}")
    height, width = image.shape[-2:]
    pad = kernel.shape[0] // 2
    mode = "reflect" if pad < height and pad < width else "replicate"
    planes = image.reshape(-1, 1, height, width)  # every channel of every image is one plane
    planes = F.pad(planes, (pad, pad, pad, pad), mode=mode)
    weight = kernel.flip(0, 1).to(device=image.device, dtype=image.dtype)[None, None]
    return F.conv2d(planes, weight).reshape(image.shape)


def synthesize_blur(
    clean: torch.Tensor,
    generator: torch.Generator,
    kind: str = "motion",
    settings: BlurSettings | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A blurred, slightly noisy copy of a clean image: ``clip(k * clean + sigma * n, 0, 1)``.

    ``kind`` "motion": ``k`` = :func:`random_motion_kernel` with length ~ U(motion_length_range),
    anxiety ~ U(motion_anxiety_range); "gaussian": ``k`` = :func:`gaussian_blur_kernel` with
    sigma ~ U(gaussian_sigma_range); "mixed": motion with probability ``motion_probability``, else
    Gaussian. Then ``sigma ~ U(noise_sigma_range)``, ``n ~ N(0, 1)`` per pixel and channel.

    Returns:
        ``(blurred, clean)``, both (C, H, W); ``clean`` is the input itself.
    """
    _check_image(clean)
    if kind not in BLUR_KINDS:
        raise ValueError(f"unknown blur kind {kind!r}; choose from {BLUR_KINDS}")
    settings = settings or BlurSettings()
    use_motion = kind == "motion"
    if kind == "mixed":
        use_motion = _uniform(generator, 0.0, 1.0) < settings.motion_probability
    if use_motion:
        kernel = random_motion_kernel(
            settings.kernel_size,
            generator,
            length=_uniform(generator, *settings.motion_length_range),
            anxiety=_uniform(generator, *settings.motion_anxiety_range),
            steps=settings.motion_steps,
        )
    else:
        sigma = _uniform(generator, *settings.gaussian_sigma_range)
        kernel = gaussian_blur_kernel(settings.kernel_size, sigma)
    blurred = motion_blur(clean, kernel)
    noise_sigma = _uniform(generator, *settings.noise_sigma_range)
    noise = torch.randn(clean.shape, generator=generator, device=generator.device, dtype=torch.float32)
    blurred = blurred + noise_sigma * noise.to(device=clean.device, dtype=clean.dtype)
    return blurred.clamp(0.0, 1.0), clean


def streak_kernel(length: float, angle_degrees: float, thickness: float) -> torch.Tensor:
    """Antialiased line segment: the footprint that one rain drop leaves, peak value 1.

    ``s(u, v) = exp(-c^2 / (2 (thickness / 2)^2)) * clip(length / 2 + 1/2 - |a|, 0, 1)`` with
    ``a = u sin(theta) + v cos(theta)`` the offset along the streak, ``c = u cos(theta) - v sin(theta)``
    across it, ``u`` the column and ``v`` the row offset (rows point down), ``theta`` the angle from
    vertical. Not normalised: a drop of brightness b leaves a streak of peak brightness about b.

    Returns:
        (K, K) float32 kernel on the CPU, K odd and large enough for the whole streak.
    """
    half = math.ceil(length / 2 + thickness) + 1
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    v, u = offsets[:, None], offsets[None, :]
    theta = math.radians(angle_degrees)
    along = u * math.sin(theta) + v * math.cos(theta)
    across = u * math.cos(theta) - v * math.sin(theta)
    sigma = max(thickness, 1e-3) / 2
    profile = torch.exp(-0.5 * (across / sigma) ** 2)
    ends = (length / 2 + 0.5 - along.abs()).clamp(0.0, 1.0)  # soft ends: antialiased length
    return (profile * ends).float()


def rain_layer(
    height: int,
    width: int,
    generator: torch.Generator,
    density: float,
    angle_degrees: float,
    length: float,
    intensity: float,
    thickness: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """One layer of rain streaks: ``R = clip(intensity * (seeds ⋆ streak), 0, 1)``.

    Seeds: every pixel holds a drop with probability ``density``, of brightness ~ U(0.5, 1). They
    are smeared along ``angle_degrees`` (from vertical) by :func:`streak_kernel` of the given length
    and thickness. Seeds are drawn on a canvas larger by the kernel's reach, so streaks enter from
    outside the image and the layer has no border effects.

    Returns:
        (1, height, width) tensor in [0, 1] (gray rain: broadcast it over the colour channels).
    """
    kernel = streak_kernel(length, angle_degrees, thickness)
    reach = kernel.shape[0] // 2
    shape = (height + 2 * reach, width + 2 * reach)
    present = torch.rand(shape, generator=generator, device=generator.device) < density
    brightness = 0.5 + 0.5 * torch.rand(shape, generator=generator, device=generator.device)
    seeds = (present * brightness).to(device=device, dtype=dtype)[None, None]
    # Kernel is point-symmetric, so conv2d's correlation equals the convolution; "valid" region.
    streaks = F.conv2d(seeds, kernel.to(device=device, dtype=dtype)[None, None])
    return (intensity * streaks[0]).clamp(0.0, 1.0)


def synthesize_rain(
    clean: torch.Tensor, generator: torch.Generator, settings: RainSettings | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rainy copy of a clean image: ``rainy = 1 - (1 - clean) * prod_j (1 - R_j)`` (screen blend).

    Layer count ~ U{layer_count_range}; a common angle ~ U(angle_range_degrees); per layer j:
    angle = common + U(-angle_spread_degrees, angle_spread_degrees), density, length, intensity and
    thickness each ~ U(their range); ``R_j`` = :func:`rain_layer`.

    Returns:
        ``(rainy, clean)``, both (C, H, W) in [0, 1]; ``clean`` is the input itself.
    """
    _check_image(clean)
    settings = settings or RainSettings()
    low, high = settings.layer_count_range
    count = int(torch.randint(low, high + 1, (), generator=generator, device=generator.device))
    common_angle = _uniform(generator, *settings.angle_range_degrees)
    height, width = clean.shape[-2:]
    transmitted = torch.ones(1, height, width, device=clean.device, dtype=clean.dtype)
    for _ in range(count):
        spread = settings.angle_spread_degrees
        layer = rain_layer(
            height,
            width,
            generator,
            density=_uniform(generator, *settings.density_range),
            angle_degrees=common_angle + _uniform(generator, -spread, spread),
            length=_uniform(generator, *settings.length_range),
            intensity=_uniform(generator, *settings.intensity_range),
            thickness=_uniform(generator, *settings.thickness_range),
            device=clean.device,
            dtype=clean.dtype,
        )
        transmitted = transmitted * (1 - layer)
    rainy = 1 - (1 - clean) * transmitted
    return rainy.clamp(0.0, 1.0), clean


def synthesize(clean: torch.Tensor, task: str, generator: torch.Generator) -> torch.Tensor:
    """The degraded input for ``task`` with the default settings: the single entry point per task.

    "deblur": :func:`synthesize_blur` with motion kernels (GoPro's blur is camera shake);
    "derain": :func:`synthesize_rain`.

    Args:
        clean: (C, H, W) image in [0, 1].
        task: one of :data:`TASKS`.
        generator: source of all randomness.

    Returns:
        The degraded (C, H, W) image in [0, 1].
    """
    if task == "deblur":
        return synthesize_blur(clean, generator, kind="motion")[0]
    if task == "derain":
        return synthesize_rain(clean, generator)[0]
    raise ValueError(f"unknown synthetic task {task!r}; choose from {TASKS}")
