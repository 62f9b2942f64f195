"""NAFNet: the nonlinear-activation-free U-Net of "Simple Baselines for Image Restoration" (Chen et al., ECCV 2022).

The layout, argument names and state_dict keys are those of megvii-research/NAFNet
(``basicsr/models/archs/NAFNet_arch.py``), so official checkpoints such as NAFNet-GoPro-width32 load
strictly. The network pads its input on the right and bottom with zeros to a multiple of
``2 ** len(enc_blk_nums)`` and crops the output back, so any H x W works.

``to_local`` / ``NAFNetLocal`` give the test-time local converter (TLC, official ``local_arch.py``): the
global average pooling of the simplified channel attention is replaced by a local average pooling whose
window is 1.5 times the feature map a training crop produces, which is what the official GoPro numbers
are measured with.

Images are float32 NCHW RGB in [0, 1]; the network predicts a residual that is added to its input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dckd.models import sizes
from dckd.models.padding import exporting

# Constructor kwargs of the networks the paper uses (deblurring on GoPro).
PRESETS: dict[str, dict] = {
    # Teacher: official NAFNet-GoPro-width32 (36 blocks, ~17.1M parameters).
    "nafnet_gopro_width32": dict(
        img_channel=3, width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1]
    ),
    # Student: width 16 with 22 blocks (~2.7M); the paper gives only the count, this split matches it.
    "nafnet_width16": dict(
        img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 14], dec_blk_nums=[1, 1, 1, 1]
    ),
}


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of every pixel: (N, C, H, W) -> (N, C, H, W).

    The official code computes this with a hand-written autograd function; autograd of the same
    formula gives the same gradients, and the forward keeps the official order of operations.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)  # (N, 1, H, W)
        variance = (x - mean).pow(2).mean(1, keepdim=True)
        normalised = (x - mean) / (variance + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * normalised + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: (N, 2C, H, W) -> (N, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    """One NAFNet block on (N, c, H, W): a gated depthwise-conv branch with simplified channel attention,
    then a gated 1x1 feed-forward branch, each added back with a learned per-channel scale (``beta``,
    ``gamma``, zero at initialisation so a fresh block is the identity)."""

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2, drop_out_rate: float = 0.0) -> None:
        super().__init__()
        dw_channel = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1, bias=True)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel, bias=True)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1, bias=True)
        # Simplified channel attention: a 1x1 conv of the globally pooled features (index 1 holds the
        # weights, key ``sca.1.*``); TLC swaps index 0 for a local pooling.
        self.sca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1, bias=True),
        )
        self.sg = SimpleGate()
        ffn_channel = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1, bias=True)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1, bias=True)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0.0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0.0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros((1, c, 1, 1)))
        self.gamma = nn.Parameter(torch.zeros((1, c, 1, 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))  # (N, 2c, H, W)
        x = self.sg(x)  # (N, c, H, W)
        x = x * self.sca(x)  # attention is (N, c, 1, 1), or (N, c, H, W) under TLC
        x = self.dropout1(self.conv3(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        x = self.dropout2(x)
        return y + x * self.gamma


class NAFNet(nn.Module):
    """NAFNet U-Net: (N, img_channel, H, W) -> (N, img_channel, H, W), any H and W.

    Args (official names):
        img_channel: channels of the input and output image.
        width: channels of the first level; each encoder level doubles them.
        middle_blk_num: blocks at the lowest resolution.
        enc_blk_nums: blocks per encoder level (one level per entry, each followed by a 2x downsampling).
        dec_blk_nums: blocks per decoder level (same number of levels as the encoder).
    """

    scale = 1  # restoration: output size equals input size
    size_multiple = 1  # the network pads to its own multiple internally

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: list[int] | tuple[int, ...] = (),
        dec_blk_nums: list[int] | tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        sizes.integer("img_channel", img_channel)
        sizes.integer("width", width)
        sizes.integer("middle_blk_num", middle_blk_num, minimum=0)
        sizes.integers("enc_blk_nums", enc_blk_nums, minimum=0, min_length=0)
        sizes.integers("dec_blk_nums", dec_blk_nums, minimum=0, min_length=0)
        if len(enc_blk_nums) != len(dec_blk_nums):
            # The official code zips them silently, which drops skip connections; refuse instead.
            raise ValueError(
                f"enc_blk_nums {list(enc_blk_nums)} and dec_blk_nums {list(dec_blk_nums)} must have the same length"
            )
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1, bias=True)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1, bias=True)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.Sequential()  # registered here, filled below: keeps the official key order
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for number in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(number)]))
            self.downs.append(nn.Conv2d(channels, 2 * channels, kernel_size=2, stride=2))
            channels *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(channels) for _ in range(middle_blk_num)])
        for number in dec_blk_nums:
            # 1x1 conv to 2C channels, then PixelShuffle(2): (N, 2C, h, w) -> (N, C/2, 2h, 2w).
            self.ups.append(
                nn.Sequential(nn.Conv2d(channels, channels * 2, kernel_size=1, bias=False), nn.PixelShuffle(2))
            )
            channels //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(number)]))
        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """(N, img_channel, H, W) -> (N, img_channel, H, W)."""
        _, _, height, width = inp.shape
        inp = self.check_image_size(inp)
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[:, :, :height, :width]

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad (N, C, H, W) on the right and bottom to multiples of ``padder_size`` (official name)."""
        _, _, height, width = x.shape
        pad_height = (self.padder_size - height % self.padder_size) % self.padder_size
        pad_width = (self.padder_size - width % self.padder_size) % self.padder_size
        return F.pad(x, (0, pad_width, 0, pad_height))


# --------------------------------------------------------------------------------------------------
# TLC: test-time local converter (official basicsr/models/archs/local_arch.py)
# --------------------------------------------------------------------------------------------------


class LocalAvgPool2d(nn.Module):
    """Local average pooling that stands in for ``AdaptiveAvgPool2d(1)`` at test time (official ``AvgPool2d``).

    (N, C, H, W) -> (N, C, 1, 1) when the window covers the whole map (then it is exactly the global
    pooling it replaces), otherwise (N, C, H, W): the mean over every ``kernel_size`` window that fits
    inside the map, replicate-padded at the borders back to H x W (``auto_pad``).

    ``kernel_size`` is fixed once, by ``to_local``, from the map this layer sees for a training crop.
    ``fast_imp`` is the official faster approximation (subsampled cumulative sums, nearest upsampling);
    it is not equal to the exact pooling.
    """

    # Subsampling factors the fast implementation tries, largest first (official ``rs``).
    FAST_REDUCTIONS = (5, 4, 3, 2, 1)

    def __init__(
        self,
        kernel_size: tuple[int, int],
        fast_imp: bool = False,
        max_reduction: tuple[int, int] = (5, 5),
        auto_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1]))
        self.fast_imp = fast_imp
        self.max_reduction = (int(max_reduction[0]), int(max_reduction[1]))
        self.auto_pad = auto_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, fast_imp={self.fast_imp}, auto_pad={self.auto_pad}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, height, width = x.shape
        kernel_height, kernel_width = self.kernel_size
        if exporting() and not self.fast_imp and self.auto_pad:
            return self._window_mean_indexed(x)
        if kernel_height >= height and kernel_width >= width:
            return F.adaptive_avg_pool2d(x, 1)
        if self.fast_imp:
            out = self._fast_window_mean(x)
        else:
            # Window sums from a 2-D cumulative sum with a zero row/column in front:
            # sum over rows [i, i+k1) and columns [j, j+k2) = S[i+k1, j+k2] + S[i, j] - S[i, j+k2] - S[i+k1, j].
            cumulative = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))  # (N, C, H+1, W+1)
            k1, k2 = min(height, kernel_height), min(width, kernel_width)
            out = (
                cumulative[:, :, k1:, k2:]
                + cumulative[:, :, :-k1, :-k2]
                - cumulative[:, :, :-k1, k2:]
                - cumulative[:, :, k1:, :-k2]
            ) / (k1 * k2)  # (N, C, H-k1+1, W-k2+1)
        if self.auto_pad:
            out_height, out_width = out.shape[2:]
            padding = (
                (width - out_width) // 2,
                (width - out_width + 1) // 2,
                (height - out_height) // 2,
                (height - out_height + 1) // 2,
            )
            out = F.pad(out, padding, mode="replicate")
        return out

    def _window_mean_indexed(self, x: torch.Tensor) -> torch.Tensor:
        """The exact pooling with ``auto_pad`` (the global case included) for tracing and export: gathers from
        the same cumulative sum, with window sizes and positions computed by tensor ops instead of a branch and
        ``min`` on the size, so the graph stays valid for every input size. (N, C, H, W) -> (N, C, H, W).

        The global case gives the mean broadcast to H x W instead of (N, C, 1, 1); the channel attention
        multiplies it with the features either way. It differs from the eager pooling by rounding only
        (cumulative sums instead of ``adaptive_avg_pool2d``, about 1e-7). The sums run in float32 even for a
        float16 export: a float16 cumulative sum over a whole map (the global case) overflows at 65504."""
        _, _, height, width = x.shape
        cumulative = F.pad(x.float().cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))  # (N, C, H+1, W+1)
        bounds = []
        for size, kernel in ((height, self.kernel_size[0]), (width, self.kernel_size[1])):
            positions = torch.arange(size, device=x.device)
            window = (torch.zeros(1, dtype=torch.long, device=x.device) + size).clamp(max=kernel)  # min(size, k)
            # Output position p uses the window that starts at clamp(p - (k-1)//2, 0, size-k): the valid
            # windows, replicated at the borders as auto_pad does.
            start = (positions - torch.div(window - 1, 2, rounding_mode="floor")).clamp(min=0)
            start = torch.minimum(start, size - window)
            bounds.append((start, start + window, window))
        (top, bottom, window_height), (left, right, window_width) = bounds
        rows_bottom, rows_top = cumulative.index_select(2, bottom), cumulative.index_select(2, top)
        window_sums = (
            rows_bottom.index_select(3, right)
            + rows_top.index_select(3, left)
            - rows_top.index_select(3, right)
            - rows_bottom.index_select(3, left)
        )
        return (window_sums / (window_height * window_width)).to(x.dtype)

    def _fast_window_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Official fast approximation: window means on a grid subsampled by the largest divisor r <= 5
        of each side, upsampled back by nearest neighbour. (N, C, H, W) -> (N, C, <=H, <=W)."""
        _, _, height, width = x.shape
        reduction_height = min(self.max_reduction[0], next(r for r in self.FAST_REDUCTIONS if height % r == 0))
        reduction_width = min(self.max_reduction[1], next(r for r in self.FAST_REDUCTIONS if width % r == 0))
        cumulative = x[:, :, ::reduction_height, ::reduction_width].cumsum(dim=-1).cumsum(dim=-2)
        _, _, sub_height, sub_width = cumulative.shape
        k1 = min(sub_height - 1, self.kernel_size[0] // reduction_height)
        k2 = min(sub_width - 1, self.kernel_size[1] // reduction_width)
        if k1 < 1 or k2 < 1:
            raise ValueError(
                f"fast TLC pooling needs a window of at least one subsampled pixel per side; got kernel_size "
                f"{self.kernel_size} with reductions ({reduction_height}, {reduction_width}) on a {height}x{width} map"
            )
        out = (
            cumulative[:, :, :-k1, :-k2]
            - cumulative[:, :, :-k1, k2:]
            - cumulative[:, :, k1:, :-k2]
            + cumulative[:, :, k1:, k2:]
        ) / (k1 * k2)
        return F.interpolate(out, scale_factor=(reduction_height, reduction_width))


def _level_sizes(model: NAFNet, train_height: int, train_width: int) -> list[tuple[nn.Sequential, tuple[int, int]]]:
    """Pair every block group of ``model`` with the (height, width) of its feature map for a training crop.

    The crop is first padded like ``check_image_size``; each of the L levels then halves it exactly.
    Encoder i runs at level i, the middle blocks at level L, decoder j at level L-1-j.
    """
    levels = len(model.encoders)
    padded_height = -(-train_height // model.padder_size) * model.padder_size
    padded_width = -(-train_width // model.padder_size) * model.padder_size
    groups = [(encoder, level) for level, encoder in enumerate(model.encoders)]
    groups.append((model.middle_blks, levels))
    groups += [(decoder, levels - 1 - index) for index, decoder in enumerate(model.decoders)]
    return [(group, (padded_height >> level, padded_width >> level)) for group, level in groups]


def to_local(model: NAFNet, train_size: tuple[int, int, int, int] = (1, 3, 256, 256), fast_imp: bool = False) -> NAFNet:
    """Convert ``model`` in place to its TLC inference form and return it (official ``NAFNetLocal``).

    Every ``AdaptiveAvgPool2d(1)`` of the channel attention becomes a ``LocalAvgPool2d`` whose window, per
    side, is ``feature_size * base_size // train_side`` with ``base_size = int(1.5 * train_side)`` and
    ``feature_size`` the map that layer sees for a ``train_size`` input: 1.5 times the training map of
    that level (384 at full resolution for 256 crops). The official code finds the feature sizes with a
    dummy forward pass; they follow from the U-Net's halving, so they are computed here directly.

    Consequence: for inputs whose padded size is at most 1.5x the training size in both sides, every
    window covers the whole map and the output equals the plain NAFNet's exactly; larger inputs use
    local statistics. No parameter or key changes, so official checkpoints load before or after.
    """
    if len(train_size) != 4:
        raise ValueError(f"train_size must be (N, C, H, W), got {train_size!r}")
    train_height, train_width = int(train_size[-2]), int(train_size[-1])
    base_height, base_width = int(train_height * 1.5), int(train_width * 1.5)
    max_reduction_base = LocalAvgPool2d.FAST_REDUCTIONS[0]
    for group, (feature_height, feature_width) in _level_sizes(model, train_height, train_width):
        kernel_size = (feature_height * base_height // train_height, feature_width * base_width // train_width)
        # Official: cap the fast implementation's subsampling at 5 * feature / train (at least 1).
        max_reduction = (
            max(1, max_reduction_base * feature_height // train_height),
            max(1, max_reduction_base * feature_width // train_width),
        )
        for block in group:
            if not isinstance(block.sca[0], (nn.AdaptiveAvgPool2d, LocalAvgPool2d)):
                raise TypeError(f"expected a pooling layer at sca.0 of a NAFBlock, found {type(block.sca[0]).__name__}")
            block.sca[0] = LocalAvgPool2d(kernel_size, fast_imp=fast_imp, max_reduction=max_reduction)
    return model


class NAFNetLocal(NAFNet):
    """NAFNet with TLC pooling from construction (official class name and ``train_size``/``fast_imp`` args)."""

    def __init__(
        self, *args, train_size: tuple[int, int, int, int] = (1, 3, 256, 256), fast_imp: bool = False, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        to_local(self, train_size=train_size, fast_imp=fast_imp)
