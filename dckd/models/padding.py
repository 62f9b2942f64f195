"""Padding an image to a multiple of a size (window, downsampling levels) before a network, cropped back after."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
