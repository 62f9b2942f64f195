"""EDSR (Lim et al., CVPRW 2017), key-for-key and number-for-number the BasicSR 1.4.2 ``EDSR``.

    image (N, 3, H, W) in [0, 1] -> (x - mean) * img_range -> conv_first
      -> body: num_block x [x + res_scale * conv2(ReLU(conv1(x)))] -> conv_after_body (+ conv_first output)
      -> pixel-shuffle upsample -> conv_last -> / img_range + mean -> (N, 3, scale*H, scale*W)

Official EDSR checkpoints (github.com/sanghyun-son/EDSR-PyTorch) use other names;
``convert_edsr_pytorch_state_dict`` maps them to ours (i < num_block):

| EDSR-PyTorch key                                  | BasicSR key (this module)                            |
|---------------------------------------------------|------------------------------------------------------|
| sub_mean.{weight,bias}, add_mean.{weight,bias}    | (checked to be the DIV2K mean shift, then dropped)   |
| head.0.*                                          | conv_first.*                                         |
| body.{i}.body.0.*                                 | body.{i}.conv1.*                                     |
| body.{i}.body.2.*                                 | body.{i}.conv2.*                                     |
| body.{num_block}.*                                | conv_after_body.*                                    |
| tail.0.{j}.* (j = 0, 2, ... conv of each step)    | upsample.{j}.*                                       |
| tail.1.*                                          | conv_last.*                                          |

EDSR-PyTorch shifts the mean with frozen 1x1 convs on [0, 255] images; ``(x - mean) * 255`` is the same
function.
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
    mean_tensor,
)


class ResidualBlockNoBN(nn.Module):
    """x + res_scale * conv2(ReLU(conv1(x))), 3x3 convs, no batch norm; (N, C, H, W) in and out.

    PyTorch's default initialisation, as BasicSR's EDSR (``pytorch_init=True``)."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class EDSR(nn.Module):
    """EDSR with BasicSR's constructor and state_dict; input (N, num_in_ch, H, W) in [0, 1], any H and W;
    output (N, num_out_ch, upscale*H, upscale*W). ``upscale`` is a power of two or 3."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        upscale: int = 4,
        res_scale: float = 1,
        img_range: float = 255.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        check_cnn_arguments(num_in_ch, num_out_ch, num_feat, res_scale, img_range, rgb_mean)
        sizes.integer("num_block", num_block)
        check_pixel_shuffle_scale(upscale)
        self.scale: int = upscale
        """Output size / input size."""
        self.size_multiple: int = 1
        """Any input size works (fully convolutional)."""
        self.img_range = img_range
        # Non-persistent: follows .to(), absent from checkpoints (BasicSR keeps it as a plain attribute).
        self.register_buffer("mean", mean_tensor(rgb_mean, num_in_ch, num_out_ch), persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(num_feat, res_scale) for _ in range(num_block)))
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


# body.{i}.body.{0,2}: the two convs of residual block i.
_BLOCK_KEY = re.compile(r"body\.(\d+)\.body\.([02])")


def is_edsr_pytorch_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when ``state_dict`` uses the official EDSR-PyTorch names (``head.0.*``, ``tail.*``) rather
    than BasicSR's (``conv_first.*``); False for official RCAN checkpoints (channel attention ``conv_du``)."""
    keys = list(state_dict)
    return (
        any(key.startswith("head.0.") for key in keys)
        and any(key.startswith("tail.") for key in keys)
        and not any(".conv_du." in key for key in keys)
        and not any(key.startswith("conv_first.") for key in keys)
    )


def convert_edsr_pytorch_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    num_block: int,
    img_range: float = 255.0,
    rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
) -> dict[str, torch.Tensor]:
    """Rename an official EDSR-PyTorch state_dict to this module's BasicSR layout.

    Pure: the input is not modified and tensors are not copied. ``sub_mean``/``add_mean`` must hold the
    mean shift for ``img_range`` and ``rgb_mean`` (else ValueError) and are dropped. Any key outside the
    table in the module docstring, or naming a block beyond ``num_block``, raises a KeyError naming it.
    Missing keys are left for ``load_state_dict(strict=True)`` to report.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in drop_mean_shift(state_dict, img_range, rgb_mean).items():
        new_key = _convert_key(key, num_block)
        if new_key is None:
            raise KeyError(
                f"cannot map checkpoint key {key!r} to the BasicSR EDSR layout with num_block={num_block} "
                f"(expected head.0.*, body.<i>.body.{{0,2}}.*, body.{num_block}.*, tail.0.<j>.*, tail.1.*)"
            )
        converted[new_key] = tensor
    return converted


def _convert_key(key: str, num_block: int) -> str | None:
    """The BasicSR name of one EDSR-PyTorch key, or None when the table has no row for it."""
    name, _, parameter = key.rpartition(".")
    if parameter not in ("weight", "bias"):
        return None
    if name == "head.0":
        return f"conv_first.{parameter}"
    if name == "tail.1":
        return f"conv_last.{parameter}"
    if name == f"body.{num_block}":
        return f"conv_after_body.{parameter}"
    tail = convert_pixel_shuffle_tail(key, "upsample.")
    if tail is not None:
        return tail
    match = _BLOCK_KEY.fullmatch(name)
    if match is None or int(match.group(1)) >= num_block:
        return None
    conv = "conv1" if match.group(2) == "0" else "conv2"
    return f"body.{match.group(1)}.{conv}.{parameter}"


PRESETS: dict[str, dict] = {
    # EDSR-baseline: 16 blocks, 64 channels, no residual scaling.
    **{
        f"edsr_baseline_x{scale}": {"num_feat": 64, "num_block": 16, "upscale": scale, "res_scale": 1}
        for scale in (2, 3, 4)
    },
    # EDSR: 32 blocks, 256 channels; residuals scaled by 0.1 to keep the wide network's training stable.
    **{f"edsr_x{scale}": {"num_feat": 256, "num_block": 32, "upscale": scale, "res_scale": 0.1} for scale in (2, 3, 4)},
}
"""EDSR(num_in_ch=3, num_out_ch=3, **PRESETS[name])."""
