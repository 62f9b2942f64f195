"""Restormer: "Efficient Transformer for High-Resolution Image Restoration" (Zamir et al., CVPR 2022).

The layout, argument names and state_dict keys are those of swz30/Restormer
(``basicsr/models/archs/restormer_arch.py``), so official checkpoints load strictly. A 4-level U-Net of
transformer blocks whose attention runs across channels (MDTA: a (C/heads x C/heads) attention map per
head, linear in the number of pixels) and whose feed-forward is gated (GDFN).

The official network needs H and W divisible by 8 and its test scripts reflect-pad the input on the
right and bottom; here the network does that itself and crops the output back, so any H x W works and
multiples of 8 are untouched.

Images are float32 NCHW RGB in [0, 1]; the network predicts a residual that is added to its input
(except for the dual-pixel task, where a 6-channel input has no 3-channel image to add).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dckd.models import sizes
from dckd.models.padding import exporting, pad_indices

# Constructor kwargs of the networks the paper uses (deblurring / deraining).
PRESETS: dict[str, dict] = {
    # Teacher: the official Restormer (~26.1M parameters).
    "restormer": dict(
        inp_channels=3,
        out_channels=3,
        dim=48,
        num_blocks=[4, 6, 6, 8],
        num_refinement_blocks=4,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.66,
        bias=False,
        LayerNorm_type="WithBias",
    ),
    # Student: dim 24 with 22 blocks (~3.8M); the paper gives only the count, this split matches it.
    "restormer_dim24": dict(
        inp_channels=3,
        out_channels=3,
        dim=24,
        num_blocks=[2, 3, 3, 4],
        num_refinement_blocks=2,
        heads=[1, 2, 4, 8],
        ffn_expansion_factor=2.66,
        bias=False,
        LayerNorm_type="WithBias",
    ),
}

LAYER_NORM_TYPES = ("WithBias", "BiasFree")
LAYER_NORM_EPS = 1e-5  # official value


class BiasFreeLayerNorm(nn.Module):
    """Scale-only layer norm over channels, without centring: x / sqrt(var + eps) * weight, on (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Official flattens to (N, H*W, C) and normalises the last axis; reducing over dim 1 is the same
        # per-pixel statistic without the two transposes.
        variance = x.var(1, keepdim=True, unbiased=False)  # (N, 1, H, W)
        return x / torch.sqrt(variance + LAYER_NORM_EPS) * self.weight.view(1, -1, 1, 1)


class WithBiasLayerNorm(nn.Module):
    """Standard layer norm over channels on (N, C, H, W): (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)  # (N, 1, H, W)
        variance = x.var(1, keepdim=True, unbiased=False)
        normalised = (x - mean) / torch.sqrt(variance + LAYER_NORM_EPS)
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LayerNorm(nn.Module):
    """Per-pixel layer norm over channels, (N, C, H, W) -> (N, C, H, W); the ``body`` level keeps the official keys."""

    def __init__(self, dim: int, LayerNorm_type: str) -> None:
        super().__init__()
        if LayerNorm_type not in LAYER_NORM_TYPES:
            # Official silently treats any other string as 'WithBias'; a typo should not change the network.
            raise ValueError(f"LayerNorm_type must be one of {LAYER_NORM_TYPES}, got {LayerNorm_type!r}")
        self.body = BiasFreeLayerNorm(dim) if LayerNorm_type == "BiasFree" else WithBiasLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network (GDFN): (N, dim, H, W) -> (N, dim, H, W).

    1x1 conv to 2 x hidden, depthwise 3x3, split in halves, gelu(first) * second, 1x1 conv back.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden_features = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden_features * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden_features * 2, hidden_features * 2, kernel_size=3, padding=1, groups=hidden_features * 2, bias=bias
        )
        self.project_out = nn.Conv2d(hidden_features, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)  # each (N, hidden, H, W)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv head transposed attention (MDTA): (N, dim, H, W) -> (N, dim, H, W).

    Queries, keys and values come from a 1x1 then a depthwise 3x3 conv. Attention is across channels:
    per head, the (C/heads, H*W) query and key rows are L2-normalised over pixels, their (C/heads x
    C/heads) cosine-similarity matrix is scaled by a learned per-head temperature and softmaxed, and
    applied to the values. Cost is linear in H*W.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"attention channels {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        query, key, value = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)  # each (N, C, H, W)
        # (N, C, H, W) -> (N, heads, C/heads, H*W): channel c = head * (C/heads) + index, as the official
        # 'b (head c) h w -> b head c (h w)'.
        head_shape = (batch, self.num_heads, channels // self.num_heads, height * width)
        query = F.normalize(query.reshape(head_shape), dim=-1)
        key = F.normalize(key.reshape(head_shape), dim=-1)
        value = value.reshape(head_shape)
        attention = (query @ key.transpose(-2, -1)) * self.temperature  # (N, heads, C/heads, C/heads)
        attention = attention.softmax(dim=-1)
        out = (attention @ value).reshape(batch, channels, height, width)  # back to (N, C, H, W)
        return self.project_out(out)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + MDTA(LN(x)), then + GDFN(LN(x)); (N, dim, H, W) -> same."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv embedding, (N, in_c, H, W) -> (N, embed_dim, H, W)."""

    def __init__(self, in_c: int = 3, embed_dim: int = 48, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv to half the channels, then PixelUnshuffle(2): (N, C, H, W) -> (N, 2C, H/2, W/2)."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to twice the channels, then PixelShuffle(2): (N, C, H, W) -> (N, C/2, 2H, 2W)."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _blocks(
    count: int, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str
) -> nn.Sequential:
    """``count`` transformer blocks in a Sequential (keys ``<level>.<index>.*``)."""
    blocks = [TransformerBlock(dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(count)]
    return nn.Sequential(*blocks)


def reflect_pad_bottom_right(x: torch.Tensor, pad_height: int, pad_width: int) -> torch.Tensor:
    """Reflect-pad (N, C, H, W) by ``pad_height`` rows at the bottom and ``pad_width`` columns at the right.

    This is the official test scripts' ``F.pad(x, (0, pad_w, 0, pad_h), 'reflect')``. Reflection needs
    the pad to be smaller than the side; for tiny inputs the pad is applied in steps (reflecting the
    already padded image), and a side of one pixel is replicated, where the official call would fail.
    """
    for dimension, remaining in ((-1, pad_width), (-2, pad_height)):
        while remaining > 0:
            size = x.shape[dimension]
            step = min(remaining, size - 1)
            padding = (0, step, 0, 0) if dimension == -1 else (0, 0, 0, step)
            if step == 0:  # one pixel: nothing to reflect
                step = remaining
                padding = (0, step, 0, 0) if dimension == -1 else (0, 0, 0, step)
                x = F.pad(x, padding, mode="replicate")
            else:
                x = F.pad(x, padding, mode="reflect")
            remaining -= step
    return x


class Restormer(nn.Module):
    """Restormer U-Net: (N, inp_channels, H, W) -> (N, out_channels, H, W), any H and W.

    Args (official names):
        inp_channels, out_channels: image channels (6 in, 3 out for the dual-pixel task).
        dim: channels at level 1; levels 2, 3, 4 have 2, 4, 8 times as many.
        num_blocks: transformer blocks at levels 1..4 (level 4 is the latent); decoders reuse 1..3.
        num_refinement_blocks: blocks after the decoder, at full resolution.
        heads: attention heads at levels 1..4.
        ffn_expansion_factor: GDFN hidden width / channels (hidden = int(dim * factor)).
        bias: whether the block convs have biases (the down/up-sampling convs never do).
        LayerNorm_type: 'WithBias' or 'BiasFree'.
        dual_pixel_task: dual-pixel defocus deblurring: adds a 1x1 skip from the embedding and no
            global image residual.
    """

    scale = 1  # restoration: output size equals input size
    size_multiple = 8  # three 2x downsamplings; forward pads to this itself

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: list[int] | tuple[int, ...] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: list[int] | tuple[int, ...] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        sizes.integer("inp_channels", inp_channels)
        sizes.integer("out_channels", out_channels)
        sizes.integer("dim", dim)
        if dim % 2:
            raise ValueError(f"dim={dim}: must be even (each downsampling halves the channels, then unshuffles)")
        sizes.integers("num_blocks", num_blocks, length=4)
        sizes.integer("num_refinement_blocks", num_refinement_blocks, minimum=0)
        sizes.integers("heads", heads, length=4)
        for level, head_count in enumerate(heads):
            if (dim * 2**level) % head_count:
                raise ValueError(f"heads[{level}]={head_count}: must divide the level's channels {dim * 2**level}")
        sizes.number("ffn_expansion_factor", ffn_expansion_factor, above=0)
        if int(dim * ffn_expansion_factor) < 1:
            raise ValueError(f"ffn_expansion_factor={ffn_expansion_factor}: dim * ffn_expansion_factor must be >= 1")
        sizes.flag("bias", bias)
        sizes.choice("LayerNorm_type", LayerNorm_type, LAYER_NORM_TYPES)
        sizes.flag("dual_pixel_task", dual_pixel_task)
        if not dual_pixel_task and inp_channels != out_channels:
            raise ValueError(
                f"inp_channels {inp_channels} must equal out_channels {out_channels}: the output adds the input "
                "image as a residual (only dual_pixel_task=True drops it)"
            )
        block_args = dict(ffn_expansion_factor=ffn_expansion_factor, bias=bias, LayerNorm_type=LayerNorm_type)
        dim2, dim3, dim4 = dim * 2, dim * 4, dim * 8

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = _blocks(num_blocks[0], dim, heads[0], **block_args)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = _blocks(num_blocks[1], dim2, heads[1], **block_args)
        self.down2_3 = Downsample(dim2)
        self.encoder_level3 = _blocks(num_blocks[2], dim3, heads[2], **block_args)
        self.down3_4 = Downsample(dim3)
        self.latent = _blocks(num_blocks[3], dim4, heads[3], **block_args)

        self.up4_3 = Upsample(dim4)
        # Skip concatenation doubles the channels; levels 3 and 2 reduce them with a 1x1 conv.
        self.reduce_chan_level3 = nn.Conv2d(dim4, dim3, kernel_size=1, bias=bias)
        self.decoder_level3 = _blocks(num_blocks[2], dim3, heads[2], **block_args)
        self.up3_2 = Upsample(dim3)
        self.reduce_chan_level2 = nn.Conv2d(dim3, dim2, kernel_size=1, bias=bias)
        self.decoder_level2 = _blocks(num_blocks[1], dim2, heads[1], **block_args)
        self.up2_1 = Upsample(dim2)
        # Level 1 keeps the concatenated 2*dim channels (no reduction), as in the official network.
        self.decoder_level1 = _blocks(num_blocks[0], dim2, heads[0], **block_args)
        self.refinement = _blocks(num_refinement_blocks, dim2, heads[0], **block_args)

        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        """(N, inp_channels, H, W) -> (N, out_channels, H, W)."""
        _, _, height, width = inp_img.shape
        pad_height = (-height) % self.size_multiple
        pad_width = (-width) % self.size_multiple
        if exporting():  # the same values, computed without branches on the size (valid for every exported size)
            padded = inp_img.index_select(-1, pad_indices(width, pad_width, inp_img.device, too_short="reflect"))
            padded = padded.index_select(-2, pad_indices(height, pad_height, inp_img.device, too_short="reflect"))
        else:
            padded = reflect_pad_bottom_right(inp_img, pad_height, pad_width) if pad_height or pad_width else inp_img
        return self.forward_unpadded(padded)[:, :, :height, :width]

    def forward_unpadded(self, inp_img: torch.Tensor) -> torch.Tensor:
        """The official forward: (N, inp_channels, H, W) -> (N, out_channels, H, W), H and W multiples of 8."""
        inp_enc_level1 = self.patch_embed(inp_img)  # (N, dim, H, W)
        out_enc_level1 = self.encoder_level1(inp_enc_level1)
        out_enc_level2 = self.encoder_level2(self.down1_2(out_enc_level1))  # (N, 2dim, H/2, W/2)
        out_enc_level3 = self.encoder_level3(self.down2_3(out_enc_level2))  # (N, 4dim, H/4, W/4)
        latent = self.latent(self.down3_4(out_enc_level3))  # (N, 8dim, H/8, W/8)

        inp_dec_level3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), out_enc_level3], 1))
        out_dec_level3 = self.decoder_level3(inp_dec_level3)  # (N, 4dim, H/4, W/4)
        inp_dec_level2 = self.reduce_chan_level2(torch.cat([self.up3_2(out_dec_level3), out_enc_level2], 1))
        out_dec_level2 = self.decoder_level2(inp_dec_level2)  # (N, 2dim, H/2, W/2)
        inp_dec_level1 = torch.cat([self.up2_1(out_dec_level2), out_enc_level1], 1)  # (N, 2dim, H, W)
        out_dec_level1 = self.refinement(self.decoder_level1(inp_dec_level1))

        if self.dual_pixel_task:
            return self.output(out_dec_level1 + self.skip_conv(inp_enc_level1))
        return self.output(out_dec_level1) + inp_img
