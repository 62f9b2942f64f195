"""Reading and writing images: formats, bit depths, modes, alpha policy, failures, atomic writes."""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dckd.data import image_io
from dckd.data.image_io import decode_image, read_image, read_image_uint8, to_uint8, write_image
from dckd.errors import ImageReadError


def random_uint8(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def png16_bytes(pixels: np.ndarray, filters: list[int]) -> bytes:
    """A 16-bit PNG (gray, gray+alpha, RGB, RGBA by channel count) using the given row filters in turn.

    Written independently of the decoder under test, straight from the PNG specification.
    """
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bytes_per_pixel = 2 * channels
    previous = np.zeros(width * bytes_per_pixel, dtype=np.int64)
    rows = []
    for y in range(height):
        current = np.frombuffer(pixels[y].astype(">u2").tobytes(), dtype=np.uint8).astype(np.int64)
        left = np.concatenate([np.zeros(bytes_per_pixel, np.int64), current[:-bytes_per_pixel]])
        up_left = np.concatenate([np.zeros(bytes_per_pixel, np.int64), previous[:-bytes_per_pixel]])
        kind = filters[y % len(filters)]
        if kind == 0:
            out = current
        elif kind == 1:
            out = current - left
        elif kind == 2:
            out = current - previous
        elif kind == 3:
            out = current - ((left + previous) >> 1)
        else:
            estimate = left + previous - up_left
            a, b, c = np.abs(estimate - left), np.abs(estimate - previous), np.abs(estimate - up_left)
            out = current - np.where((a <= b) & (a <= c), left, np.where(b <= c, previous, up_left))
        rows.append(bytes([kind]) + (out & 255).astype(np.uint8).tobytes())
        previous = current

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def tiff16_bytes(pixels: np.ndarray, compression: int = 1) -> bytes:
    """A little-endian, one-strip, interleaved 16-bit RGB TIFF (compression 1 = none, 8 = deflate)."""
    height, width, channels = pixels.shape
    data = pixels.astype("<u2").tobytes()
    if compression == 8:
        data = zlib.compress(data)
    entry_count = 9
    bits_offset = 8 + 2 + 12 * entry_count + 4
    data_offset = bits_offset + 2 * channels
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, channels, bits_offset),
        (259, 3, 1, compression),
        (262, 3, 1, 2),
        (273, 4, 1, data_offset),
        (277, 3, 1, channels),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
    ]
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", entry_count)
    for tag, kind, count, value in entries:
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + struct.pack("<" + "H" * channels, *([16] * channels)) + data


# ---------------------------------------------------------------------------------------------------
# Formats and bit depths


@pytest.mark.parametrize("extension", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path, extension):
    pixels = random_uint8(7, 9)
    path = tmp_path / f"image{extension}"
    if extension == ".webp":
        Image.fromarray(pixels).save(path, lossless=True)
    else:
        Image.fromarray(pixels).save(path)
    image = read_image(path)
    assert image.dtype == np.float32 and image.shape == (7, 9, 3)
    np.testing.assert_array_equal(image, pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(read_image_uint8(path), pixels)


def test_jpeg_reads_as_pillow_decodes_it(tmp_path):
    path = tmp_path / "photo.JPG"
    Image.fromarray(random_uint8(16, 16)).save(path, quality=90)
    expected = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(read_image_uint8(path), expected)


def test_16bit_grayscale_png_keeps_precision_and_is_replicated(tmp_path):
    values = np.array([[0, 1, 257], [40000, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "depth16.png"
    Image.fromarray(values).save(path)
    decoded = decode_image(path)
    assert decoded.bit_depth == 16 and "grayscale" in decoded.conversion
    image = read_image(path)
    assert image.shape == (2, 3, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], values.astype(np.float32) / 65535)
    # 1 and 0 differ at 16 bits: precision is not cut to 8 bits.
    assert image[0, 1, 0] > 0


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_16bit_colour_png_keeps_precision_with_every_row_filter(tmp_path, channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 65536, (13, 11, channels)).astype(np.uint16)
    if channels in (2, 4):
        pixels[:, :, -1] = 65535  # opaque: the alpha channel is dropped
    path = tmp_path / "colour16.png"
    path.write_bytes(png16_bytes(pixels, filters=[0, 1, 2, 3, 4, 4, 3, 2, 1]))
    decoded = decode_image(path)
    assert decoded.bit_depth == 16
    colour = pixels[:, :, :3] if channels >= 3 else np.repeat(pixels[:, :, :1], 3, axis=2)
    np.testing.assert_array_equal(decoded.pixels, colour)
    # Independent check of the row unfiltering: Pillow's C decoder gives the high bytes.
    if channels in (3, 4):
        with Image.open(path) as reference:
            np.testing.assert_array_equal(np.asarray(reference)[:, :, :3], (colour >> 8).astype(np.uint8))


def test_16bit_rgba_png_with_transparency_is_an_error_unless_dropped(tmp_path):
    pixels = np.full((4, 4, 4), 30000, dtype=np.uint16)
    pixels[0, 0, 3] = 100
    path = tmp_path / "translucent16.png"
    path.write_bytes(png16_bytes(pixels, filters=[4]))
    with pytest.raises(ImageReadError, match="translucent16.png.*not fully opaque"):
        read_image(path)
    assert read_image(path, alpha="drop")[0, 0, 0] == pytest.approx(30000 / 65535)


def test_16bit_grayscale_transparency_key_is_not_ignored(tmp_path):
    values = np.array([[1000, 2000], [3000, 4000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "keyed16.png", transparency=2000)
    with pytest.raises(ImageReadError, match=r"keyed16\.png.*1 of 4 pixels"):
        read_image(tmp_path / "keyed16.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "keyed16.png", alpha="drop").pixels[:, :, 0], values)


def test_16bit_rgb_tiff_keeps_precision(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    path = tmp_path / "scan.tiff"
    path.write_bytes(tiff16_bytes(pixels))
    np.testing.assert_array_equal(decode_image(path).pixels, pixels)


def test_compressed_16bit_rgb_tiff_is_refused_rather_than_cut_to_8_bits(tmp_path):
    path = tmp_path / "deflate16.tif"
    path.write_bytes(tiff16_bytes(np.zeros((4, 4, 3), dtype=np.uint16), compression=8))
    with pytest.raises(ImageReadError, match="deflate16.tif.*16-bit colour TIFF"):
        read_image(path)


# ---------------------------------------------------------------------------------------------------
# Modes


def test_grayscale_and_bilevel_are_replicated(tmp_path):
    gray = random_uint8(5, 4, 1)[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "gray.png"), np.repeat(gray[:, :, None], 3, axis=2))
    Image.fromarray(gray > 128).save(tmp_path / "bilevel.png")
    bilevel = read_image(tmp_path / "bilevel.png")
    np.testing.assert_array_equal(bilevel[:, :, 1], (gray > 128).astype(np.float32))


def test_opaque_rgba_drops_alpha_and_transparent_rgba_names_the_file(tmp_path):
    pixels = random_uint8(4, 4, 4)
    pixels[:, :, 3] = 255
    Image.fromarray(pixels).save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "opaque.png"), pixels[:, :, :3])
    assert decode_image(tmp_path / "opaque.png").conversion == "opaque alpha dropped"

    pixels[2, 1, 3] = 0
    Image.fromarray(pixels).save(tmp_path / "cutout.png")
    with pytest.raises(ImageReadError, match=r"cutout\.png.*1 of 16 pixels.*alpha='drop'"):
        read_image(tmp_path / "cutout.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "cutout.png", alpha="drop"), pixels[:, :, :3])
    with pytest.raises(ValueError, match="alpha must be one of"):
        read_image(tmp_path / "cutout.png", alpha="composite")


def test_gray_alpha_palette_and_palette_transparency(tmp_path):
    gray_alpha = np.stack([random_uint8(3, 3, 1)[:, :, 0], np.full((3, 3), 255, np.uint8)], axis=2)
    Image.fromarray(gray_alpha, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "la.png")[:, :, 2], gray_alpha[:, :, 0])

    rgb = random_uint8(6, 5)
    palette_image = Image.fromarray(rgb).quantize(colors=8)
    palette_image.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "palette.png"), np.asarray(palette_image.convert("RGB")))

    palette_image.save(tmp_path / "palette_transparent.png", transparency=0)
    if (np.asarray(palette_image) == 0).any():
        with pytest.raises(ImageReadError, match="palette_transparent.png.*not fully opaque"):
            read_image(tmp_path / "palette_transparent.png")


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = Image.fromarray(random_uint8(8, 8, 4), mode="CMYK")
    cmyk.save(tmp_path / "print.jpg")
    decoded = decode_image(tmp_path / "print.jpg")
    assert decoded.source_mode == "CMYK" and decoded.pixels.shape == (8, 8, 3)
    with Image.open(tmp_path / "print.jpg") as reference:
        np.testing.assert_array_equal(decoded.pixels, np.asarray(reference.convert("RGB")))


def test_exif_orientation_is_not_applied(tmp_path):
    pixels = random_uint8(4, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    assert read_image(tmp_path / "rotated.jpg").shape == (4, 10, 3)


def test_non_ascii_file_names(tmp_path):
    path = tmp_path / "données" / "画像_ü.png"
    pixels = random_uint8(3, 3)
    write_image(path, pixels)
    np.testing.assert_array_equal(read_image_uint8(path), pixels)


# ---------------------------------------------------------------------------------------------------
# Failures: each names the file and the reason


def write_valid_png(path: Path, size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(random_uint8(size, size)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_failures_name_the_file_and_the_reason(tmp_path):
    cases = {}
    cases["missing.png"] = "does not exist"
    (tmp_path / "empty.png").write_bytes(b"")
    cases["empty.png"] = "empty"
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    cases["notes.png"] = "not a recognised image"
    data = write_valid_png(tmp_path / "full.png", size=64)
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    cases["truncated.png"] = "truncated or corrupt"
    buffer = io.BytesIO()
    Image.fromarray(random_uint8(64, 64)).save(buffer, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    cases["truncated.jpg"] = "truncated or corrupt"
    (tmp_path / "folder.png").mkdir()
    cases["folder.png"] = "folder"
    for name, reason in cases.items():
        with pytest.raises(ImageReadError) as raised:
            read_image(tmp_path / name)
        assert name in str(raised.value) and reason in str(raised.value), str(raised.value)
        assert raised.value.path == tmp_path / name


def test_unsupported_mode_names_the_file(tmp_path):
    Image.fromarray(np.zeros((3, 3), dtype=np.float32), mode="F").save(tmp_path / "float.tif")
    with pytest.raises(ImageReadError, match=r"float\.tif.*unsupported pixel mode 'F'"):
        read_image(tmp_path / "float.tif")


def test_pixel_limit_replaces_pillows_decompression_bomb_guard(tmp_path, monkeypatch):
    write_valid_png(tmp_path / "big.png", size=40)  # 1600 pixels
    # Pillow would refuse anything above 2 * 100 pixels with DecompressionBombError.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert read_image(tmp_path / "big.png", max_pixels=1600).shape == (40, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 100  # the process-wide setting is restored
    with pytest.raises(ImageReadError, match=r"big\.png.*1600 pixels exceeds the limit of 1599"):
        read_image(tmp_path / "big.png", max_pixels=1599)


def test_read_error_survives_dataloader_reraise_and_pickling():
    error = ImageReadError("/data/0001.png", "the file is empty (0 bytes)")
    message = str(error)
    assert "/data/0001.png" in message and "empty" in message
    # DataLoader re-raises worker errors as type(error)(message); pickling does the same.
    assert str(ImageReadError(message)) == message
    assert str(pickle.loads(pickle.dumps(error))) == message
    assert isinstance(error, image_io.DatasetError)


# ---------------------------------------------------------------------------------------------------
# Writing


def test_write_rounds_like_tensor2img_and_accepts_every_layout(tmp_path):
    tensor = torch.rand(3, 5, 6)
    tensor[0, 0, 0], tensor[1, 0, 0] = -0.3, 1.7  # clamped
    expected = (tensor.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    for name, image in {
        "chw.png": tensor,
        "batch.png": tensor[None],
        "hwc.png": tensor.permute(1, 2, 0).numpy(),
        "uint8.png": expected,
    }.items():
        write_image(tmp_path / name, image)
        np.testing.assert_array_equal(read_image_uint8(tmp_path / name), expected, err_msg=name)
    write_image(tmp_path / "gray.png", expected[:, :, 0])
    assert Image.open(tmp_path / "gray.png").mode == "L"
    # Round half to even, as torch.round in tensor2img: 0.5 -> 0, 1.5 -> 2.
    halves = np.array([[0.5, 1.5, 2.5]], dtype=np.float64)[:, :, None].repeat(3, axis=2) / 255
    np.testing.assert_array_equal(to_uint8(halves)[0, :, 0], [0, 2, 2])


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    original = random_uint8(4, 4)
    write_image(path, original)

    def failing_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, random_uint8(4, 4, seed=1))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image_uint8(path), original)  # the old file is intact
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["out.png"]  # no temporary file left
    with pytest.raises(ValueError, match="unknown image extension"):
        write_image(tmp_path / "out.xyz", original)
