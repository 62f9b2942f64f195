"""Tests of the per-sample negative degradations (dckd/methods/dckd/degradations.py,
``dckd.negative_sampling: per_sample``); the released per-copy variant is in test_released_degradations.py."""

from __future__ import annotations

import pytest
import torch

from dckd.methods.dckd import degradations, negatives, released_degradations
from dckd.methods.dckd.degradations import (
    DEGRADATION_KINDS,
    add_gaussian_noise,
    degrade,
    gaussian_kernels,
    random_gaussian_blur,
    random_resize,
)
from dckd.methods.dckd.negatives import make_negative_inputs

SINGLE_FUNCTIONS = {
    "noise": add_gaussian_noise,
    "blur": random_gaussian_blur,
    "resize": random_resize,
    "mix": lambda x, generator: degrade(x, generator, ["mix"]),
}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch: int = 4, height: int = 24, width: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=seeded(seed))


@pytest.mark.parametrize("kind", DEGRADATION_KINDS)
def test_deterministic_under_seed_and_sensitive_to_it(kind: str) -> None:
    x = images()
    first = degrade(x, seeded(5), [kind])
    second = degrade(x, seeded(5), [kind])
    other = degrade(x, seeded(6), [kind])
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("kind", DEGRADATION_KINDS)
def test_equal_generator_state_gives_equal_results(kind: str) -> None:
    x = images()
    generator = seeded(3)
    degrade(x, generator, [kind])  # advance the state past the seed
    state = generator.get_state()
    first = degrade(x, generator, [kind])
    generator.set_state(state)
    second = degrade(x, generator, [kind])
    assert torch.equal(first, second)
    # The state advanced, so a third call is a fresh draw.
    assert not torch.equal(first, degrade(x, generator, [kind]))


@pytest.mark.parametrize("kind", DEGRADATION_KINDS)
def test_range_shape_dtype_and_input_untouched(kind: str) -> None:
    x = images()
    x[0] = 0.0  # extremes, where noise and bicubic overshoot must be clipped
    x[1] = 1.0
    original = x.clone()
    out = SINGLE_FUNCTIONS[kind](x, seeded(0))
    assert torch.equal(x, original)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)


@pytest.mark.parametrize("kind", DEGRADATION_KINDS)
def test_float64_and_no_grad(kind: str) -> None:
    x = images().double()
    with torch.no_grad():
        out = degrade(x, seeded(2), [kind])
    assert out.dtype == torch.float64 and out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Same draws in float32 and float64 (parameters are drawn in float64 in both cases).
    single = degrade(x.float(), seeded(2), [kind])
    tolerance = 1e-4 if kind in ("noise", "blur") else 5e-3
    assert torch.allclose(out.float(), single, atol=tolerance)


def test_noise_levels_lie_in_the_published_range() -> None:
    x = torch.full((64, 3, 32, 32), 0.5)
    out = add_gaussian_noise(x, seeded(0))
    std = (out - x).flatten(1).std(dim=1)
    # 3072 values per sample: the sample std is within ~4% of sigma; 0.5 +- 4.4 sigma never clips.
    assert float(std.min()) > (1 / 255) * 0.9
    assert float(std.max()) < (30 / 255) * 1.05
    # Levels spread over the range, not one constant.
    assert float(std.max()) > 20 / 255 and float(std.min()) < 10 / 255


def test_noise_level_matches_a_fixed_sigma() -> None:
    x = torch.full((8, 3, 64, 64), 0.5)
    out = add_gaussian_noise(x, seeded(0), sigma_range=(0.05, 0.05))
    std = (out - x).flatten(1).std(dim=1)
    assert torch.allclose(std, torch.full_like(std, 0.05), rtol=0.05)
    assert abs(float((out - x).mean())) < 1e-3


def test_gray_noise_fraction_is_about_one_half() -> None:
    x = torch.full((2000, 3, 4, 4), 0.5)
    noise = add_gaussian_noise(x, seeded(0)) - x
    gray = (noise[:, 0] == noise[:, 1]).all(dim=(1, 2)) & (noise[:, 0] == noise[:, 2]).all(dim=(1, 2))
    # Binomial(2000, 0.5): std 0.011, so +-0.05 is > 4 std.
    assert abs(float(gray.float().mean()) - 0.5) < 0.05
    never_gray = add_gaussian_noise(x, seeded(0), gray_probability=0.0) - x
    assert not (never_gray[:, 0] == never_gray[:, 1]).all(dim=(1, 2)).any()
    always_gray = add_gaussian_noise(x, seeded(0), gray_probability=1.0) - x
    assert torch.equal(always_gray[:, 0], always_gray[:, 2])


def test_blur_keeps_a_constant_image() -> None:
    x = torch.full((16, 3, 15, 13), 0.3)
    out = random_gaussian_blur(x, seeded(0))
    assert torch.allclose(out, x, atol=1e-6)


def test_blur_of_an_impulse_has_the_drawn_size() -> None:
    batch = 64
    # Draw the same sizes the function will draw: same generator, same order of draws.
    generator = seeded(11)
    sizes = torch.tensor([3, 5, 7, 9, 11])
    expected_x = sizes[torch.randint(5, (batch,), generator=generator)]
    expected_y = sizes[torch.randint(5, (batch,), generator=generator)]
    x = torch.zeros(batch, 1, 31, 31)
    x[:, :, 15, 15] = 1.0
    # Sigmas fixed large so that every tap of the support is clearly non-zero.
    out = random_gaussian_blur(x, seeded(11), sigma_range=(2.0, 2.0))
    support = out[:, 0] > 1e-6
    width = support.any(dim=1).sum(dim=1)
    height = support.any(dim=2).sum(dim=1)
    assert torch.equal(width, expected_x) and torch.equal(height, expected_y)
    # Sizes differ per sample and per axis.
    assert len(set(width.tolist())) == 5 and not torch.equal(width, height)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(batch), atol=1e-5)


def test_blur_sigmas_shape_the_kernel() -> None:
    kernels = gaussian_kernels(torch.tensor([11]), torch.tensor([11]), torch.tensor([2.0]), torch.tensor([0.5]))[0]
    assert kernels.shape == (11, 11)
    assert torch.allclose(kernels.sum(), torch.tensor(1.0, dtype=torch.float64))
    # Wide along x (columns), narrow along y (rows).
    assert float(kernels[5, 7]) > 10 * float(kernels[7, 5])
    # A rotation by 90 degrees swaps the axes.
    rotated = gaussian_kernels(
        torch.tensor([11]),
        torch.tensor([11]),
        torch.tensor([2.0]),
        torch.tensor([0.5]),
        rotation=torch.tensor([torch.pi / 2]),
    )[0]
    assert torch.allclose(rotated, kernels.T, atol=1e-12)
    with pytest.raises(ValueError):
        gaussian_kernels(torch.tensor([4]), torch.tensor([3]), torch.tensor([1.0]), torch.tensor([1.0]))


def test_blur_works_on_images_smaller_than_the_kernel() -> None:
    out = random_gaussian_blur(torch.rand(2, 3, 4, 4, generator=seeded(0)), seeded(0))
    assert out.shape == (2, 3, 4, 4)


@pytest.mark.parametrize("shape", [(3, 3, 17, 23), (2, 1, 8, 8), (1, 3, 2, 2)])
def test_resize_keeps_the_shape_and_changes_the_image(shape: tuple[int, ...]) -> None:
    x = torch.rand(*shape, generator=seeded(0))
    out = random_resize(x, seeded(1))
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_resize_scale_changes_the_detail() -> None:
    x = torch.rand(32, 3, 32, 32, generator=seeded(0))
    # Downscaling by ~2 and back removes most of the high frequencies of white noise ...
    down = random_resize(x, seeded(1), up_probability=0.0, down_range=(0.5, 0.5))
    # ... while an upscale-and-back keeps the image close.
    up = random_resize(x, seeded(1), up_probability=1.0, up_range=(1.5, 1.5))
    assert float((down - x).abs().mean()) > 2 * float((up - x).abs().mean())
    with pytest.raises(ValueError):
        random_resize(x, seeded(1), modes=("nearest",))


def test_mix_differs_from_every_single_kind() -> None:
    x = images()
    mixed = degrade(x, seeded(4), ["mix"])
    for kind in ("noise", "blur", "resize"):
        assert not torch.allclose(mixed, degrade(x, seeded(4), [kind]), atol=1e-3)
    # "mix" is exactly the three in Real-ESRGAN's order.
    assert torch.equal(mixed, degrade(x, seeded(4), ["noise", "resize", "blur"]))
    generator = seeded(4)
    by_hand = add_gaussian_noise(random_resize(random_gaussian_blur(x, generator), generator), generator)
    assert torch.equal(mixed, by_hand)


def test_degrade_rejects_unknown_or_empty_kinds() -> None:
    with pytest.raises(ValueError, match="unknown"):
        degrade(images(), seeded(0), ["jpeg"])
    with pytest.raises(ValueError):
        degrade(images(), seeded(0), [])
    # A single name is taken as one kind, not as its letters.
    assert torch.equal(degrade(images(), seeded(0), "noise"), degrade(images(), seeded(0), ["noise"]))


def test_negative_inputs_are_copy_major_and_independent() -> None:
    x = images(batch=3)
    negatives = make_negative_inputs(x, seeded(0), 4, ["noise"], "per_sample")
    assert negatives.shape == (12, 3, 24, 20)
    per_copy = negatives.view(4, 3, 3, 24, 20)
    for copy in range(4):
        # Copy k, sample n is a noisy version of sample n (noise <= 30/255, << image differences).
        residual = (per_copy[copy] - x).flatten(1).std(dim=1)
        assert float(residual.max()) < 0.13
        assert torch.equal(per_copy[copy], negatives[copy * 3 : (copy + 1) * 3])
    # Copies of the same sample got different draws.
    assert not torch.equal(per_copy[0], per_copy[1])
    # The same as one degrade call on the repeated batch, i.e. one batched draw.
    assert torch.equal(negatives, degrade(x.repeat(4, 1, 1, 1), seeded(0), ["noise"]))
    empty = make_negative_inputs(x, seeded(0), 0, ["noise"], "per_sample")
    assert empty.shape == (0, 3, 24, 20)


def test_negative_inputs_for_every_kind() -> None:
    x = images(batch=2)
    original = x.clone()
    for kind in DEGRADATION_KINDS:
        negatives = make_negative_inputs(x, seeded(0), 3, [kind], "per_sample")
        assert negatives.shape == (6, 3, 24, 20)
        assert torch.equal(negatives, make_negative_inputs(x, seeded(0), 3, [kind], "per_sample"))
    assert torch.equal(x, original)


def test_no_python_random_or_numpy_random() -> None:
    for module in (degradations, released_degradations, negatives):
        source = open(module.__file__, encoding="utf-8").read()
        assert "import random" not in source and "np.random" not in source and "import numpy" not in source


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", DEGRADATION_KINDS)
def test_same_result_on_cpu_and_cuda(kind: str) -> None:
    x = images(batch=8, height=32, width=32)
    for sampling in ("per_sample", "released"):
        on_cpu = make_negative_inputs(x, seeded(9), 4, [kind], sampling)
        on_cuda = make_negative_inputs(x.cuda(), seeded(9), 4, [kind], sampling)
        assert on_cuda.device.type == "cuda"
        # Interpolation and convolution kernels differ slightly between devices.
        assert torch.allclose(on_cuda.cpu(), on_cpu, atol=1e-4)


@pytest.mark.parametrize("kind", ["noise", "blur", "resize"])
def test_per_sample_probability_gates_each_sample(kind: str) -> None:
    x = images(batch=400, height=12, width=12)
    out = degrade(x, seeded(1), [kind], {kind: 0.25})
    changed = (out != x).flatten(1).any(dim=1).float()
    assert abs(float(changed.mean()) - 0.25) < 0.07  # Binomial(400, 0.25): std 0.022
    assert torch.equal(degrade(x, seeded(1), [kind], {kind: 0.0}), x)
