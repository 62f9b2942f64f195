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
