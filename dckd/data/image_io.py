"""Reading and writing images: one explicit policy for every format, mode and failure.

Every image enters the pipeline as an ``(H, W, 3)`` RGB array. How each stored form gets there is
decided here and nowhere else:

- 8-bit images are divided by 255, 16-bit PNG/TIFF by 65535 (their precision is kept; Pillow alone
  would silently cut 16-bit colour PNG/TIFF to 8 bits, so those are decoded by this module).
- Grayscale (``1``, ``L``, 16-bit ``I;16``) is replicated to three channels.
- Palette (``P``), ``CMYK`` (Pillow's plain conversion, no ICC colour management), ``YCbCr`` and
  ``RGBX`` are converted to RGB explicitly.
- An alpha channel (``RGBA``, ``LA``, ``PA``, a palette or colour-key transparency) is dropped when
  every pixel is fully opaque. A transparent pixel is an error naming the file, because the colour
  under a transparent pixel is arbitrary and would be learned as content; ``alpha="drop"`` keeps the
  stored colours and ignores the alpha explicitly.
- EXIF orientation is NOT applied: pixels are used as stored. Benchmark and training files are
  stored upright, and an LR/HR pair must stay aligned even if only one of the two carries an
  orientation tag (rotating one of them would silently misalign the pair).
- Multi-frame files (animated WebP, multi-page TIFF) give their first frame.

Writing (``write_image``, ``image_encoder``): 8-bit PNG/JPEG/... of RGB or grayscale images, or 16-bit PNG
(RGB or grayscale, encoded here); always atomically, and without replacing an existing file when asked.

Every failure (missing, empty, truncated, not an image, unsupported mode, too large) raises
``ImageReadError`` whose message names the file and the reason. Pillow's decompression-bomb guard is
replaced by the explicit ``max_pixels`` argument (see ``DEFAULT_MAX_PIXELS``).

Note: if some other code sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` process-wide, Pillow pads
truncated files instead of failing, and this module cannot tell.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dckd.errors import DatasetError, ImageReadError
from dckd.files.weights import atomic_write

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DatasetError",
    "DecodedImage",
    "ImageReadError",
    "decode_image",
    "image_encoder",
    "read_image",
    "read_image_uint8",
    "to_uint8",
    "to_uint16",
    "write_image",
]

# A 16384 x 16384 image: 3 GiB as float32 RGB. Far above any training or benchmark image (DIV2K is
# 2040 x 1356, 8K frames are 33M pixels) and above Pillow's default guard (89M pixels, which stops
# some legitimate panoramas), yet it still stops a malicious header claiming billions of pixels
# before any memory is allocated.
DEFAULT_MAX_PIXELS = 16384 * 16384

ALPHA_POLICIES = ("error", "drop")

# Pillow's guard is a process-wide setting read inside ``Image.open``; it is switched off only while
# this module parses a header (under this lock) and our own ``max_pixels`` check runs right after.
_PILLOW_GUARD_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An image as stored, before scaling to [0, 1]."""

    pixels: np.ndarray
    """``(H, W, 3)`` uint8 (8-bit sources) or uint16 (16-bit sources), RGB."""
    bit_depth: int
    """8 or 16: the divisor to reach [0, 1] is ``2**bit_depth - 1``."""
    source_mode: str
    """How the file stored the pixels (Pillow's mode, or e.g. ``RGB;16`` for 16-bit colour)."""
    conversion: str | None
    """What was done to reach RGB (``"grayscale replicated"``, ``"opaque alpha dropped"``, ...), or None."""
    grayscale: bool = False
    """The file stored one colour channel (gray, with or without alpha), replicated to the three here."""


def decode_image(path: str | os.PathLike, alpha: str = "error", max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Fully decode an image file to RGB pixels at their stored precision (see the module docstring).

    Args:
        path: the file.
        alpha: ``"error"`` (a transparent pixel is an error) or ``"drop"`` (ignore the alpha channel).
        max_pixels: the largest ``width * height`` accepted, checked on the header before decoding.

    Raises:
        ImageReadError: naming the file and the reason, for every failure.
    """
    if alpha not in ALPHA_POLICIES:
        raise ValueError(f"alpha must be one of {ALPHA_POLICIES}, got {alpha!r}")
    path = Path(path)
    try:
        size_bytes = path.stat().st_size
    except FileNotFoundError:
        raise ImageReadError(path, "the file does not exist") from None
    except OSError as error:
        raise ImageReadError(path, f"cannot access the file ({error.strerror or error})") from None
    if path.is_dir():
        raise ImageReadError(path, "this is a folder, not an image file")
    if size_bytes == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")

    try:
        with _PILLOW_GUARD_LOCK:
            saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                image = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved_limit
    except UnidentifiedImageError:
        raise ImageReadError(
            path, "not a recognised image (PNG, JPEG, BMP, TIFF or WebP) or a corrupt header"
        ) from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except Exception as error:  # Pillow's header parsers raise assorted types (OSError, SyntaxError, ...).
        raise ImageReadError(path, f"truncated or corrupt image header ({type(error).__name__}: {error})") from None

    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageReadError(
                path,
                f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} pixels "
                "(raise max_pixels if this image is legitimate)",
            )
        if width == 0 or height == 0:
            raise ImageReadError(path, f"the image has no pixels ({width}x{height})")
        try:
            return _decode_opened(path, image, alpha)
        except ImageReadError:
            raise
        except MemoryError:
            raise
        except Exception as error:
            raise ImageReadError(path, f"truncated or corrupt image data ({type(error).__name__}: {error})") from None


def read_image(path: str | os.PathLike, alpha: str = "error", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` float32 RGB array in [0, 1] (arguments as ``decode_image``)."""
    decoded = decode_image(path, alpha=alpha, max_pixels=max_pixels)
    return decoded.pixels.astype(np.float32) / np.float32(2**decoded.bit_depth - 1)


def read_image_uint8(path: str | os.PathLike, alpha: str = "error", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB, as metrics expect (16-bit values are rounded to 8 bits)."""
    decoded = decode_image(path, alpha=alpha, max_pixels=max_pixels)
    if decoded.bit_depth == 8:
        return decoded.pixels
    return np.floor(decoded.pixels.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)


def write_image(
    path: str | os.PathLike, image: np.ndarray | torch.Tensor, bit_depth: int = 8, overwrite: bool = True
) -> None:
    """Write an image atomically (a temporary file in the same folder, fsync, then a rename).

    Args:
        path: the destination; the format follows the extension (normally ``.png``). Missing parent
            folders are created.
        image: ``(H, W, 3)`` / ``(H, W, 1)`` / ``(H, W)`` float in [0, 1] or uint8, or a ``(C, H, W)`` /
            ``(1, C, H, W)`` tensor in [0, 1], C 3 (RGB) or 1 (grayscale). For 8 bits, floats are clamped to
            [0, 1], multiplied by 255 and rounded (half to even), as BasicSR's ``tensor2img`` does, so saved
            outputs give the same PSNR as the literature's.
        bit_depth: 8, or 16 (PNG only: values x 65535, rounded; RGB or grayscale, written by this module
            because Pillow has no 16-bit colour mode).
        overwrite: False refuses to replace an existing file (``FileExistsError``), also one created while
            the image was being encoded.
    """
    atomic_write(path, image_encoder(path, image, bit_depth), overwrite=overwrite)


def image_encoder(
    path: str | os.PathLike, image: np.ndarray | torch.Tensor, bit_depth: int = 8
) -> Callable[[Path], None]:
    """A function that writes ``image`` (see ``write_image``) to a given file in the format ``path``'s
    extension names: what an atomic writer (``dckd.files.outputs.OutputPlan.write``) calls on its temporary
    file. Conversions and checks happen here, before anything is written."""
    path = Path(path)
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"cannot write '{path}': unknown image extension {path.suffix!r} (use .png)")
    if bit_depth == 16:
        if image_format != "PNG":
            raise ValueError(f"cannot write '{path}': 16-bit images are written as PNG (use .png)")
        encoded = _encode_png16(to_uint16(image))
        return lambda destination: destination.write_bytes(encoded)
    if bit_depth != 8:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    pixels = to_uint8(image)

    def encode(destination: Path) -> None:
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(destination, format=image_format)

    return encode


def to_uint16(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float image in [0, 1] (see ``write_image``) as ``(H, W, C)`` uint16: clamped, x 65535, rounded."""
    if torch.is_tensor(image):
        tensor = image.detach().cpu().float()
        if tensor.dim() == 4:
            tensor = tensor[0]
        array = tensor.permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.dtype == np.uint16:
            return array
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"expected a float image in [0, 1] or uint16, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {array.shape}")
    return np.round(np.clip(array.astype(np.float64), 0, 1) * 65535.0).astype(np.uint16)


def _encode_png16(pixels: np.ndarray) -> bytes:
    """A 16-bit grayscale (C = 1) or RGB (C = 3) PNG of ``(H, W, C)`` uint16 pixels (PNG spec: filter 0 rows)."""
    height, width, channels = pixels.shape
    rows = np.ascontiguousarray(pixels.astype(">u2")).reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert an image (see ``write_image``) to an ``(H, W, C)`` uint8 array, rounding like ``tensor2img``."""
    if torch.is_tensor(image):
        tensor = image.detach().cpu()
        if tensor.dim() == 4:
            if tensor.shape[0] != 1:
                raise ValueError(f"expected a single image, got a batch of shape {tuple(tensor.shape)}")
            tensor = tensor[0]
        if tensor.dim() != 3:
            raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(tensor.shape)}")
        if tensor.dtype == torch.uint8:
            return tensor.permute(1, 2, 0).contiguous().numpy()
        tensor = (tensor.float().clamp(0, 1) * 255.0).round()
        return tensor.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"expected a float image in [0, 1] or uint8, got dtype {array.dtype}")
    return np.round(np.clip(array.astype(np.float32), 0, 1) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------
# Decoding by mode


def _decode_opened(path: Path, image: Image.Image, alpha: str) -> DecodedImage:
    mode = image.mode
    rawmode = _first_tile_rawmode(image)
    png16_gray_with_key = image.format == "PNG" and mode.startswith("I;16") and image.has_transparency_data
    if (";16" in rawmode and mode in ("RGB", "RGBA", "LA")) or png16_gray_with_key:
        # 16-bit colour (or gray + alpha): Pillow would return 8-bit pixels, so decode ourselves; and
        # Pillow ignores the transparency key of 16-bit gray, which the alpha policy must see.
        if image.format == "PNG":
            pixels, source = _decode_png16(path)
        elif image.format == "TIFF":
            pixels, source = _decode_raw_tiff16(path, image, rawmode)
        else:
            raise ImageReadError(path, f"16-bit colour {image.format} is not supported (save it as 16-bit PNG)")
        return _finish(path, pixels, 16, source, alpha)

    image.load()  # Full decode: truncated data fails here, not later during training.
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        pixels = np.asarray(image).astype(np.uint16)[:, :, None]
        return _finish(path, pixels, 16, mode, alpha)
    if mode == "1":
        return _finish(path, np.asarray(image.convert("L"))[:, :, None], 8, mode, alpha)
    if mode in ("L", "RGB", "P") and image.has_transparency_data:
        return _finish(path, np.asarray(image.convert("RGBA")), 8, mode + "+transparency", alpha)
    if mode == "L":
        return _finish(path, np.asarray(image)[:, :, None], 8, mode, alpha)
    if mode in ("LA", "RGB", "RGBA"):
        return _finish(path, np.asarray(image), 8, mode, alpha)
    if mode in ("PA", "RGBa", "La"):
        return _finish(path, np.asarray(image.convert("RGBA")), 8, mode, alpha)
    if mode in ("P", "CMYK", "YCbCr", "RGBX"):
        return _finish(path, np.asarray(image.convert("RGB")), 8, mode, alpha)
    raise ImageReadError(
        path, f"unsupported pixel mode {mode!r} (supported: 8-bit gray/RGB/RGBA/palette/CMYK, 16-bit gray/RGB/RGBA)"
    )


def _finish(path: Path, pixels: np.ndarray, bit_depth: int, source_mode: str, alpha: str) -> DecodedImage:
    """Turn 1-4 channel pixels into RGB, applying the alpha policy."""
    channels = pixels.shape[2]
    conversions = []
    if channels in (2, 4):
        opacity = pixels[:, :, -1]
        full = 2**bit_depth - 1
        transparent = int(np.count_nonzero(opacity != full))
        if transparent and alpha == "error":
            raise ImageReadError(
                path,
                f"{transparent} of {opacity.size} pixels are not fully opaque; the colour under transparent "
                "pixels is arbitrary (pass alpha='drop' to ignore the alpha channel explicitly)",
            )
        conversions.append("transparent alpha dropped" if transparent else "opaque alpha dropped")
        pixels = pixels[:, :, :-1]
        channels -= 1
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
        conversions.append("grayscale replicated to RGB")
    elif source_mode.startswith(("P", "CMYK", "YCbCr")):
        conversions.append(f"{source_mode} converted to RGB")
    if bit_depth == 16:
        conversions.append("16-bit")
    return DecodedImage(
        np.ascontiguousarray(pixels), bit_depth, source_mode, ", ".join(conversions) or None, grayscale=channels == 1
    )


def _first_tile_rawmode(image: Image.Image) -> str:
    tiles = getattr(image, "tile", None) or []
    if not tiles:
        return ""
    arguments = tiles[0][3]
    if isinstance(arguments, tuple) and arguments and isinstance(arguments[0], str):
        return arguments[0]
    return arguments if isinstance(arguments, str) else ""


def _decode_png16(path: Path) -> tuple[np.ndarray, str]:
    """Decode a 16-bit gray+alpha / RGB / RGBA PNG at full precision (PNG spec, non-interlaced).

    Pillow has no 16-bit colour mode. The PNG row filters (Sub, Up, Average, Paeth) are undone along
    anti-diagonals: pixel (y, x) depends on (y, x-1), (y-1, x) and (y-1, x-1), all on earlier diagonals,
    so each diagonal is one vectorised step (H + W steps; about a second for a 2K image).
    """
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ImageReadError(path, "not a PNG file")
    position, header, transparency, compressed = 8, None, None, []
    while True:
        if position + 8 > len(data):
            raise ImageReadError(path, "truncated PNG (the file ends before the IEND chunk)")
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunk = data[position + 8 : position + 8 + length]
        if len(chunk) != length:
            raise ImageReadError(path, f"truncated PNG (chunk {kind!r} is cut short)")
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"tRNS":
            transparency = chunk
        elif kind == b"IDAT":
            compressed.append(chunk)
        elif kind == b"IEND":
            break
    if header is None:
        raise ImageReadError(path, "PNG without an IHDR chunk")
    width, height, bit_depth, color_type, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color_type)
    if bit_depth != 16 or channels is None:
        raise ImageReadError(path, f"unexpected PNG bit depth {bit_depth} / colour type {color_type}")
    if interlace:
        raise ImageReadError(path, "interlaced (Adam7) 16-bit colour PNG is not supported; save it non-interlaced")
    try:
        raw = zlib.decompress(b"".join(compressed))
    except zlib.error as error:
        raise ImageReadError(path, f"truncated or corrupt PNG data ({error})") from None
    bytes_per_pixel = 2 * channels
    row_bytes = 1 + width * bytes_per_pixel
    if len(raw) != height * row_bytes:
        raise ImageReadError(path, f"truncated PNG data ({len(raw)} bytes decoded, {height * row_bytes} expected)")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, row_bytes)
    filter_types = rows[:, 0].astype(np.int32)
    if filter_types.max(initial=0) > 4:
        raise ImageReadError(path, "corrupt PNG data (unknown row filter)")
    filtered = rows[:, 1:].reshape(height, width, bytes_per_pixel).astype(np.int32)
    pixels_bytes = _unfilter_png(filtered, filter_types)
    pixels = (pixels_bytes[:, :, 0::2].astype(np.uint16) << 8) | pixels_bytes[:, :, 1::2].astype(np.uint16)
    if transparency is not None and channels in (1, 3) and len(transparency) == 2 * channels:
        # Colour-key transparency: pixels equal to the key are fully transparent.
        key = np.frombuffer(transparency, dtype=">u2").astype(np.uint16)
        opaque = ~np.all(pixels == key, axis=2)
        pixels = np.concatenate([pixels, np.where(opaque, 65535, 0).astype(np.uint16)[:, :, None]], axis=2)
    return pixels, {1: "I;16", 2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[channels]


def _unfilter_png(filtered: np.ndarray, filter_types: np.ndarray) -> np.ndarray:
    """Undo PNG row filters. ``filtered`` is ``(H, W, bytes_per_pixel)`` int32; returns uint8."""
    height, width, _ = filtered.shape
    if not filter_types.any():
        return filtered.astype(np.uint8)
    # One zero row above and one zero column to the left: the PNG spec's "outside the image is 0".
    raw = np.zeros((height + 1, width + 1, filtered.shape[2]), dtype=np.int32)
    for diagonal in range(height + width - 1):
        ys = np.arange(max(0, diagonal - width + 1), min(height - 1, diagonal) + 1)
        xs = diagonal - ys
        left, up, up_left = raw[ys + 1, xs], raw[ys, xs + 1], raw[ys, xs]
        estimate = left + up - up_left
        distance_left, distance_up, distance_up_left = (
            np.abs(estimate - left),
            np.abs(estimate - up),
            np.abs(estimate - up_left),
        )
        paeth = np.where(
            (distance_left <= distance_up) & (distance_left <= distance_up_left),
            left,
            np.where(distance_up <= distance_up_left, up, up_left),
        )
        kind = filter_types[ys][:, None]
        prediction = np.select(
            [kind == 1, kind == 2, kind == 3, kind == 4], [left, up, (left + up) >> 1, paeth], default=0
        )
        raw[ys + 1, xs + 1] = (filtered[ys, xs] + prediction) & 255
    return raw[1:, 1:].astype(np.uint8)


def _decode_raw_tiff16(path: Path, image: Image.Image, rawmode: str) -> tuple[np.ndarray, str]:
    """Read an uncompressed, interleaved 16-bit colour TIFF from the strips Pillow located."""
    channels = {"RGB": 3, "RGBA": 4, "LA": 2}[image.mode]
    byte_order = {"L": "<", "B": ">"}.get(rawmode[-1])
    if byte_order is None or not rawmode.startswith(image.mode + ";16") or any(t[0] != "raw" for t in image.tile):
        compression = image.info.get("compression", "unknown")
        raise ImageReadError(
            path,
            f"16-bit colour TIFF with compression {compression!r} / layout {rawmode!r} cannot be read at full "
            "precision; save it as 16-bit PNG or uncompressed TIFF",
        )
    width, height = image.size
    pixels = np.empty((height, width, channels), dtype=np.uint16)
    with open(path, "rb") as file:
        for _, extents, offset, _ in image.tile:
            left, top, right, bottom = extents
            count = (right - left) * (bottom - top) * channels
            file.seek(offset)
            strip = np.frombuffer(file.read(2 * count), dtype=byte_order + "u2")
            if strip.size != count:
                raise ImageReadError(path, "truncated TIFF data (a strip is cut short)")
            pixels[top:bottom, left:right] = strip.reshape(bottom - top, right - left, channels)
    return pixels, image.mode + ";16"
