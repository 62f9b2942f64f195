"""RCAN (Zhang et al., ECCV 2018), key-for-key and number-for-number the BasicSR 1.4.2 ``RCAN``.

    image (N, 3, H, W) in [0, 1] -> (x - mean) * img_range -> conv_first
      -> body: num_group x ResidualGroup [num_block x RCAB -> conv] (+ group input)
      -> conv_after_body (+ conv_first output) -> pixel-shuffle upsample -> conv_last
      -> / img_range + mean -> (N, 3, scale*H, scale*W)
    RCAB = conv3x3 -> ReLU -> conv3x3 -> channel attention (x * sigmoid(conv1x1(ReLU(conv1x1(avgpool x))))),
           times res_scale, + block input

Official RCAN checkpoints (RCAN_BIX{2,3,4}.pt of github.com/yulunzhang/RCAN, also used by spandrel) use
the EDSR-PyTorch names; ``convert_edsr_pytorch_state_dict`` maps them to ours (g < num_group, b < num_block):

| EDSR-PyTorch key (official RCAN)                  | BasicSR key (this module)                            |
|---------------------------------------------------|------------------------------------------------------|
| sub_mean.{weight,bias}, add_mean.{weight,bias}    | (checked to be the DIV2K mean shift, then dropped)   |
| head.0.*                                          | conv_first.*                                         |
| body.{g}.body.{b}.body.0.*                        | body.{g}.residual_group.{b}.rcab.0.*                 |
| body.{g}.body.{b}.body.2.*                        | body.{g}.residual_group.{b}.rcab.2.*                 |
| body.{g}.body.{b}.body.3.conv_du.0.*              | body.{g}.residual_group.{b}.rcab.3.attention.1.*     |
| body.{g}.body.{b}.body.3.conv_du.2.*              | body.{g}.residual_group.{b}.rcab.3.attention.3.*     |
| body.{g}.body.{num_block}.*                       | body.{g}.conv.*                                      |
| body.{num_group}.*                                | conv_after_body.*                                    |
| tail.0.{i}.* (i = 0, 2, ... conv of each step)    | upsample.{i}.*                                       |
| tail.1.*                                          | conv_last.*                                          |

The official code computes the mean shift as frozen 1x1 convs on [0, 255] images and does not apply
``res_scale`` inside RCAB; with res_scale=1 (every released RCAN) both are the same function as ours.
``to_edsr_pytorch_state_dict`` is the inverse (the same table read right to left, plus the mean-shift convs):
it writes a dckd RCAN in the layout of the official code, the only RCAN layout spandrel (the loader of
chaiNNer and ComfyUI) detects; ``dckd.models.backbones.official_state_dict`` applies it to a network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from dckd.models import sizes
from dckd.models.backbones.common import (
    DIV2K_RGB_MEAN,
    Upsample,
    check_cnn_arguments,
    check_pixel_shuffle_scale,
    convert_pixel_shuffle_tail,
    drop_mean_shift,
    mean_shift_state_dict,
    mean_tensor,
)


class ChannelAttention(nn.Module):
    """x * sigmoid(W2 ReLU(W1 avgpool(x))), W1: C -> C/squeeze_factor, W2 back to C. (N, C, H, W) in and out.
    The Sequential indices (``attention.1``, ``attention.3``) are the checkpoint keys."""

    def __init__(self, num_feat: int, squeeze_factor: int = 16) -> None:
        super().__init__()
        if num_feat // squeeze_factor < 1:
            raise ValueError(f"squeeze_factor={squeeze_factor} leaves no channels of num_feat={num_feat}")
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1, padding=0),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class RCAB(nn.Module):
    """Residual channel attention block: x + res_scale * CA(conv(ReLU(conv(x)))); (N, C, H, W) in and out."""

    def __init__(self, num_feat: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rcab(x) * self.res_scale + x


class ResidualGroup(nn.Module):
    """num_block RCABs and a 3x3 conv, with a skip over the whole group."""

    def __init__(self, num_feat: int, num_block: int, squeeze_factor: int = 16, res_scale: float = 1) -> None:
        super().__init__()
        self.residual_group = nn.Sequential(*(RCAB(num_feat, squeeze_factor, res_scale) for _ in range(num_block)))
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.residual_group(x)) + x


class RCAN(nn.Module):
    """RCAN with BasicSR's constructor and state_dict; input (N, num_in_ch, H, W) in [0, 1], any H and W;
    output (N, num_out_ch, upscale*H, upscale*W). ``upscale`` is a power of two or 3."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_group: int = 10,
        num_block: int = 16,
        squeeze_factor: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        check_cnn_arguments(num_in_ch, num_out_ch, num_feat, res_scale, img_range, rgb_mean)
        sizes.integer("num_group", num_group)
        sizes.integer("num_block", num_block)
        sizes.integer("squeeze_factor", squeeze_factor)
        if num_feat // squeeze_factor < 1:
            raise ValueError(f"squeeze_factor={squeeze_factor}: must not exceed num_feat={num_feat}")
        check_pixel_shuffle_scale(upscale)
        self.scale: int = upscale
        """Output size / input size."""
        self.size_multiple: int = 1
        """Any input size works (fully convolutional)."""
        self.img_range = img_range
        self.rgb_mean: tuple[float, ...] = tuple(float(value) for value in rgb_mean)
        """The mean as given (the official layout's mean-shift convs are written from it)."""
        # Non-persistent: follows .to(), absent from checkpoints (BasicSR keeps it as a plain attribute).
        self.register_buffer("mean", mean_tensor(rgb_mean, num_in_ch, num_out_ch), persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(
            *(ResidualGroup(num_feat, num_block, squeeze_factor, res_scale) for _ in range(num_group))
        )
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_in_ch, H, W) -> (N, num_out_ch, scale*H, scale*W)."""
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.body(x)) + x
        x = self.conv_last(self.upsample(x))
        return x / self.img_range + self.mean


# body.{g}.body.{b}[.rest]: an RCAB (b < num_block, rest names its layer) or the group conv (b == num_block).
_GROUP_KEY = re.compile(r"body\.(\d+)\.body\.(\d+)(?:\.(.+))?")
_BLOCK_PARAMETER = {
    "body.0": "rcab.0",
    "body.2": "rcab.2",
    "body.3.conv_du.0": "rcab.3.attention.1",
    "body.3.conv_du.2": "rcab.3.attention.3",
}


def is_edsr_pytorch_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when ``state_dict`` uses the official RCAN / EDSR-PyTorch names (``head.0.*``, ``tail.*``,
    channel attention under ``conv_du``) rather than BasicSR's (``conv_first.*``)."""
    keys = list(state_dict)
    return (
        any(key.startswith("head.0.") for key in keys)
        and any(key.startswith("tail.") for key in keys)
        and any(".conv_du." in key for key in keys)
        and not any(key.startswith("conv_first.") for key in keys)
    )


def convert_edsr_pytorch_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_group: int,
    num_block: int,
    img_range: float = 255.0,
    rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
) -> dict[str, torch.Tensor]:
    """Rename an official RCAN (EDSR-PyTorch layout) state_dict to this module's BasicSR layout.

    Pure: the input is not modified and tensors are not copied. ``sub_mean``/``add_mean`` must hold the
    mean shift for ``img_range`` and ``rgb_mean`` (else ValueError) and are dropped. Any key outside the
    table in the module docstring, or naming a group/block beyond ``num_group``/``num_block``, raises a
    KeyError naming it. Missing keys are left for ``load_state_dict(strict=True)`` to report.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in drop_mean_shift(state_dict, img_range, rgb_mean).items():
        new_key = _convert_key(key, num_group, num_block)
        if new_key is None:
            raise KeyError(
                f"cannot map checkpoint key {key!r} to the BasicSR RCAN layout with num_group={num_group}, "
                f"num_block={num_block} (expected head.0.*, body.<g>.body.<b>.body.{{0,2,3.conv_du.0,3.conv_du.2}}.*, "
                f"body.<g>.body.{num_block}.*, body.{num_group}.*, tail.0.<i>.*, tail.1.*)"
            )
        converted[new_key] = tensor
    return converted


def _convert_key(key: str, num_group: int, num_block: int) -> str | None:
    """The BasicSR name of one EDSR-PyTorch key, or None when the table has no row for it."""
    name, _, parameter = key.rpartition(".")
    if parameter not in ("weight", "bias"):
        return None
    if name == "head.0":
        return f"conv_first.{parameter}"
    if name == "tail.1":
        return f"conv_last.{parameter}"
    if name == f"body.{num_group}":
        return f"conv_after_body.{parameter}"
    tail = convert_pixel_shuffle_tail(key, "upsample.")
    if tail is not None:
        return tail
    match = _GROUP_KEY.fullmatch(name)
    if match is None or int(match.group(1)) >= num_group:
        return None
    group, block, rest = int(match.group(1)), int(match.group(2)), match.group(3)
    if block == num_block and rest is None:
        return f"body.{group}.conv.{parameter}"
    if block < num_block and rest in _BLOCK_PARAMETER:
        return f"body.{group}.residual_group.{block}.{_BLOCK_PARAMETER[rest]}.{parameter}"
    return None


# The same table, BasicSR side first: (BasicSR name inside an RCAB, EDSR-PyTorch name inside its body).
_BASICSR_BLOCK_KEY = re.compile(r"body\.(\d+)\.residual_group\.(\d+)\.(.+)")
_BASICSR_GROUP_CONV = re.compile(r"body\.(\d+)\.conv")
_UPSAMPLE_KEY = re.compile(r"upsample\.(\d+)")
_BLOCK_PARAMETER_INVERSE = {basicsr: official for official, basicsr in _BLOCK_PARAMETER.items()}


def to_edsr_pytorch_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_group: int,
    num_block: int,
    img_range: float = 255.0,
    rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
) -> dict[str, torch.Tensor]:
    """Rename this module's (BasicSR) RCAN state_dict to the official EDSR-PyTorch layout and add the
    ``sub_mean``/``add_mean`` convs for ``img_range`` and ``rgb_mean``: the inverse of
    ``convert_edsr_pytorch_state_dict`` (which gives back exactly ``state_dict`` from the result).

    Pure: the input is not modified and its tensors are not copied. Any key outside the table in the module
    docstring, or naming a group/block beyond ``num_group``/``num_block``, raises a KeyError naming it.
    The official code reads the file as a network on [0, rgb_range] images that ignores ``res_scale``: the
    result computes this network's function there only when res_scale is 1 and rgb_range is ``img_range``
    (spandrel assumes 255); ``official_state_dict`` checks both on a built network.
    """
    converted = mean_shift_state_dict(img_range, rgb_mean)
    for key, tensor in state_dict.items():
        if key.startswith(("sub_mean.", "add_mean.")):
            raise KeyError(f"{key!r} is already an EDSR-PyTorch key: the state_dict is not in the BasicSR RCAN layout")
        new_key = _official_key(key, num_group, num_block)
        if new_key is None:
            raise KeyError(
                f"cannot map key {key!r} of a BasicSR RCAN with num_group={num_group}, num_block={num_block} to "
                "the EDSR-PyTorch layout (expected conv_first.*, body.<g>.residual_group.<b>.rcab.{0,2,"
                "3.attention.1,3.attention.3}.*, body.<g>.conv.*, conv_after_body.*, upsample.<i>.*, conv_last.*)"
            )
        converted[new_key] = tensor
    return converted


def _official_key(key: str, num_group: int, num_block: int) -> str | None:
    """The EDSR-PyTorch name of one BasicSR key, or None when the table has no row for it."""
    name, _, parameter = key.rpartition(".")
    if parameter not in ("weight", "bias"):
        return None
    fixed = {"conv_first": "head.0", "conv_last": "tail.1", "conv_after_body": f"body.{num_group}"}
    if name in fixed:
        return f"{fixed[name]}.{parameter}"
    upsample = _UPSAMPLE_KEY.fullmatch(name)
    if upsample is not None:
        return f"tail.0.{upsample.group(1)}.{parameter}"
    group_conv = _BASICSR_GROUP_CONV.fullmatch(name)
    if group_conv is not None and int(group_conv.group(1)) < num_group:
        return f"body.{group_conv.group(1)}.body.{num_block}.{parameter}"
    block = _BASICSR_BLOCK_KEY.fullmatch(name)
    if block is None or int(block.group(1)) >= num_group or int(block.group(2)) >= num_block:
        return None
    official = _BLOCK_PARAMETER_INVERSE.get(block.group(3))
    if official is None:
        return None
    return f"body.{block.group(1)}.body.{block.group(2)}.{official}.{parameter}"


PRESETS: dict[str, dict] = {
    # RCAN as published (the DCKD teacher): 10 groups of 20 RCABs, 64 channels, reduction 16.
    **{
        f"rcan_x{scale}": {"num_feat": 64, "num_group": 10, "num_block": 20, "squeeze_factor": 16, "upscale": scale}
        for scale in (2, 3, 4)
    },
    # DCKD's RCAN student: the same with 6 RCABs per group.
    **{
        f"rcan_student_x{scale}": {
            "num_feat": 64,
            "num_group": 10,
            "num_block": 6,
            "squeeze_factor": 16,
            "upscale": scale,
        }
        for scale in (2, 3, 4)
    },
}
"""RCAN(num_in_ch=3, num_out_ch=3, **PRESETS[name]); ``rcan_x4`` is manifests.json's RCAN_x4."""
