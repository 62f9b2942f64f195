"""Padding an image to a multiple of a size (window, downsampling levels) before a network, cropped back after.

While a network is traced or exported (``exporting()``), padding is computed with tensor ops instead of Python
branches on the size (``pad_indices``), so that an exported graph pads every input size correctly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def exporting() -> bool:
    """True while the network is traced (``torch.jit.trace``, the TorchScript-based ONNX exporter) or captured by
    ``torch.export`` (the dynamo ONNX exporter): Python branches on a tensor's size must then be written as tensor
    ops, or the example input's size is baked into the exported graph. False in eager mode and under
    ``torch.compile`` (training keeps the eager code)."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def pad_indices(size, pad, device: torch.device, too_short: str = "replicate") -> torch.Tensor:
    """(size + pad,) int64 source indices that pad a side of length ``size`` by ``pad`` at its end by reflection,
    computed with tensor ops only (``size`` and ``pad`` may be traced or symbolic sizes).

    Reflection is the periodic triangle 0, 1, .., size-1, size-2, .., 1, 0, 1, ..., which equals
    ``F.pad(mode="reflect")`` when pad < size and the repeated reflection of the padded image beyond that.
    When pad >= size, ``too_short="replicate"`` repeats the last pixel instead (``pad_to_multiple``) and
    ``too_short="reflect"`` keeps reflecting (Restormer's ``reflect_pad_bottom_right``); a side of one pixel is
    replicated either way.
    """
    if too_short not in ("replicate", "reflect"):
        raise ValueError(f"too_short={too_short!r}: expected 'replicate' or 'reflect'")
    positions = torch.arange(size + pad, device=device)
    zero = torch.zeros(1, dtype=torch.long, device=device)  # (1,): the size arithmetic stays in the graph
    period = (zero + (2 * size - 2)).clamp(min=1)
    phase = torch.remainder(positions, period)
    reflected = torch.where(phase < size, phase, period - phase)
    if too_short == "reflect":
        return reflected
    replicated = torch.minimum(positions, zero + (size - 1))
    return torch.where((zero + pad) < size, reflected, replicated)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of (N, C, H, W) ``image`` so H and W become multiples of ``multiple``.

    Reflection padding (as the official SwinIR repository's ``check_image_size``) keeps image statistics
    near the border; it needs the pad to be smaller than the side, so a side that needs a pad of at least
    its own length (tiny inputs, e.g. 3 pixels padded to 8) is replicate-padded instead. Returns the image
    unchanged (the same tensor) when both sides are already multiples.
    """
    height, width = image.shape[-2:]
    pad_height = (multiple - height % multiple) % multiple
    pad_width = (multiple - width % multiple) % multiple
    if exporting():  # the same values as below, without branches on the size
        image = image.index_select(-1, pad_indices(width, pad_width, image.device))
        return image.index_select(-2, pad_indices(height, pad_height, image.device))
    if pad_height == 0 and pad_width == 0:
        return image
    # F.pad pads the last dimension first: (left, right, top, bottom). Pad each side separately so that a
    # side which can be reflected is reflected even when the other one must be replicated.
    if pad_width:
        mode = "reflect" if pad_width < width else "replicate"
        image = F.pad(image, (0, pad_width, 0, 0), mode=mode)
    if pad_height:
        mode = "reflect" if pad_height < height else "replicate"
        image = F.pad(image, (0, 0, 0, pad_height), mode=mode)
    return image


def pad_bottom_right(image: torch.Tensor, pad_height: int, pad_width: int) -> torch.Tensor:
    """Pad the bottom of (N, C, H, W) ``image`` by ``pad_height`` rows and its right by ``pad_width`` columns.

    Reflection as far as it reaches (side - 1 pixels), replication for the rest, as spandrel's own call does
    (so a network spandrel loaded sees the same pixels under dckd as in chaiNNer). Returns ``image`` itself
    when both pads are 0.
    """
    if pad_height < 0 or pad_width < 0:
        raise ValueError(f"pads must be >= 0, got height {pad_height}, width {pad_width}")
    height, width = image.shape[-2:]
    reflect_height, reflect_width = min(pad_height, height - 1), min(pad_width, width - 1)
    if reflect_height or reflect_width:
        image = F.pad(image, (0, reflect_width, 0, reflect_height), mode="reflect")
    if pad_height > reflect_height or pad_width > reflect_width:
        image = F.pad(image, (0, pad_width - reflect_width, 0, pad_height - reflect_height), mode="replicate")
    return image
