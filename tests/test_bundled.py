"""The bundled photographs: layout, sizes, pinned pixels, MATLAB-bicubic LR files, disjoint splits without
near-duplicates, credits, and loading through the config and the ``bundled:<split>`` names."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dckd.config.loading import from_dict
from dckd.config.schema import DatasetConfig
from dckd.data import read_image_uint8
from dckd.data.bundled import BUNDLED_SCALES, BUNDLED_SPLITS, bundled_dataset, bundled_root
from dckd.data.image_io import decode_image
from dckd.data.imresize import bicubic_degrade, imresize, modcrop
from dckd.engine.setup import build_dataset
from dckd.errors import ConfigError
from dckd.eval.report import dataset_from_folder

REPOSITORY = Path(__file__).resolve().parent.parent
ASSETS = REPOSITORY / "dckd" / "assets" / "bundled"
SOURCES = json.loads((ASSETS / "SOURCES.json").read_text(encoding="utf-8"))
DOC = REPOSITORY / "docs" / "bundled-photos.md"
COUNTS = {"train": 17, "val": 4, "test": 13}
"""The split the maintainer decided (docs/bundled-photos.md)."""


def names(split: str) -> list[str]:
    return sorted(image["name"] for image in SOURCES["images"] if image["split"] == split)


def tool(name: str):
    """A module of tools/ (which import their siblings, as when run as scripts)."""
    if str(REPOSITORY / "tools") not in sys.path:
        sys.path.insert(0, str(REPOSITORY / "tools"))
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPOSITORY / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def hr_pixels(image: dict) -> np.ndarray:
    """The HR file's pixels as stored (gray stays 2-D), as ``pixels_sha256`` is defined."""
    with Image.open(ASSETS / image["file"]) as png:
        return np.asarray(png)


def test_every_split_and_scale_has_the_benchmark_layout_with_exact_sizes() -> None:
    assert BUNDLED_SPLITS == ("train", "val", "test")
    assert {split: len(names(split)) for split in BUNDLED_SPLITS} == COUNTS
    assert {image["split"] for image in SOURCES["images"]} == set(BUNDLED_SPLITS)
    for split in BUNDLED_SPLITS:
        root = bundled_root(split)
        assert root == ASSETS / split
        assert sorted(path.stem for path in (root / "HR").glob("*.png")) == names(split)
        for name in names(split):
            hr = decode_image(root / "HR" / f"{name}.png")
            height, width = hr.pixels.shape[:2]
            assert hr.bit_depth == 8 and height % 12 == 0 and width % 12 == 0, name
            assert min(height, width) >= 168 and max(height, width) <= 504, name
            for scale in BUNDLED_SCALES:
                lr = decode_image(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
                assert lr.pixels.shape == (height // scale, width // scale, 3), (name, scale)
        for scale in BUNDLED_SCALES:
            stored = sorted(path.name for path in (root / "LR_bicubic" / f"X{scale}").iterdir())
            assert stored == sorted(f"{name}x{scale}.png" for name in names(split)), "no stray LR files"
    assert sorted(path.name for path in ASSETS.iterdir()) == ["SOURCES.json", "test", "train", "val"]


def test_every_hr_file_has_the_pixels_and_size_recorded_in_sources_json() -> None:
    for image in SOURCES["images"]:
        pixels = hr_pixels(image)
        assert [pixels.shape[1], pixels.shape[0]] == image["size"], image["name"]
        assert (pixels.ndim == 2) == (image["mode"] == "L"), image["name"]
        digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
        assert digest == image["pixels_sha256"], f"{image['file']} differs from SOURCES.json"


def test_sources_json_is_what_the_generator_writes_from_the_catalogue() -> None:
    catalogue = tool("bundled_photos")
    generator = tool("make_bundled")
    assert SOURCES["wheels"] == catalogue.WHEELS and SOURCES["excluded"] == catalogue.EXCLUDED
    assert [image["name"] for image in SOURCES["images"]] == [photo.name for photo in catalogue.PHOTOS]
    recorded = generator.sources_record(catalogue.PHOTOS, SOURCES["notices"])
    assert json.loads(json.dumps(recorded)) == SOURCES, "run: python tools/make_bundled.py --wheels <folder>"
    generator.check_catalogue(catalogue.PHOTOS)  # unique names and sources, sides, tier-B reasons


@pytest.mark.parametrize("split", ("train", "val", "test"))
def test_lr_files_are_matlab_bicubic_of_the_hr_files(split: str) -> None:
    root = bundled_root(split)
    for name in names(split):
        hr = read_image_uint8(root / "HR" / f"{name}.png")
        for scale in BUNDLED_SCALES:
            stored = read_image_uint8(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
            # The exact value before rounding; a value within float64 noise of k + 0.5 may round either way
            # on another CPU or BLAS (a CI machine rounded one such pixel of 'city' down), so only there
            # either neighbour is accepted; everywhere else the stored pixel is the rounding.
            exact = np.clip(imresize(modcrop(hr, scale).astype(np.float64) / 255.0, 1.0 / scale) * 255.0, 0, 255)
            tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-6
            stored = stored.astype(np.float64)
            assert np.all(np.abs(stored - exact) <= 0.5 + 1e-6), f"{name} x{scale}: a pixel is not a rounding"
            rounded = bicubic_degrade(hr, scale).astype(np.float64)
            np.testing.assert_array_equal(stored[~tie], rounded[~tie], err_msg=f"{name} x{scale}")
            assert tie.mean() < 0.01, f"{name} x{scale}: {tie.sum()} pixels at a rounding tie"  # not vacuous


def test_splits_are_disjoint_and_hold_no_near_duplicates() -> None:
    images = SOURCES["images"]
    assert len({image["name"] for image in images}) == len(images)
    assert len({image["sha256"] for image in images}) == len(images), "one source file, one photograph"
    assert len({(image["wheel"], image["member"]) for image in images}) == len(images)
    assert len({image["pixels_sha256"] for image in images}) == len(images)
    kodak = {image["split"] for image in images if image["licence"] == "kodak-unrestricted-use"}
    assert kodak == {"test"}, "every Kodak image is a test image"
    generator = tool("make_bundled")
    pixels = {image["name"]: hr_pixels(image) for image in images}
    assert generator.near_duplicates(pixels) == []
    # The check can fail: copies of a test photo that were re-scaled, shifted or cropped are caught.
    original = pixels["kodim19"]  # 504x384
    copies = {
        "rescaled": generator.resize_to(original, 252, 192),
        "shifted": generator.resize_to(original[12:-24, 24:-12], 360, 264),
        "cropped": original[:300, :396],
        "cropped_inside": original[60:300, 80:400],
    }
    for name, copy in copies.items():
        assert [pair[:2] for pair in generator.near_duplicates({"kodim19": original, name: copy})] == [
            tuple(sorted((name, "kodim19")))
        ], name


@pytest.mark.parametrize("split", BUNDLED_SPLITS)
def test_datasets_load_through_the_config_like_a_benchmark(split: str) -> None:
    whole = build_dataset(from_dict(DatasetConfig, {"kind": "bundled", "split": split}), 4, None, False)
    assert whole.name == f"bundled-{split}" and len(whole) == len(names(split))
    assert whole.sample_names == names(split)
    sample = whole[0]
    assert sample["gt"].shape[1:] == (sample["lq"].shape[1] * 4, sample["lq"].shape[2] * 4)
    assert sample["gt"].shape[0] == 3 and float(sample["gt"].min()) >= 0.0 and float(sample["gt"].max()) <= 1.0
    patches = build_dataset(DatasetConfig(kind="bundled", split=split, name="photos"), 3, 16, True)
    assert patches.name == "photos"
    assert patches[(1, 7)]["lq"].shape == (3, 16, 16) and patches[(1, 7)]["gt"].shape == (3, 48, 48)
    assert bundled_dataset(split, 2, lq_patch_size=None, augment=False).name == f"bundled-{split}"
    named = dataset_from_folder(f"bundled:{split}", 4, "sr")  # dckd test / dckd.evaluate
    assert named.name == f"bundled-{split}" and named.sample_names == names(split)


def test_bad_split_or_scale_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bundled split 'validation': expected one of train, val, test"):
        bundled_root("validation")
    with pytest.raises(ValueError, match="bundled split 'validation': expected one of train, val, test"):
        dataset_from_folder("bundled:validation", 4, "sr")
    with pytest.raises(ValueError, match="scale 8 is not stored; expected one of 2, 3, 4"):
        bundled_dataset("val", 8)
    with pytest.raises(ConfigError, match="split: 'validation' is not allowed; accepted values: 'train', 'val'"):
        from_dict(DatasetConfig, {"kind": "bundled", "split": "validation"})
    with pytest.raises(ConfigError, match="split: GoPro has the splits 'train' and 'test', not 'val'"):
        from_dict(DatasetConfig, {"kind": "gopro", "root": "GoPro", "split": "val"})


def test_every_image_is_credited_with_its_licence() -> None:
    required = {
        "name",
        "split",
        "wheel",
        "wheel_version",
        "member",
        "sha256",
        "pixels_sha256",
        "title",
        "author",
        "licence",
        "statement",
        "tier",
        "note",
        "changes",
        "file",
    }
    document = DOC.read_text(encoding="utf-8")
    notices = {name: notice["text"] for notice in SOURCES["notices"] for name in notice["applies_to"]}
    for image in SOURCES["images"]:
        assert required <= set(image), image["name"]
        assert image["statement"] and image["title"] and image["author"], image["name"]
        assert image["wheel_version"] == SOURCES["wheels"][image["wheel"]], image["name"]
        assert image["licence"] in {
            "public-domain",
            "CC0-1.0",
            "CC-BY-2.0",
            "MIT",
            "no-copyright-restrictions",
            "kodak-unrestricted-use",
        }, image["name"]
        assert image["tier"] in {"A", "B"} and (image["tier"] == "A" or "accepted by the maintainer" in image["note"])
        if image["licence"] == "CC-BY-2.0":  # attribution needs the author, the source and the licence link
            assert image["author"] and image["source_url"] and image["licence_url"]
        if image["licence"] == "MIT":  # the MIT notice 'shall be included in all copies'
            assert "Permission is hereby granted" in notices[image["name"]], image["name"]
        if image["licence"] == "kodak-unrestricted-use":  # Kodak is credited; a carrier's licence is not theirs
            assert image["author"] == "Eastman Kodak Company", image["name"]
            if image["wheel"] != "sporco":
                assert "only the carrier" in image["note"] and "PolyForm Noncommercial" in image["note"]
        if image["decoder"] == "exr":
            assert "tone-mapped" in image["changes"] and "x/(1+x)" in image["note"], image["name"]
        assert f"`{image['name']}`" in document and image["author"] in document, image["name"]
    assert set(notices) <= {image["name"] for image in SOURCES["images"]}
    assert SOURCES["excluded"], "the photographs left out are listed with a reason"
