"""MATLAB-compatible imresize and the SR literature's PSNR/SSIM: reference vectors, properties, tensor paths.

Reference vectors: the shipped ``dckd/golden`` cases (BasicSR's code, see its README) and a second set
in ``tests/references/imaging`` made by ``tools/references/make_imaging.py`` (never run by the tests).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dckd.data.imresize import bicubic_degrade, imresize, imresize_tensor, modcrop, resize_matrix
from dckd.eval import selfcheck
from dckd.eval.metrics import psnr, rgb_to_y, ssim, tensor_to_uint8

GOLDEN = selfcheck.DEFAULT_DIR
GENERATED = Path(__file__).parent / "references" / "imaging"


def _golden_case(name: str) -> dict:
    return json.loads((GOLDEN / "index.json").read_text())[name]


def _random_image(seed: int, height: int, width: int, channels: int | None = 3) -> np.ndarray:
    generator = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    return generator.uniform(0, 1, size=shape)


def _random_uint8_pair(
    seed: int, height: int = 32, width: int = 40, noise: float = 12.0
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-ish uint8 RGB image and a noisy copy of it."""
    generator = np.random.default_rng(seed)
    rows = np.linspace(0, 3, height)[:, None, None]
    columns = np.linspace(0, 2, width)[None, :, None]
    base = 128 + 90 * np.sin(rows + columns + np.array([0.0, 1.0, 2.0]))
    noisy = base + noise * generator.standard_normal(base.shape)
    to_uint8 = lambda image: np.clip(np.round(image), 0, 255).astype(np.uint8)  # noqa: E731
    return to_uint8(base), to_uint8(noisy)


# ---------------------------------------------------------------------------------------------------
# Reference vectors


def test_shipped_imresize_cases_match_basicsr():
    result = selfcheck.check_imresize(GOLDEN, "imresize", _golden_case("imresize"))
    assert result.passed, result
    assert result.max_error < 1e-6


def test_shipped_metrics_cases_match_basicsr():
    result = selfcheck.check_metrics(GOLDEN, "metrics", _golden_case("metrics"))
    assert result.passed, result


def test_generated_reference_set_passes_entirely():
    results = selfcheck.run_directory(GENERATED)
    assert {result.kind for result in results} == {"imresize", "metrics"}, "reference set lost a kind"
    assert len(results) >= 3
    failures = [result for result in results if not result.passed]
    assert not failures, failures


# ---------------------------------------------------------------------------------------------------
# imresize


@pytest.mark.parametrize(
    "height, width, scale, expected",
    [
        (24, 32, 0.25, (6, 8)),
        (25, 31, 0.5, (13, 16)),
        (30, 20, 0.6, (18, 12)),
        (7, 13, 4, (28, 52)),
        (10, 14, 1.5, (15, 21)),
    ],
)
def test_output_size_is_ceil_of_scaled_size(height, width, scale, expected):
    assert imresize(_random_image(0, height, width), scale).shape == (*expected, 3)


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(4, 20),
    width=st.integers(4, 20),
    scale=st.sampled_from([0.25, 1 / 3, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0]),
    antialiasing=st.booleans(),
    value=st.floats(0, 1),
)
def test_constant_image_stays_constant(height, width, scale, antialiasing, value):
    output = imresize(np.full((height, width, 3), value), scale, antialiasing=antialiasing)
    np.testing.assert_allclose(output, value, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(1, 40), scale=st.sampled_from([0.25, 1 / 3, 0.5, 0.6, 1.0, 1.5, 3.0]), antialiasing=st.booleans()
)
def test_resize_matrix_rows_sum_to_one(length, scale, antialiasing):
    out_length = math.ceil(length * scale)
    matrix = resize_matrix(length, out_length, scale, antialiasing)
    assert matrix.shape == (out_length, length)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-12)


def test_scale_one_is_identity():
    image = _random_image(1, 9, 14)
    np.testing.assert_allclose(imresize(image, 1.0), image, atol=1e-15)


def test_antialiasing_changes_downscaling_only():
    image = _random_image(2, 16, 20)
    assert not np.allclose(imresize(image, 0.5, antialiasing=True), imresize(image, 0.5, antialiasing=False))
    np.testing.assert_array_equal(imresize(image, 2.0, antialiasing=True), imresize(image, 2.0, antialiasing=False))


def test_grayscale_matches_each_channel_of_color():
    image = _random_image(3, 17, 23)
    color = imresize(image, 0.6)
    for channel in range(3):
        gray = imresize(np.ascontiguousarray(image[..., channel]), 0.6)
        assert gray.shape == color.shape[:2]
        np.testing.assert_allclose(gray, color[..., channel], atol=1e-14)


def test_float32_input_returns_float32_close_to_float64():
    image = _random_image(4, 15, 19)
    output = imresize(image.astype(np.float32), 1 / 3)
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, imresize(image, 1 / 3), atol=1e-6)


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.6, 1.5, 2.0, 4.0])
def test_tensor_version_equals_numpy_in_float64(scale):
    batch = np.stack([_random_image(seed, 13, 18) for seed in (5, 6)])  # (N, H, W, C)
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)  # (N, C, H, W)
    output = imresize_tensor(tensor, scale).permute(0, 2, 3, 1).numpy()
    for index in range(batch.shape[0]):
        np.testing.assert_allclose(output[index], imresize(batch[index], scale), atol=1e-13)


def test_tensor_version_float32_and_unbatched():
    image = _random_image(7, 21, 16)
    expected = imresize(image, 0.5)
    unbatched = torch.from_numpy(image).permute(2, 0, 1).float()  # (C, H, W)
    output = imresize_tensor(unbatched, 0.5)
    assert output.dtype == torch.float32 and output.shape == (3, 11, 8)
    np.testing.assert_allclose(output.permute(1, 2, 0).numpy(), expected, atol=2e-6)


def test_tensor_version_is_differentiable():
    images = torch.rand(1, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    imresize_tensor(images, 0.5).sum().backward()
    # d(sum)/d(input) = column sums of both matrices, outer product: finite and not all zero.
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_imresize_rejects_bad_inputs():
    with pytest.raises(TypeError, match="uint8"):
        imresize(np.zeros((8, 8, 3), dtype=np.uint8), 0.5)
    with pytest.raises(ValueError, match="scale"):
        imresize(np.zeros((8, 8, 3)), 0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        imresize(np.zeros((1, 8, 8, 3)), 0.5)


def test_modcrop_crops_bottom_right_to_multiple():
    image = np.arange(13 * 10 * 3).reshape(13, 10, 3)
    cropped = modcrop(image, 4)
    assert cropped.shape == (12, 8, 3)
    np.testing.assert_array_equal(cropped, image[:12, :8])
    with pytest.raises(ValueError, match="positive integer"):
        modcrop(image, 2.5)


def test_bicubic_degrade_follows_the_documented_pipeline():
    hr = np.clip(np.round(_random_image(8, 26, 31) * 255), 0, 255).astype(np.uint8)
    lr = bicubic_degrade(hr, 3)
    assert lr.dtype == np.uint8 and lr.shape == (8, 10, 3)
    by_hand = imresize(hr[:24, :30].astype(np.float64) / 255.0, 1 / 3) * 255.0
    np.testing.assert_array_equal(lr, np.floor(np.clip(by_hand, 0, 255) + 0.5).astype(np.uint8))
    # A float image in [0, 1] is the same image as uint8 / 255.
    np.testing.assert_array_equal(bicubic_degrade(hr.astype(np.float64) / 255.0, 3), lr)


# ---------------------------------------------------------------------------------------------------
# PSNR / SSIM


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    image, _ = _random_uint8_pair(10)
    assert psnr(image, image) == math.inf
    assert psnr(image, image.copy(), crop_border=3, y_channel=True) == math.inf
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert ssim(image, image, crop_border=2, y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_known_error():
    zeros = np.zeros((12, 12, 3), dtype=np.uint8)
    assert psnr(zeros, zeros + 5) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)


def test_metrics_are_symmetric():
    image_a, image_b = _random_uint8_pair(11)
    for options in (dict(), dict(crop_border=4, y_channel=True)):
        assert ssim(image_a, image_b, **options) == pytest.approx(ssim(image_b, image_a, **options), abs=1e-14)
        assert psnr(image_a, image_b, **options) == pytest.approx(psnr(image_b, image_a, **options), abs=1e-12)
        assert ssim(image_a, image_b, **options) < 1


def test_y_channel_and_rgb_differ_and_crop_border_matters():
    image_a, image_b = _random_uint8_pair(12)
    assert abs(psnr(image_a, image_b, y_channel=True) - psnr(image_a, image_b)) > 0.1
    assert abs(ssim(image_a, image_b, y_channel=True) - ssim(image_a, image_b)) > 1e-4
    assert psnr(image_a, image_b, crop_border=4) != psnr(image_a, image_b)


def test_float_images_in_0_255_equal_uint8():
    image_a, image_b = _random_uint8_pair(13)
    for y_channel in (False, True):
        options = dict(crop_border=2, y_channel=y_channel)
        assert psnr(image_a.astype(np.float64), image_b.astype(np.float64), **options) == psnr(
            image_a, image_b, **options
        )
        assert ssim(image_a.astype(np.float32), image_b.astype(np.float32), **options) == pytest.approx(
            ssim(image_a, image_b, **options), abs=1e-14
        )


def test_rgb_to_y_uses_rgb_bt601_coefficients():
    colours = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    expected = [16.0, 235.0, 16 + 65.481, 16 + 24.966]  # red and blue would swap with BGR coefficients
    np.testing.assert_allclose(rgb_to_y(colours)[0], expected, atol=2e-5)


def test_metric_errors_name_the_problem():
    image_a, image_b = _random_uint8_pair(14, height=20, width=24)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(image_a, image_b[:, :-1])
    with pytest.raises(ValueError, match="crop_border=10"):
        psnr(image_a, image_b, crop_border=10)
    with pytest.raises(ValueError, match="crop_border=5"):
        ssim(image_a, image_b, crop_border=5)  # 10x14 left: smaller than the 11x11 window
    with pytest.raises(ValueError, match="crop_border"):
        ssim(image_a, image_b, crop_border=-1)
    with pytest.raises(ValueError, match="3-channel"):
        psnr(image_a[..., 0], image_b[..., 0], y_channel=True)
    with pytest.raises(TypeError, match="int64"):
        psnr(image_a.astype(np.int64), image_b.astype(np.int64))


# ---------------------------------------------------------------------------------------------------
# Tensor helpers


def test_tensor_to_uint8_clamps_rounds_and_transposes():
    tensor = torch.tensor([-0.1, 0.5, 1.2, 100.4 / 255]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    image = tensor_to_uint8(tensor)
    assert image.dtype == np.uint8 and image.shape == (1, 4, 3)
    # 0.5 * 255 = 127.5 rounds half to even (torch.round and numpy round, as BasicSR's tensor2img).
    np.testing.assert_array_equal(image[0, :, 0], [0, 128, 255, 100])
    with pytest.raises(ValueError, match="batch"):
        tensor_to_uint8(torch.zeros(2, 3, 4, 4))
