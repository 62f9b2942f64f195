"""The bundled photographs: layout, sizes, MATLAB-bicubic LR files, credits, and loading through the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dckd.config.schema import DatasetConfig
from dckd.data import read_image_uint8
from dckd.data.bundled import BUNDLED_SCALES, BUNDLED_SPLITS, bundled_dataset, bundled_root
from dckd.data.image_io import decode_image
from dckd.data.imresize import bicubic_degrade
from dckd.engine.setup import build_dataset

ASSETS = Path(__file__).resolve().parent.parent / "dckd" / "assets" / "bundled"
SOURCES = json.loads((ASSETS / "SOURCES.json").read_text(encoding="utf-8"))
DOC = Path(__file__).resolve().parent.parent / "docs" / "bundled-photos.md"


def names(split: str) -> list[str]:
    return sorted(image["name"] for image in SOURCES["images"] if image["split"] == split)


def test_every_split_and_scale_has_the_benchmark_layout_with_exact_sizes() -> None:
    assert len(names("train")) >= 10 and len(names("test")) >= 4
    assert not set(names("train")) & set(names("test"))
    for split in BUNDLED_SPLITS:
        root = bundled_root(split)
        assert root == ASSETS / split
        assert sorted(path.stem for path in (root / "HR").glob("*.png")) == names(split)
        for name in names(split):
            hr = decode_image(root / "HR" / f"{name}.png")
            height, width = hr.pixels.shape[:2]
            assert hr.bit_depth == 8 and height % 12 == 0 and width % 12 == 0, name
            assert min(height, width) >= 168 and max(height, width) <= 480, name
            for scale in BUNDLED_SCALES:
                lr = decode_image(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
                assert lr.pixels.shape == (height // scale, width // scale, 3), (name, scale)
        for scale in BUNDLED_SCALES:
            stored = sorted(path.name for path in (root / "LR_bicubic" / f"X{scale}").iterdir())
            assert stored == sorted(f"{name}x{scale}.png" for name in names(split)), "no stray LR files"


@pytest.mark.parametrize("split, name", [("test", "text"), ("test", "kodim23"), ("train", "rocket")])
def test_lr_files_are_matlab_bicubic_of_the_hr_files(split: str, name: str) -> None:
    root = bundled_root(split)
    hr = read_image_uint8(root / "HR" / f"{name}.png")
    for scale in BUNDLED_SCALES:
        stored = read_image_uint8(root / "LR_bicubic" / f"X{scale}" / f"{name}x{scale}.png")
        np.testing.assert_array_equal(stored, bicubic_degrade(hr, scale), err_msg=f"{name} x{scale}")


@pytest.mark.parametrize("split", BUNDLED_SPLITS)
def test_datasets_load_through_the_config_like_a_benchmark(split: str) -> None:
    whole = build_dataset(DatasetConfig(kind="bundled", split=split), 4, None, False)
    assert whole.name == f"bundled-{split}" and len(whole) == len(names(split))
    assert whole.sample_names == names(split)
    sample = whole[0]
    assert sample["gt"].shape[1:] == (sample["lq"].shape[1] * 4, sample["lq"].shape[2] * 4)
    assert sample["gt"].shape[0] == 3 and float(sample["gt"].min()) >= 0.0 and float(sample["gt"].max()) <= 1.0
    patches = build_dataset(DatasetConfig(kind="bundled", split=split, name="photos"), 3, 16, True)
    assert patches.name == "photos"
    assert patches[(1, 7)]["lq"].shape == (3, 16, 16) and patches[(1, 7)]["gt"].shape == (3, 48, 48)
    assert bundled_dataset(split, 2, lq_patch_size=None, augment=False).name == f"bundled-{split}"


def test_bad_split_or_scale_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bundled split 'validation': expected one of train, test"):
        bundled_root("validation")
    with pytest.raises(ValueError, match="scale 8 is not stored; expected one of 2, 3, 4"):
        bundled_dataset("test", 8)


def test_every_image_is_credited_with_its_licence() -> None:
    required = {
        "name",
        "split",
        "wheel",
        "wheel_version",
        "member",
        "sha256",
        "title",
        "author",
        "licence",
        "statement",
        "changes",
        "file",
    }
    document = DOC.read_text(encoding="utf-8")
    for image in SOURCES["images"]:
        assert required <= set(image), image["name"]
        assert image["licence"] in {
            "public-domain",
            "CC0-1.0",
            "CC-BY-2.0",
            "no-copyright-restrictions",
            "kodak-unrestricted-use",
        }, image["name"]
        if image["licence"] == "CC-BY-2.0":  # attribution needs the author, the source and the licence link
            assert image["author"] and image["source_url"] and image["licence_url"]
        assert f"`{image['name']}`" in document and image["author"] in document, image["name"]
    assert SOURCES["excluded"], "the photographs left out are listed with a reason"
