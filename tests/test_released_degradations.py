"""The negatives' degradations as the released DCKD code makes them (``dckd.negative_sampling: released``).

Pinned: one draw per copy shared by the whole batch (gates, kernel, scale, modes), the order blur -> resize ->
noise at the resized size -> resize back, int() sizes, no clamp after a resize, one gray field per copy, each
degradation applied with its probability per copy, and the documented order of the generator's draws.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dckd.config.schema import config_from_dict
from dckd.errors import ConfigError
from dckd.methods.dckd import released_degradations
from dckd.methods.dckd.degradations import RESIZE_MODES, interpolate, uniform
from dckd.methods.dckd.negatives import NegativeInputs, make_negative_inputs
from dckd.methods.dckd.released_degradations import (
    KERNEL_SIZES,
    CopyDraw,
    add_noise_shared_gray,
    apply_copy,
    blur_batch,
    degrade_copies,
    draw_copy,
    gaussian_kernel_1d,
    resized_size,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch: int = 3, height: int = 24, width: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=seeded(seed))


def test_every_sample_of_a_copy_shares_the_blur_and_resize_draws() -> None:
    one = images(batch=1)
    batch = one.repeat(4, 1, 1, 1)  # four identical samples
    copies = degrade_copies(batch, seeded(3), 6, ["blur", "resize"]).view(6, 4, 3, 24, 20)
    for copy in copies:
        for sample in copy[1:]:
            assert torch.equal(sample, copy[0])  # the same kernel, scale and modes for the whole batch
    assert not torch.equal(copies[0, 0], copies[1, 0])  # copies draw their own parameters


def test_blur_kernel_is_separable_kornia_style_with_h_and_w_parameters() -> None:
    impulse = torch.zeros(2, 1, 31, 31)
    impulse[:, :, 15, 15] = 1.0
    out = blur_batch(impulse, 3, 9, 0.7, 1.6)
    expected = torch.outer(gaussian_kernel_1d(3, 0.7), gaussian_kernel_1d(9, 1.6)).float()
    assert torch.allclose(out[0, 0, 14:17, 11:20], expected, atol=1e-7)
    assert float(out[0, 0].sum()) == pytest.approx(1.0, abs=1e-6) and torch.equal(out[0], out[1])
    # g(t) = exp(-t^2 / (2 sigma^2)) on t = -k//2 .. k//2, normalised.
    offsets = torch.arange(5, dtype=torch.float64) - 2
    reference = torch.exp(-(offsets**2) / (2 * 1.3**2))
    assert torch.allclose(gaussian_kernel_1d(5, 1.3), reference / reference.sum())
    # Reflect border: a constant image stays constant.
    assert torch.allclose(blur_batch(torch.full((1, 3, 6, 7), 0.25), 11, 11, 2.0, 2.0), torch.tensor(0.25))


def test_sizes_are_truncated_and_noise_comes_at_the_resized_size(monkeypatch) -> None:
    assert resized_size(15, 15, 0.9) == (13, 13)  # round() would give 14
    assert resized_size(48, 40, 1.4999) == (71, 59) and resized_size(1, 1, 0.5) == (1, 1)
    sizes = []

    def recording(image, size, mode):
        sizes.append((tuple(image.shape[-2:]), size, mode))
        return interpolate(image, size, mode)

    monkeypatch.setattr(released_degradations, "interpolate", recording)
    x = images(batch=2, height=15, width=15)
    draw = CopyDraw(blur=None, resize=(0.9, "bilinear", "bicubic"), noise=True)
    generator = seeded(4)
    out = apply_copy(x, draw, generator, gray_probability=0.5)
    assert sizes == [((15, 15), (13, 13), "bilinear"), ((13, 13), (15, 15), "bicubic")]
    # By hand: resize down, noise at 13x13 with the same draws, back up.
    by_hand = interpolate(
        add_noise_shared_gray(interpolate(x, (13, 13), "bilinear"), seeded(4), 0.5), (15, 15), "bicubic"
    )
    assert torch.equal(out, by_hand)


def test_mix_order_is_blur_resize_noise_resize_back() -> None:
    x = images(batch=2)
    draw = CopyDraw(blur=(5, 7, 1.2, 0.4), resize=(0.62, "area", "bilinear"), noise=True)
    out = apply_copy(x, draw, seeded(8), gray_probability=0.5)
    blurred = blur_batch(x, 5, 7, 1.2, 0.4)
    down = F.interpolate(blurred, size=(int(24 * 0.62), int(20 * 0.62)), mode="area")
    noisy = add_noise_shared_gray(down, seeded(8), 0.5)
    back = F.interpolate(noisy, size=(24, 20), mode="bilinear", align_corners=False)
    assert torch.equal(out, back)


def test_no_clamp_after_a_resize_only_the_noise_clips() -> None:
    x = torch.zeros(1, 1, 16, 16)
    x[..., :, 8:] = 1.0  # a hard edge: bicubic overshoots
    out = apply_copy(x, CopyDraw(resize=(0.5, "bicubic", "bicubic")), seeded(0), 0.5)
    assert float(out.min()) < 0.0 and float(out.max()) > 1.0
    noisy = apply_copy(x, CopyDraw(resize=(0.5, "bicubic", "bicubic"), noise=True), seeded(0), 0.5)
    assert float(noisy.min()) < 0.0 or float(noisy.max()) > 1.0  # the resize back comes after the clip


def test_gray_samples_of_a_copy_share_one_noise_field() -> None:
    x = torch.full((5, 3, 16, 16), 0.5)
    noise = add_noise_shared_gray(x, seeded(2), gray_probability=1.0, sigma_range=(0.01, 0.03)) - x
    field = noise[0, 0] / noise[0, 0].abs().max()
    for sample in noise:
        assert torch.allclose(sample[0], sample[1]) and torch.allclose(sample[0], sample[2])
        ratio = sample[0] / noise[0, 0]
        assert torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3)  # sigma_i / sigma_0 everywhere
        assert torch.allclose(sample[0] / sample[0].abs().max(), field, atol=1e-5)
    colour = add_noise_shared_gray(x, seeded(2), gray_probability=0.0) - x
    assert not torch.allclose(colour[:, 0], colour[:, 1]) and not torch.allclose(colour[0], colour[1])


@pytest.mark.parametrize("kind", ["blur", "resize", "noise"])
def test_each_degradation_is_applied_with_its_probability_per_copy(kind: str) -> None:
    x = images(batch=2)
    copies = degrade_copies(x, seeded(5), 400, [kind], {kind: 0.3}).view(400, 2, 3, 24, 20)
    changed = [[not torch.equal(sample, original) for sample, original in zip(copy, x)] for copy in copies]
    assert all(first == second for first, second in changed)  # the whole copy, or none of it
    fraction = sum(first for first, _ in changed) / 400
    assert abs(fraction - 0.3) < 0.08  # Binomial(400, 0.3): std 0.023
    untouched = degrade_copies(x, seeded(5), 10, [kind], {kind: 0.0})
    assert torch.equal(untouched, x.repeat(10, 1, 1, 1))


def test_draws_follow_the_documented_order() -> None:
    draw = draw_copy(seeded(11), ["mix"], {"blur": 1.0, "resize": 1.0, "noise": 1.0})
    generator = seeded(11)
    gates = torch.rand(3, generator=generator, dtype=torch.float64)
    assert bool((gates < 1.0).all())
    sizes = torch.randint(5, (2,), generator=generator).tolist()
    sigmas = uniform(generator, 2, 0.1, 2.0).tolist()
    up, up_scale, down_scale = uniform(generator, 3, 0.0, 1.0).tolist()
    modes = torch.randint(3, (2,), generator=generator).tolist()
    assert draw.blur == (KERNEL_SIZES[sizes[0]], KERNEL_SIZES[sizes[1]], sigmas[0], sigmas[1])
    scale = 1.0 + 0.5 * up_scale if up < 0.25 else 0.5 + 0.5 * down_scale
    assert draw.resize == (scale, RESIZE_MODES[modes[0]], RESIZE_MODES[modes[1]]) and draw.noise


def test_resize_draws_up_a_quarter_of_the_time_within_the_published_ranges() -> None:
    generator = seeded(0)
    draws = [draw_copy(generator, ["resize"]).resize for _ in range(2000)]
    scales = torch.tensor([scale for scale, _, _ in draws])
    assert abs(float((scales > 1).float().mean()) - 0.25) < 0.04
    assert float(scales.min()) >= 0.5 and float(scales.max()) <= 1.5
    assert {mode for _, first, back in draws for mode in (first, back)} == set(RESIZE_MODES)
    blurs = [draw_copy(generator, ["blur"]).blur for _ in range(500)]
    assert {size for k_h, k_w, _, _ in blurs for size in (k_h, k_w)} == set(KERNEL_SIZES)
    assert all(0.1 <= sigma <= 2.0 for _, _, s_h, s_w in blurs for sigma in (s_h, s_w))


def test_negative_inputs_released_are_copy_major_and_resumable() -> None:
    x = images(batch=3)
    negatives = make_negative_inputs(x, seeded(0), 4, ["noise"], "released")
    assert negatives.shape == (12, 3, 24, 20)
    generator = seeded(0)
    for copy in range(4):
        expected = apply_copy(x, draw_copy(generator, ["noise"]), generator, 0.5)
        assert torch.equal(negatives[copy * 3 : (copy + 1) * 3], expected)
    sampler = NegativeInputs(4, True, ["mix"], seeded(7), "released", {"blur": 0.5}, 0.5)
    sampler(x)
    state = sampler.state_dict()
    first = sampler(x)
    sampler.load_state_dict(state)
    assert torch.equal(sampler(x), first) and torch.equal(first[:3], x)
    with pytest.raises(ValueError, match="negative sampling 'per_copy'"):
        make_negative_inputs(x, seeded(0), 2, ["noise"], "per_copy")


def _dckd_config(**options) -> dict:
    return {
        "method": "dckd",
        "student": {"preset": "swinir_s_x4"},
        "teacher": {"preset": "swinir_m_x4", "random_init": True},
        "vqgan": {},
        "dckd": options,
    }


def test_dckd_options_default_to_released_sampling_and_check_probabilities() -> None:
    options = config_from_dict(_dckd_config()).dckd
    assert options.negative_sampling == "released" and options.degradation_probabilities == {"noise": 1.0}
    assert options.gray_noise_probability == 0.5
    mixed = config_from_dict(_dckd_config(degradations=["mix"], blur_probability=0.5)).dckd
    assert mixed.degradation_probabilities == {"blur": 0.5, "resize": 1.0, "noise": 1.0}
    assert config_from_dict(_dckd_config(blur_probability=0.0)).dckd.degradation_probabilities == {"noise": 1.0}
    with pytest.raises(ConfigError, match=r"blur_probability is 0.3 but blur is not in degradations \['noise'\]"):
        config_from_dict(_dckd_config(blur_probability=0.3))
    with pytest.raises(ConfigError, match="noise_probability must be in"):
        config_from_dict(_dckd_config(noise_probability=1.5))
    with pytest.raises(ConfigError, match="negative_sampling: 'per_copy' is not allowed"):
        config_from_dict(_dckd_config(negative_sampling="per_copy"))
