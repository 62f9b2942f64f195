"""Tests of the synthetic blur and rain pairs (dckd/data/synthetic.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dckd.data import synthetic
from dckd.data.synthetic import (
    BlurSettings,
    RainSettings,
    gaussian_blur_kernel,
    motion_blur,
    rain_layer,
    random_motion_kernel,
    streak_kernel,
    synthesize,
    synthesize_blur,
    synthesize_rain,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clean_image(height: int = 48, width: int = 40, seed: int = 1) -> torch.Tensor:
    # A smooth image in (0.1, 0.9) plus texture, so blur and rain both change it visibly.
    rows = torch.linspace(0, 1, height)[:, None]
    columns = torch.linspace(0, 1, width)[None, :]
    base = 0.5 + 0.3 * torch.sin(6 * rows + 4 * columns)
    texture = 0.1 * torch.rand(3, height, width, generator=seeded(seed))
    return (base + texture).clamp(0, 1)


def spread(kernel: torch.Tensor) -> float:
    """Root mean square distance of the kernel's mass from its centre of mass, in pixels."""
    size = kernel.shape[0]
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mass = kernel.double() / kernel.sum()
    row_mean, column_mean = (mass * rows).sum(), (mass * columns).sum()
    return float(((mass * ((rows - row_mean) ** 2 + (columns - column_mean) ** 2)).sum()).sqrt())


def streak_direction_degrees(layer: torch.Tensor) -> tuple[float, float]:
    """Direction of least intensity change (from vertical, in [-90, 90)) and its anisotropy.

    From the structure tensor J = mean(g g^T) of Scharr gradients g (nearly rotation invariant;
    plain central differences bias directions towards the diagonals by ~5 degrees). The anisotropy
    is the ratio of J's eigenvalues: gradient energy across the streaks over energy along them.
    """
    image = layer.double()[None]  # (1, 1, H, W)
    scharr_x = torch.tensor([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]], dtype=torch.float64)
    scharr_x = scharr_x / 32
    gradient_x = F.conv2d(image, scharr_x[None, None])[0, 0]
    gradient_y = F.conv2d(image, scharr_x.T[None, None])[0, 0]
    tensor = torch.tensor(
        [
            [(gradient_x * gradient_x).mean(), (gradient_x * gradient_y).mean()],
            [(gradient_x * gradient_y).mean(), (gradient_y * gradient_y).mean()],
        ]
    )
    values, vectors = torch.linalg.eigh(tensor)  # ascending eigenvalues
    along_x, along_y = vectors[:, 0].tolist()
    degrees = math.degrees(math.atan2(along_x, along_y))
    return (degrees + 90) % 180 - 90, float(values[1] / values[0])


def angle_difference(first: float, second: float) -> float:
    """Difference of two line directions (modulo 180 degrees), in [0, 90]."""
    difference = (first - second) % 180
    return min(difference, 180 - difference)


@pytest.mark.parametrize("task", synthetic.TASKS)
def test_synthesize_is_deterministic_and_seed_dependent(task: str) -> None:
    clean = clean_image()
    first = synthesize(clean, task, seeded(3))
    assert torch.equal(first, synthesize(clean, task, seeded(3)))
    assert not torch.equal(first, synthesize(clean, task, seeded(4)))
    assert not torch.equal(first, clean)


@pytest.mark.parametrize(
    "make",
    [
        lambda clean, generator: synthesize_blur(clean, generator, kind="motion"),
        lambda clean, generator: synthesize_blur(clean, generator, kind="gaussian"),
        lambda clean, generator: synthesize_blur(clean, generator, kind="mixed"),
        lambda clean, generator: synthesize_rain(clean, generator),
    ],
    ids=["motion", "gaussian", "mixed", "rain"],
)
@pytest.mark.parametrize("shape", [(3, 48, 40), (1, 9, 33), (3, 7, 7)])
def test_pairs_keep_shape_range_and_the_clean_image(make, shape: tuple[int, int, int]) -> None:
    clean = torch.rand(*shape, generator=seeded(0))
    clean[:, 0] = 0.0  # extremes, where blur noise must be clipped
    clean[:, -1] = 1.0
    original = clean.clone()
    degraded, returned_clean = make(clean, seeded(5))
    assert returned_clean is clean and torch.equal(clean, original)
    assert degraded.shape == clean.shape and degraded.dtype == clean.dtype
    assert float(degraded.min()) >= 0.0 and float(degraded.max()) <= 1.0
    assert not torch.equal(degraded, clean)


def test_float64_images() -> None:
    clean = clean_image().double()
    for task in synthetic.TASKS:
        degraded = synthesize(clean, task, seeded(0))
        assert degraded.dtype == torch.float64
        assert torch.allclose(degraded.float(), synthesize(clean.float(), task, seeded(0)), atol=1e-5)


@pytest.mark.parametrize("anxiety", [0.0, 0.005, 0.01])
@pytest.mark.parametrize("length", [1.0, 6.0, 15.0, 40.0])
def test_motion_kernel_is_a_centred_distribution(length: float, anxiety: float) -> None:
    kernel = random_motion_kernel(31, seeded(int(length)), length=length, anxiety=anxiety)
    assert kernel.shape == (31, 31) and kernel.dtype == torch.float32
    assert float(kernel.min()) >= 0.0
    assert abs(float(kernel.sum()) - 1.0) < 1e-6
    # Centre of mass at the centre pixel: the blurred image is not shifted against the sharp one.
    rows, columns = torch.meshgrid(torch.arange(31.0), torch.arange(31.0), indexing="ij")
    assert abs(float((kernel * rows).sum()) - 15) < 1e-3
    assert abs(float((kernel * columns).sum()) - 15) < 1e-3
    # One pixel of margin on every side, even for a path longer than the kernel.
    assert float(kernel[0].sum() + kernel[-1].sum() + kernel[:, 0].sum() + kernel[:, -1].sum()) == 0.0


def test_straight_motion_kernel_has_the_requested_length() -> None:
    for length in (4.0, 10.0, 20.0):
        kernel = random_motion_kernel(31, seeded(0), length=length, anxiety=0.0)
        # A uniform segment of length L has an RMS spread of L / sqrt(12) (bilinear splatting adds
        # at most ~0.3 px in quadrature).
        assert abs(spread(kernel) - length / math.sqrt(12)) < 0.2


def test_motion_kernel_support_grows_with_length() -> None:
    lengths = (3.0, 8.0, 16.0, 26.0)
    spreads, supports = [], []
    for length in lengths:
        kernels = [random_motion_kernel(31, seeded(seed), length=length, anxiety=0.005) for seed in range(8)]
        spreads.append(sum(spread(kernel) for kernel in kernels) / len(kernels))
        supports.append(sum(int((kernel > 0).sum()) for kernel in kernels) / len(kernels))
    assert spreads == sorted(spreads) and spreads[-1] > 3 * spreads[0]
    assert supports == sorted(supports) and supports[-1] > 3 * supports[0]


def test_motion_kernels_differ_between_seeds_and_anxiety_curls_them() -> None:
    first = random_motion_kernel(31, seeded(0))
    assert torch.equal(first, random_motion_kernel(31, seeded(0)))
    assert not torch.equal(first, random_motion_kernel(31, seeded(1)))
    straight = [spread(random_motion_kernel(31, seeded(seed), length=20.0, anxiety=0.0)) for seed in range(6)]
    shaky = [spread(random_motion_kernel(31, seeded(seed), length=20.0, anxiety=0.01)) for seed in range(6)]
    # The same path length folded into a curve covers less distance than a straight line.
    assert sum(shaky) < sum(straight)


def test_gaussian_kernel_matches_its_formula() -> None:
    kernel = gaussian_blur_kernel(7, 1.5)
    offsets = torch.arange(7.0) - 3
    expected = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    assert torch.allclose(kernel, expected / expected.sum(), atol=1e-7)
    assert torch.equal(kernel, kernel.T) and float(kernel.min()) > 0
    with pytest.raises(ValueError):
        gaussian_blur_kernel(6, 1.0)


def test_motion_blur_is_a_convolution() -> None:
    kernel = random_motion_kernel(9, seeded(2), length=6.0, anxiety=0.01)
    # An impulse comes out as the kernel itself, in its own orientation (not flipped).
    impulse = torch.zeros(2, 21, 21)
    impulse[:, 10, 10] = 1.0
    blurred = motion_blur(impulse, kernel)
    assert torch.allclose(blurred[0, 6:15, 6:15], kernel, atol=1e-7)
    assert torch.allclose(blurred.sum(dim=(1, 2)), torch.ones(2), atol=1e-6)
    # Linear, brightness preserving: a constant image stays constant, also batched.
    constant = torch.full((2, 3, 12, 12), 0.4)
    assert torch.allclose(motion_blur(constant, kernel), constant, atol=1e-6)
    with pytest.raises(ValueError):
        motion_blur(constant, torch.ones(4, 4) / 16)


def test_blur_removes_detail() -> None:
    clean = clean_image()
    settings = BlurSettings(noise_sigma_range=(0.0, 0.0))
    for kind in ("motion", "gaussian"):
        blurred, _ = synthesize_blur(clean, seeded(0), kind=kind, settings=settings)
        # Total variation (sum of absolute neighbour differences) falls under blurring.
        variation = lambda image: float((image[..., 1:] - image[..., :-1]).abs().sum())  # noqa: E731
        assert variation(blurred) < 0.8 * variation(clean)
    with pytest.raises(ValueError):
        synthesize_blur(clean, seeded(0), kind="defocus")


def test_streak_kernel_length_and_orientation() -> None:
    kernel = streak_kernel(length=11.0, angle_degrees=0.0, thickness=1.0)
    centre = kernel.shape[0] // 2
    # Vertical streak: 11 pixels of the centre column near full brightness, nothing beside it.
    assert int((kernel[:, centre] > 0.5).sum()) == 11
    assert float(kernel[:, centre + 2].max()) < 0.01
    assert float(kernel.max()) == pytest.approx(1.0)
    horizontal = streak_kernel(length=11.0, angle_degrees=90.0, thickness=1.0)
    assert torch.allclose(horizontal, kernel.T, atol=1e-6)


def test_rain_layer_range_density_and_determinism() -> None:
    arguments = dict(angle_degrees=10.0, length=15.0, intensity=0.7, thickness=1.5)
    layer = rain_layer(40, 50, seeded(0), density=0.01, **arguments)
    assert layer.shape == (1, 40, 50)
    assert float(layer.min()) >= 0.0 and float(layer.max()) <= 1.0
    assert torch.equal(layer, rain_layer(40, 50, seeded(0), density=0.01, **arguments))
    assert not torch.equal(layer, rain_layer(40, 50, seeded(1), density=0.01, **arguments))
    assert float(rain_layer(40, 50, seeded(0), density=0.0, **arguments).max()) == 0.0
    denser = rain_layer(40, 50, seeded(0), density=0.03, **arguments)
    assert float(denser.mean()) > 1.5 * float(layer.mean())
    # Streaks enter from outside: the border rows are as rainy as the middle on average.
    many = torch.stack([rain_layer(40, 50, seeded(seed), density=0.02, **arguments) for seed in range(10)])
    assert float(many[..., :3, :].mean()) > 0.6 * float(many[..., 18:22, :].mean())


@pytest.mark.parametrize("angle", [-60.0, -25.0, 0.0, 15.0, 40.0, 90.0])
def test_rain_layer_is_oriented_along_its_angle(angle: float) -> None:
    arguments = dict(density=0.01, angle_degrees=angle, length=20.0, intensity=0.8, thickness=1.5)
    layer = rain_layer(96, 96, seeded(1), **arguments)
    direction, anisotropy = streak_direction_degrees(layer)
    assert angle_difference(direction, angle) < 3.0
    assert anisotropy > 5.0


def test_rain_brightens_and_follows_its_settings() -> None:
    clean = clean_image(64, 64)
    rainy, _ = synthesize_rain(clean, seeded(0))
    assert bool((rainy >= clean - 1e-6).all())  # the screen blend only brightens
    assert float(rainy.mean()) > float(clean.mean()) + 0.005
    # Rain is gray: the same amount is added to every channel in relative terms (screen blend).
    transmitted = (1 - rainy) / (1 - clean)
    assert torch.allclose(transmitted[0], transmitted[1], atol=1e-4)
    # White stays white.
    white = torch.ones(3, 16, 16)
    assert torch.equal(synthesize_rain(white, seeded(0))[0], white)
    # A fixed common angle and no spread give streaks along that angle.
    settings = RainSettings(angle_range_degrees=(35.0, 35.0), angle_spread_degrees=0.0)
    streaks = synthesize_rain(torch.zeros(1, 96, 96), seeded(2), settings)[0]
    direction, anisotropy = streak_direction_degrees(streaks)
    assert angle_difference(direction, 35.0) < 3.0 and anisotropy > 5.0
    with pytest.raises(ValueError):
        RainSettings(layer_count_range=(0, 2))


def test_synthesize_rejects_unknown_tasks_and_shapes() -> None:
    with pytest.raises(ValueError, match="unknown"):
        synthesize(clean_image(), "denoise", seeded(0))
    with pytest.raises(ValueError):
        synthesize(clean_image()[None], "deblur", seeded(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task", synthetic.TASKS)
def test_same_result_on_cpu_and_cuda(task: str) -> None:
    clean = clean_image()
    on_cuda = synthesize(clean.cuda(), task, seeded(7))
    assert on_cuda.device.type == "cuda"
    assert torch.allclose(on_cuda.cpu(), synthesize(clean, task, seeded(7)), atol=1e-4)
