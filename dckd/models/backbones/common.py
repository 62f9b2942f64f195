"""Small blocks shared by the super-resolution backbones (SwinIR, RCAN, EDSR).

- ``Upsample``: the BasicSR pixel-shuffle upsampler (conv + PixelShuffle per factor of 2, or one x3 step);
  its sub-module indices (``upsample.0``, ``upsample.2``, ...) are those of BasicSR checkpoints.
- ``mean_tensor``: the dataset RGB mean as a (1, C, 1, 1) tensor, which every network here subtracts before
  the first conv and adds back after the last.
- ``drop_mean_shift``: check and remove the ``sub_mean``/``add_mean`` 1x1 convs that EDSR-PyTorch style
  checkpoints (official EDSR and RCAN releases) carry, since our networks compute the mean shift directly;
  ``mean_shift_state_dict`` writes them (the inverse, for files in the official layout).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from dckd.models import sizes
from dckd.models.padding import pad_to_multiple

__all__ = [
    "DIV2K_RGB_MEAN",
    "Upsample",
    "check_pixel_shuffle_scale",
    "drop_mean_shift",
    "mean_shift_state_dict",
    "mean_tensor",
    "pad_to_multiple",
]

DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
"""Mean RGB value of the DIV2K training set in [0, 1], the ``rgb_mean`` default of BasicSR and EDSR-PyTorch."""


def is_power_of_two(value: int) -> bool:
    return value >= 1 and (value & (value - 1)) == 0


def check_pixel_shuffle_scale(scale: int, option: str = "upscale") -> None:
    """Raise unless ``scale`` is one the step-wise pixel-shuffle upsampler supports (2**n or 3)."""
    if not isinstance(scale, int) or isinstance(scale, bool) or not (is_power_of_two(scale) or scale == 3):
        raise ValueError(f"{option}={scale!r} is not supported: expected a power of two (1, 2, 4, 8, ...) or 3")


def check_cnn_arguments(
    num_in_ch: int, num_out_ch: int, num_feat: int, res_scale: float, img_range: float, rgb_mean: Sequence[float]
) -> None:
    """The arguments EDSR and RCAN share, checked before anything is built (``dckd.models.sizes``)."""
    sizes.integer("num_in_ch", num_in_ch)
    sizes.integer("num_out_ch", num_out_ch)
    sizes.integer("num_feat", num_feat)
    sizes.number("res_scale", res_scale)
    sizes.number("img_range", img_range, above=0)
    if isinstance(rgb_mean, (str, bytes)) or not isinstance(rgb_mean, Sequence) or not rgb_mean:
        raise ValueError(f"rgb_mean={rgb_mean!r}: expected a list of numbers")
    for value in rgb_mean:
        sizes.number("rgb_mean", value)


class Upsample(nn.Sequential):
    """Pixel-shuffle upsampler of BasicSR: ``log2(scale)`` x [conv 3x3 -> 4C, PixelShuffle(2)], or for x3
    one [conv 3x3 -> 9C, PixelShuffle(3)].

    Input (N, num_feat, H, W) -> output (N, num_feat, scale*H, scale*W).
    """

    def __init__(self, scale: int, num_feat: int) -> None:
        check_pixel_shuffle_scale(scale, "scale")
        layers: list[nn.Module] = []
        if is_power_of_two(scale):
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        else:  # scale == 3
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        super().__init__(*layers)


def mean_tensor(rgb_mean: Sequence[float], num_in_ch: int, num_out_ch: int) -> torch.Tensor:
    """The per-channel mean as a (1, C, 1, 1) float32 tensor.

    It is subtracted from the (num_in_ch channel) input and added to the (num_out_ch channel) output, so it
    must broadcast with both: C is 1, or C equals both channel counts.
    """
    values = [float(value) for value in rgb_mean]
    if len(values) != 1 and not (len(values) == num_in_ch == num_out_ch):
        raise ValueError(
            f"rgb_mean has {len(values)} values but the network has num_in_ch={num_in_ch}, num_out_ch={num_out_ch}:"
            " expected one value, or one per channel with num_in_ch == num_out_ch"
        )
    return torch.tensor(values, dtype=torch.float32).view(1, len(values), 1, 1)


def drop_mean_shift(
    state_dict: Mapping[str, torch.Tensor], img_range: float, rgb_mean: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Return ``state_dict`` without the EDSR-PyTorch ``sub_mean.*``/``add_mean.*`` keys, after checking them.

    EDSR-PyTorch (and the official RCAN code) implement the mean shift as frozen 1x1 convs on images in
    [0, img_range]: ``sub_mean`` has weight eye(3) and bias ``-img_range * mean``, ``add_mean`` the same
    weight and bias ``+img_range * mean`` (rgb_std = 1). Our networks compute ``(x - mean) * img_range`` and
    ``y / img_range + mean`` instead, which is the same function, so the convs can be dropped, but only if
    they hold exactly that shift; anything else (another mean, a std other than 1) would silently change
    the network, so it raises. Checkpoints without these keys are accepted as they are.
    """
    expected_weight = torch.eye(3).view(3, 3, 1, 1)
    mean = torch.tensor([float(value) for value in rgb_mean], dtype=torch.float64)
    for prefix, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        weight_key, bias_key = f"{prefix}.weight", f"{prefix}.bias"
        present = [key for key in (weight_key, bias_key) if key in state_dict]
        if not present:
            continue
        if len(present) == 1:
            raise KeyError(
                f"checkpoint has {present[0]!r} but not its pair: expected both {weight_key!r} and {bias_key!r}"
            )
        weight, bias = state_dict[weight_key].double(), state_dict[bias_key].double()
        expected_bias = sign * img_range * mean
        if weight.shape != expected_weight.shape or not torch.allclose(weight, expected_weight.double(), atol=1e-6):
            raise ValueError(
                f"{weight_key!r} is not the identity 1x1 conv (rgb_std = 1) that the mean shift of this network "
                f"assumes; got shape {tuple(weight.shape)}"
            )
        if bias.shape != expected_bias.shape or not torch.allclose(bias, expected_bias, atol=1e-4):
            raise ValueError(
                f"{bias_key!r} = {bias.tolist()} does not match the expected mean shift {expected_bias.tolist()} "
                f"(sign {sign:+.0f} * img_range {img_range} * rgb_mean {list(rgb_mean)}); construct the network with "
                "the img_range and rgb_mean this checkpoint was trained with"
            )
    return {key: value for key, value in state_dict.items() if not key.startswith(("sub_mean.", "add_mean."))}


def mean_shift_state_dict(img_range: float, rgb_mean: Sequence[float]) -> dict[str, torch.Tensor]:
    """The EDSR-PyTorch ``sub_mean``/``add_mean`` 1x1 convs (float32) that compute this network's mean shift on
    images in [0, img_range]: weight eye(3), bias ``-img_range * mean`` and ``+img_range * mean`` (rgb_std = 1).

    The inverse of ``drop_mean_shift``: it accepts exactly what this returns. The official layout shifts three
    channels, so ``rgb_mean`` must hold three values (ValueError otherwise).
    """
    mean = [float(value) for value in rgb_mean]
    if len(mean) != 3:
        raise ValueError(f"rgb_mean={list(rgb_mean)}: the EDSR-PyTorch mean shift needs one value per RGB channel")
    weight = torch.eye(3, dtype=torch.float32).view(3, 3, 1, 1)
    shift = float(img_range) * torch.tensor(mean, dtype=torch.float64)
    return {
        "sub_mean.weight": weight.clone(),
        "sub_mean.bias": (-shift).float(),
        "add_mean.weight": weight.clone(),
        "add_mean.bias": shift.float(),
    }


def convert_pixel_shuffle_tail(key: str, new_prefix: str, old_prefix: str = "tail.0.") -> str | None:
    """Map an EDSR-PyTorch upsampler key (``tail.0.{i}.weight``) to ours (``upsample.{i}.weight``).

    The two Sequentials hold the same [conv, shuffle, conv, shuffle, ...] list, so indices carry over.
    Returns None when ``key`` is not an upsampler key.
    """
    if not key.startswith(old_prefix):
        return None
    rest = key[len(old_prefix) :]
    index, _, parameter = rest.partition(".")
    if not index.isdigit() or parameter not in ("weight", "bias"):
        return None
    return f"{new_prefix}{index}.{parameter}"
