"""Data validation before training: every bad-dataset case of issue 6 gets its documented handling."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dckd.data import (
    DatasetError,
    ImageReadError,
    check_dataset,
    hr_folder,
    input_target,
    paired_folders,
    validate_dataset,
)
from dckd.data.imresize import bicubic_degrade


def pixels(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def write_pair(
    root: Path, name: str, gt: bytes | Image.Image, lq: bytes | Image.Image | None, gt_extension: str = ".png"
):
    for folder, content, extension in (("gt", gt, gt_extension), ("lq", lq, ".png")):
        if content is None:
            continue
        path = root / folder / f"{name}{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Image.Image):
            content.save(path)
        else:
            path.write_bytes(content)


@pytest.fixture
def bad_dataset_root(tmp_path) -> Path:
    """A x2 paired dataset with every case of issue 6, good and bad. Training LQ patch: 4."""
    root = tmp_path / "mixed"

    def good_pair(seed: int, height: int = 16, width: int = 16, channels: int = 3):
        hr = pixels(height, width, channels, seed)
        lr = bicubic_degrade(hr if channels != 1 else hr[:, :, None].repeat(3, axis=2), 2)
        return Image.fromarray(hr), Image.fromarray(lr)

    write_pair(root, "good", *good_pair(1))
    write_pair(root, "gray", *good_pair(2, channels=1))
    rgba = pixels(16, 16, 4, 3)
    rgba[:, :, 3] = 255
    write_pair(root, "rgba_opaque", Image.fromarray(rgba), good_pair(3)[1])
    rgba_cut = rgba.copy()
    rgba_cut[0, 0, 3] = 0
    write_pair(root, "rgba_transparent", Image.fromarray(rgba_cut), good_pair(3)[1])
    write_pair(root, "deep16", Image.fromarray(pixels(16, 16, 1, 4).astype(np.uint16) * 257), good_pair(4)[1])
    hr, lr = good_pair(5)
    write_pair(root, "cmyk", encode(hr.convert("CMYK"), "JPEG"), lr, gt_extension=".jpg")
    write_pair(root, "zero_byte", b"", good_pair(6)[1])
    full = encode(good_pair(7)[0], "PNG")
    write_pair(root, "truncated_png", full[: len(full) // 2], good_pair(7)[1])
    jpeg = encode(Image.fromarray(pixels(32, 32, seed=8)), "JPEG")
    write_pair(root, "truncated_jpeg", jpeg[: len(jpeg) // 2], good_pair(8)[1], gt_extension=".jpg")
    write_pair(root, "not_an_image", b"<html>404 Not Found</html>", good_pair(9)[1])
    write_pair(root, "size_mismatch", good_pair(10)[0], Image.fromarray(pixels(7, 8)))
    write_pair(root, "too_small", *good_pair(11, height=6, width=16))  # LQ 3x8 < patch 4
    write_pair(root, "gigantic", *good_pair(12, height=64, width=64))  # over the test's pixel limit
    write_pair(root, "ünïcödé_画像", *good_pair(13))
    write_pair(root, "no_partner", good_pair(14)[0], None)
    return root


def test_every_case_of_a_bad_dataset_is_reported_with_its_file(bad_dataset_root):
    dataset = paired_folders(
        bad_dataset_root / "gt", bad_dataset_root / "lq", 2, lq_patch_size=4, missing_pairs="report", max_pixels=1024
    )
    report = validate_dataset(dataset, workers=3)
    by_file = {}
    for problem in report.problems:
        for path in problem.paths:
            by_file.setdefault(path.stem, []).append(problem.reason)
    expected = {
        "rgba_transparent": "not fully opaque",
        "zero_byte": "empty (0 bytes)",
        "truncated_png": "truncated or corrupt",
        "truncated_jpeg": "truncated or corrupt",
        "not_an_image": "not a recognised image",
        "size_mismatch": "does not agree with scale 2",
        "too_small": "smaller than the 4x4 training patch",
        "gigantic": "exceeds the limit of 1024 pixels",
        "no_partner": "missing pair",
    }
    assert set(by_file) == set(expected), report.summary()
    for stem, reason in expected.items():
        assert any(reason in text for text in by_file[stem]), (stem, by_file[stem])
    # The size mismatch names both files; every problem shows up in the summary by file name.
    mismatch = next(problem for problem in report.problems if "does not agree" in problem.reason)
    assert [path.parent.name for path in mismatch.paths] == ["gt", "lq"]
    summary = report.summary()
    for stem in expected:
        assert stem in summary
    # Handled, not problems: grayscale, opaque RGBA, 16-bit, CMYK JPEG, non-ASCII names.
    assert not report.ok and len(report.bad_indices) == 8  # the missing pair is not an item
    assert "grayscale replicated to RGB" in report.notes and "opaque alpha dropped" in report.notes
    assert any("16-bit" in note for note in report.notes) and "CMYK converted to RGB" in report.notes
    assert report.num_items == 14


def test_problems_raise_with_a_summary_or_are_skipped_explicitly(bad_dataset_root):
    dataset = paired_folders(
        bad_dataset_root / "gt", bad_dataset_root / "lq", 2, lq_patch_size=4, missing_pairs="report", max_pixels=1024
    )
    with pytest.raises(DatasetError) as raised:
        check_dataset(dataset, workers=2)
    assert "zero_byte.png" in str(raised.value) and "skip_bad" in str(raised.value)
    with pytest.raises(DatasetError, match="9 problem"):
        validate_dataset(dataset, workers=2).raise_if_problems()

    good, report = check_dataset(dataset, workers=2, skip_bad=True)
    assert sorted(good.sample_names) == sorted(["good", "gray", "rgba_opaque", "deep16", "cmyk", "ünïcödé_画像"])
    assert "skipped 8 of 14 items" in report.summary()
    for index in range(len(good)):  # every remaining item loads, as a training patch
        sample = good[(index, index)]
        assert sample["lq"].shape == (3, 4, 4) and sample["gt"].shape == (3, 8, 8)
    assert validate_dataset(good, workers=2).ok


def test_evaluation_does_not_check_patch_size_and_pairs_can_be_given_directly(bad_dataset_root):
    gt, lq = bad_dataset_root / "gt", bad_dataset_root / "lq"
    pairs = [(gt / "too_small.png", lq / "too_small.png"), (gt / "good.png", lq / "good.png")]
    assert validate_dataset(pairs, scale=2).ok
    report = validate_dataset(pairs, scale=2, lq_patch_size=4)
    assert [problem.paths[0].name for problem in report.problems] == ["too_small.png"]
    report = validate_dataset(pairs, scale=3)
    assert len(report.problems) == 2  # both pairs disagree with x3


def test_each_file_is_decoded_once_with_progress(bad_dataset_root, monkeypatch):
    import dckd.data.validate as validate_module

    decoded = []
    original = validate_module.decode_image
    monkeypatch.setattr(
        validate_module, "decode_image", lambda path, **kw: decoded.append(path) or original(path, **kw)
    )
    gt, lq = bad_dataset_root / "gt", bad_dataset_root / "lq"
    pairs = [(gt / "good.png", lq / "good.png"), (gt / "good.png", lq / "good.png"), (gt / "gray.png", lq / "gray.png")]
    progress = []
    report = validate_dataset(pairs, scale=2, workers=2, progress=lambda done, total: progress.append((done, total)))
    assert report.ok and report.num_files == 4
    assert sorted(decoded) == sorted({path for pair in pairs for path in pair})
    assert progress[-1] == (4, 4)


def test_bicubic_dataset_validation(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(pixels(16, 16)).save(folder / "fine.png")
    Image.fromarray(pixels(3, 16)).save(folder / "thin.png")  # smaller than the scale 4
    Image.fromarray(pixels(12, 12)).save(folder / "small.png")  # LQ 3x3 < patch 4
    report = validate_dataset(hr_folder(folder, 4, lq_patch_size=4))
    reasons = {problem.paths[0].name: problem.reason for problem in report.problems}
    assert set(reasons) == {"thin.png", "small.png"}
    assert "smaller than the scale 4" in reasons["thin.png"] and "training patch" in reasons["small.png"]


def test_empty_folders_and_missing_pairs_fail_when_the_dataset_is_built(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "lq").mkdir()
    with pytest.raises(DatasetError, match=r"'.*gt' holds no image"):
        paired_folders(tmp_path / "gt", tmp_path / "lq", 2)
    root = tmp_path / "Test100"
    write_pair(root, "1", Image.fromarray(pixels(4, 4)), None)
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    (root / "gt" / "1.png").rename(root / "target" / "1.png")
    Image.fromarray(pixels(4, 4)).save(root / "input" / "2.png")
    with pytest.raises(DatasetError, match="have no LQ partner"):
        input_target(root)


def test_a_file_removed_after_validation_raises_a_named_read_error(bad_dataset_root):
    gt, lq = bad_dataset_root / "gt", bad_dataset_root / "lq"
    dataset = paired_folders(gt, lq, 2, lq_patch_size=4, missing_pairs="report", max_pixels=1024)
    good, _ = check_dataset(dataset, skip_bad=True)
    (lq / "good.png").unlink()
    with pytest.raises(ImageReadError, match=r"lq[/\\]good\.png.*does not exist"):
        good[good.sample_names.index("good")]
