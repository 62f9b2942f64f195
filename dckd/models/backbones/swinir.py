"""SwinIR (Liang et al., ICCVW 2021), key-for-key and number-for-number the BasicSR 1.4.2 ``SwinIR``.

The network, top to bottom (C = embed_dim, tokens are the H*W pixels of the feature map):

    image (N, 3, H, W) in [0, 1]
      -> pad bottom/right to a multiple of the window size (only when needed)
      -> (x - mean) * img_range -> conv_first (N, C, H, W)
      -> tokens (N, H*W, C) -> patch_embed.norm -> layers: RSTB x len(depths)
           RSTB = [SwinTransformerBlock x depth (odd blocks shift their windows by window_size // 2)]
                  -> conv 3x3 ('1conv') or conv-lrelu-conv1x1-lrelu-conv ('3conv') -> + RSTB input
      -> norm -> conv_after_body -> + conv_first output
      -> reconstruction ('pixelshuffle' | 'pixelshuffledirect' | 'nearest+conv' | '' for scale 1)
      -> / img_range + mean -> crop the padding away -> (N, 3, scale*H, scale*W)

Differences from BasicSR that do not change any number (the reference vectors check this):
- window attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with the relative
  position bias (plus the -100 shift mask) as a float ``attn_mask``, so fused GPU kernels can be used;
- the shift mask for an input size other than ``img_size`` is computed once per size and cached on the
  network (BasicSR recomputes it in every block of every forward); while the network is traced or exported
  (``dckd export``) it is computed from the traced size and the input is padded by index gathers, so the
  exported graph is valid for every input size;
- on CUDA, heads are zero-padded to a multiple of 8 channels so the fused kernels accept them (exact);
- the input is padded to a multiple of the window size and the output cropped back (the official SwinIR
  repository's ``check_image_size``; BasicSR requires multiples);
- ``use_checkpoint`` passes the block's size argument through (BasicSR's call omits it and fails).

The checkpoint layout is BasicSR's, including the persistent buffers ``relative_position_index`` and the
shifted blocks' ``attn_mask`` (computed for ``img_size``), so official ``params`` state_dicts load strictly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from dckd.models import sizes
from dckd.models.backbones.common import DIV2K_RGB_MEAN, Upsample, check_pixel_shuffle_scale, mean_tensor
from dckd.models.padding import exporting, pad_to_multiple

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESIDUAL_CONNECTIONS = ("1conv", "3conv")
SHIFT_MASK_VALUE = -100.0  # BasicSR's value for "different region"; not -inf, so it must stay -100 to match
FUSED_HEAD_DIM_MULTIPLE = 8  # on CUDA, heads are zero-padded to this many channels (see WindowAttention)
SHIFT_MASK_CACHE_SIZE = 4  # input sizes whose shift masks are kept (validation sets cycle through sizes)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    values = tuple(int(item) for item in value)
    if len(values) != 2:
        raise ValueError(f"expected an int or a (height, width) pair, got {value!r}")
    return values  # type: ignore[return-value]


def trunc_normal_(tensor: torch.Tensor, std: float = 0.02, bound: float = 2.0) -> torch.Tensor:
    """Fill ``tensor`` in place with N(0, std^2) truncated to [-bound, bound] (absolute, as timm/BasicSR).

    For the std=0.02 used here the bound is 100 standard deviations away, where the normal has no mass
    in float32, so a clamped normal draw is the same distribution; it is ~10x faster than
    ``torch.nn.init.trunc_normal_`` (inverse-erf sampling), which matters for 12M-parameter teachers."""
    with torch.no_grad():
        return tensor.normal_(0.0, std).clamp_(-bound, bound)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero the whole residual branch of a sample with probability
    ``drop_prob`` and scale the kept ones by 1 / (1 - drop_prob). Identity in eval mode."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
        return x / keep_prob * keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout, on (..., in_features) tokens."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(N, H, W, C) -> (N * H/ws * W/ws, ws*ws, C): the tokens of each window, windows in raster order."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, channels)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of ``window_partition``: (N * H/ws * W/ws, ws*ws, C) -> (N, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def relative_position_index(window_size: int) -> torch.Tensor:
    """(ws*ws, ws*ws) int64: for each (query, key) token pair of a window, the row of the bias table that
    holds their relative offset, (dy + ws - 1) * (2*ws - 1) + (dx + ws - 1)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)  # (2, ws*ws): (y, x) of every token
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (ws*ws, ws*ws, 2)
    relative = relative + (window_size - 1)  # offsets start at 0
    return relative[:, :, 0] * (2 * window_size - 1) + relative[:, :, 1]


def shift_window_mask(height: int, width: int, window_size: int, shift_size: int) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) float32 additive mask for shifted windows: 0 where query and key came from the same
    image region before the cyclic shift, -100 where the roll glued together distant regions."""
    region = torch.zeros((1, height, width, 1))
    bands = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for rows in bands:
        for columns in bands:
            region[:, rows, columns, :] = label
            label += 1
    region_windows = window_partition(region, window_size).squeeze(-1)  # (nW, ws*ws)
    different = region_windows.unsqueeze(1) != region_windows.unsqueeze(2)
    return torch.zeros(different.shape).masked_fill(different, SHIFT_MASK_VALUE)


def pad_head_dim(tensors: Sequence[torch.Tensor], multiple: int) -> tuple[torch.Tensor, ...]:
    """Zero-pad the last (head channel) dimension of q, k, v up to a multiple of ``multiple``.

    Exact for attention: zero channels add nothing to q.k, and the zero channels of v only produce
    output channels, which the caller cuts off (``out[..., :head_dim]``)."""
    pad = -tensors[0].shape[-1] % multiple
    if pad == 0:
        return tuple(tensors)
    return tuple(F.pad(tensor, (0, pad)) for tensor in tensors)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias.

    ``relative_position_bias_table`` ((2ws-1)^2, heads) holds one bias per relative offset and head;
    ``relative_position_index`` (ws^2, ws^2) is a persistent buffer because BasicSR checkpoints carry it.
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim={dim} must be divisible by num_heads={num_heads}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5  # `or`, as BasicSR: qk_scale=0 means default
        self.attn_drop = float(attn_drop)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, ws*ws, ws*ws): the bias added to every window's attention logits."""
        tokens = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        # Contiguous: the fused GPU kernels need the mask's last dimension to have stride 1.
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N*nW, ws*ws, C) window tokens; shift_mask: (nW, ws*ws, ws*ws) or None. Returns x's shape."""
        windows, tokens, channels = x.shape
        # (N*nW, T, 3C) -> (3, N*nW, heads, T, C/heads)
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.num_heads, channels // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        head_dim = channels // self.num_heads
        if query.is_cuda:
            # The fused (memory-efficient) GPU kernels need head_dim % 8 == 0; SwinIR's are 30 (M) and 10
            # (S), for which SDPA would fall back to its slower unfused path (H200, bf16 training step of
            # SwinIR-S x4 on 64 patches of 48x48: 148 ms unpadded, 97 ms padded, BasicSR's explicit 120 ms).
            query, key, value = pad_head_dim((query, key, value), FUSED_HEAD_DIM_MULTIPLE)
        bias = self.relative_position_bias().unsqueeze(0)  # (1, heads, T, T), broadcasts over windows
        if shift_mask is not None:
            # Windows are batch-major (image, window), so the (nW, heads, T, T) sum is tiled over images.
            num_windows = shift_mask.shape[0]
            bias = bias + shift_mask.to(bias.dtype).unsqueeze(1)
            bias = bias.unsqueeze(0).expand(windows // num_windows, -1, -1, -1, -1).reshape(windows, *bias.shape[1:])
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=bias.to(query.dtype),  # autocast may run q/k/v in half precision; the mask must match
            dropout_p=self.attn_drop if self.training else 0.0,
            scale=self.scale,
        )
        out = out[..., :head_dim].transpose(1, 2)
        if exporting():
            # torch.export records SDPA's output strides from its meta function; the ONNX decomposition then
            # gives other strides and the reshape below, recorded as a view, fails. A real copy keeps it valid
            # (contiguous() is a no-op at capture time). pytorch/pytorch#141107.
            out = out.clone(memory_format=torch.contiguous_format)
        out = out.reshape(windows, tokens, channels)
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinTransformerBlock(nn.Module):
    """x + Attn(LN(x)) in (shifted) windows, then x + MLP(LN(x)); tokens (N, H*W, C).

    As in BasicSR, when the training size ``input_resolution`` is not larger than the window, the window
    shrinks to the smaller side and the shift is switched off. The shift mask for ``input_resolution`` is
    the persistent buffer ``attn_mask`` (it is in official checkpoints); other sizes use a mask passed in.
    """

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.window_size, self.shift_size = effective_window(self.input_resolution, window_size, shift_size)
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        mask = None
        if self.shift_size > 0:
            mask = shift_window_mask(*self.input_resolution, self.window_size, self.shift_size)
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, H*W, C) with (H, W) = x_size, multiples of the window size; returns the same shape.

        ``shift_mask``, when given, is used (``SwinIR`` passes one for sizes other than ``input_resolution``,
        and for every size while exporting); otherwise the ``attn_mask`` buffer at ``input_resolution`` and a
        mask computed here for other sizes."""
        height, width = x_size
        batch, _, channels = x.shape
        shortcut = x
        x = self.norm1(x).view(batch, height, width, channels)
        mask = None
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            if shift_mask is not None:
                mask = shift_mask
            elif tuple(x_size) == self.input_resolution:
                mask = self.attn_mask
            else:
                mask = shift_window_mask(height, width, self.window_size, self.shift_size).to(x.device)
        windows = window_partition(x, self.window_size)  # (N*nW, ws*ws, C)
        windows = self.attn(windows, mask)
        x = window_reverse(windows, self.window_size, height, width)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(batch, height * width, channels))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, input_resolution={self.input_resolution}, window_size={self.window_size}, "
            f"shift_size={self.shift_size}"
        )


def effective_window(input_resolution: tuple[int, int], window_size: int, shift_size: int) -> tuple[int, int]:
    """(window, shift) a block really uses: BasicSR shrinks the window to the smaller side of the training
    size when that side is not larger than the window, and then does not shift."""
    if min(input_resolution) <= window_size:
        return min(input_resolution), 0
    if not 0 <= shift_size < window_size:
        raise ValueError(f"shift_size={shift_size} must be in [0, window_size={window_size})")
    return window_size, shift_size


class BasicLayer(nn.Module):
    """``depth`` Swin blocks at one resolution; odd blocks shift by window_size // 2. Key prefix ``blocks``."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        norm_layer: type[nn.Module],
        use_checkpoint: bool,
    ) -> None:
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                input_resolution,
                num_heads,
                window_size,
                0 if index % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                qk_scale,
                drop,
                attn_drop,
                drop_path[index],
                norm_layer,
            )
            for index in range(depth)
        )

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, x_size, shift_mask, use_reentrant=False)
            else:
                x = block(x, x_size, shift_mask)
        return x


def residual_conv(dim: int, resi_connection: str) -> nn.Module:
    """The conv closing each RSTB and the body: one 3x3 conv, or a bottleneck of three (C/4 channels)."""
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    raise ValueError(f"resi_connection={resi_connection!r} is not one of {RESIDUAL_CONNECTIONS}")


class RSTB(nn.Module):
    """Residual Swin Transformer Block: tokens -> BasicLayer -> image -> conv -> tokens, + input."""

    def __init__(self, dim: int, resi_connection: str, **layer_options) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim=dim, **layer_options)
        self.conv = residual_conv(dim, resi_connection)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, H*W, C) -> (N, H*W, C)."""
        batch, _, channels = x.shape
        features = self.residual_group(x, x_size, shift_mask)
        image = features.transpose(1, 2).reshape(batch, channels, *x_size)  # (N, C, H, W)
        return self.conv(image).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    """(N, C, H, W) -> (N, H*W, C) tokens, with an optional LayerNorm (the only parameters, ``norm``).

    BasicSR keeps ``patch_size`` only to compute the training resolution ``img_size // patch_size``; no
    patches are formed (each pixel is a token)."""

    def __init__(self, embed_dim: int, norm_layer: type[nn.Module] | None) -> None:
        super().__init__()
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


class UpsampleOneStep(nn.Sequential):
    """One conv to scale^2 * num_out_ch channels and one PixelShuffle: the lightweight SwinIR upsampler."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


def check_swinir_arguments(arguments: dict) -> None:
    """SwinIR's sizes, checked before anything is built (``dckd.models.sizes``); ``arguments``: the constructor's."""
    for name in ("in_chans", "embed_dim", "window_size", "upscale"):
        sizes.integer(name, arguments[name])
    for name in ("img_size", "patch_size"):
        value = arguments[name]
        if not isinstance(value, int) or isinstance(value, bool):
            sizes.integers(name, value, length=2)
        else:
            sizes.integer(name, value)
    depths = sizes.integers("depths", arguments["depths"])
    heads = sizes.integers("num_heads", arguments["num_heads"], length=len(depths))
    for index, head_count in enumerate(heads):
        if arguments["embed_dim"] % head_count:
            raise ValueError(
                f"num_heads={head_count} (item {index} of num_heads): must divide embed_dim={arguments['embed_dim']}"
            )
    sizes.number("mlp_ratio", arguments["mlp_ratio"], above=0)
    if int(arguments["embed_dim"] * arguments["mlp_ratio"]) < 1:
        raise ValueError(f"mlp_ratio={arguments['mlp_ratio']}: embed_dim * mlp_ratio must be at least 1")
    if arguments["qk_scale"] is not None:
        sizes.number("qk_scale", arguments["qk_scale"], minimum=0)
    for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
        sizes.number(name, arguments[name], minimum=0, maximum=0.999)
    sizes.number("img_range", arguments["img_range"], above=0)
    for name in ("qkv_bias", "ape", "patch_norm", "use_checkpoint"):
        sizes.flag(name, arguments[name])
    norm_layer = arguments["norm_layer"]
    if not (isinstance(norm_layer, type) and issubclass(norm_layer, nn.Module)):
        raise ValueError(f"norm_layer={norm_layer!r}: expected an nn.Module class such as nn.LayerNorm")
    image, patch = _pair(arguments["img_size"]), _pair(arguments["patch_size"])
    resolution = (image[0] // patch[0], image[1] // patch[1])
    window = min(resolution) if min(resolution) <= arguments["window_size"] else arguments["window_size"]
    if window < 1 or resolution[0] % window or resolution[1] % window:
        raise ValueError(
            f"img_size={arguments['img_size']!r} (patch_size={arguments['patch_size']!r}): the training size "
            f"{resolution[0]}x{resolution[1]} must be a multiple of window_size={arguments['window_size']} "
            "(the published SwinIR networks: img_size 48 or 64 with window_size 8; see `dckd models`)"
        )


class SwinIR(nn.Module):
    """SwinIR with BasicSR's constructor, defaults and state_dict layout; input (N, in_chans, H, W) in [0, 1],
    any H and W; output (N, in_chans, upscale*H, upscale*W) (upscale 1 when ``upsampler`` is '').

    Arguments are BasicSR's: ``img_size`` is the training patch size (it fixes the stored ``attn_mask``
    buffers and ``absolute_pos_embed``); ``upsampler`` is 'pixelshuffle' (classical SR), 'pixelshuffledirect'
    (lightweight SR), 'nearest+conv' (real-world SR, x4 only) or '' (restoration without upscaling);
    ``resi_connection`` is '1conv' or '3conv'. ``drop_path_rate`` defaults to BasicSR's 0.1, which the
    official training configurations use; it is inactive in eval mode.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int | Sequence[int] = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
    ) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler={upsampler!r} is not one of {UPSAMPLERS}")
        if resi_connection not in RESIDUAL_CONNECTIONS:
            raise ValueError(f"resi_connection={resi_connection!r} is not one of {RESIDUAL_CONNECTIONS}")
        if len(depths) != len(num_heads):
            raise ValueError(f"depths={list(depths)} and num_heads={list(num_heads)} must have the same length")
        if upsampler in ("pixelshuffle", "pixelshuffledirect"):
            if upsampler == "pixelshuffle":
                check_pixel_shuffle_scale(upscale)
            elif not isinstance(upscale, int) or upscale < 1:
                raise ValueError(f"upscale={upscale!r} must be a positive int")
        if upsampler == "nearest+conv" and upscale != 4:
            raise ValueError(f"upsampler='nearest+conv' supports only upscale=4, got upscale={upscale!r}")
        check_swinir_arguments(locals())
        num_out_ch = in_chans
        num_feat = 64  # channels of the reconstruction convs, fixed in SwinIR
        self.upsampler = upsampler
        self.upscale = upscale
        self.scale: int = upscale if upsampler else 1
        """Output size / input size."""
        self.img_range = img_range
        # The DIV2K mean for RGB, none otherwise (BasicSR); a non-persistent buffer so .to() moves it and
        # checkpoints do not carry it.
        mean = DIV2K_RGB_MEAN if in_chans == 3 else (0.0,)
        self.register_buffer("mean", mean_tensor(mean, in_chans, num_out_ch), persistent=False)

        image_height, image_width = _pair(img_size)
        patch_height, patch_width = _pair(patch_size)
        self.patches_resolution = (image_height // patch_height, image_width // patch_width)
        self.window_size = window_size
        block_window, block_shift = effective_window(self.patches_resolution, window_size, window_size // 2)
        self.size_multiple: int = block_window
        """Input sides are padded to multiples of this (the window size the blocks use)."""
        self._block_shift = block_shift
        self._shift_mask_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, norm_layer if patch_norm else None)
        self.ape = ape
        if ape:
            num_patches = self.patches_resolution[0] * self.patches_resolution[1]
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)
        # Stochastic depth grows linearly over all blocks of all layers.
        # (on the CPU explicitly, so that building under `with torch.device("meta")` works too)
        drop_path = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for index, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:index])
            self.layers.append(
                RSTB(
                    embed_dim,
                    resi_connection,
                    input_resolution=self.patches_resolution,
                    depth=depth,
                    num_heads=heads,
                    window_size=window_size,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=drop_path[start : start + depth],
                    norm_layer=norm_layer,
                    use_checkpoint=use_checkpoint,
                )
            )
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)

        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
            self.upsample = Upsample(upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = UpsampleOneStep(upscale, embed_dim, num_out_ch)
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, num_out_ch, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.zeros_(module.bias)
            nn.init.ones_(module.weight)

    def no_weight_decay(self) -> set[str]:
        """Parameter names that the official recipe excludes from weight decay."""
        return {"absolute_pos_embed"}

    def no_weight_decay_keywords(self) -> set[str]:
        return {"relative_position_bias_table"}

    def shift_mask(self, x_size: tuple[int, int], device: torch.device) -> torch.Tensor | None:
        """The (nW, ws*ws, ws*ws) shift mask for feature size ``x_size``, or None when the blocks do not shift
        or the size is the training size (blocks then use their ``attn_mask`` buffers).

        Computed once per size and device and kept for the last ``SHIFT_MASK_CACHE_SIZE`` sizes; one mask
        serves every shifted block, since all blocks share the window and shift sizes. While exporting it is
        computed from the traced size for every size (a cached or buffered mask would be a constant of the
        graph, wrong for other sizes)."""
        if self._block_shift == 0:
            return None
        if exporting():  # from the traced / symbolic size and not cached: a cached mask would be a constant
            return shift_window_mask(x_size[0], x_size[1], self.size_multiple, self._block_shift).to(device)
        if tuple(x_size) == self.patches_resolution:
            return None
        key = (int(x_size[0]), int(x_size[1]), str(device))
        mask = self._shift_mask_cache.get(key)
        if mask is None:
            mask = shift_window_mask(x_size[0], x_size[1], self.size_multiple, self._block_shift).to(device)
            self._shift_mask_cache[key] = mask
            while len(self._shift_mask_cache) > SHIFT_MASK_CACHE_SIZE:
                self._shift_mask_cache.popitem(last=False)
        else:
            self._shift_mask_cache.move_to_end(key)
        return mask

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) shallow features -> (N, C, H, W) deep features; H, W multiples of ``size_multiple``."""
        x_size = (x.shape[2], x.shape[3])
        shift_mask = self.shift_mask(x_size, x.device)
        x = self.patch_embed(x)  # (N, H*W, C)
        if self.ape:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, x_size, shift_mask)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *x_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, in_chans, scale*H, scale*W)."""
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.size_multiple)
        x = (x - self.mean) * self.img_range
        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.upsample(x)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_before_upsample(x)
            x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.conv_last(self.lrelu(self.conv_hr(x)))
        else:  # restoration at scale 1: the network predicts a residual on the input
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        x = x / self.img_range + self.mean
        return x[..., : height * self.scale, : width * self.scale]


def _preset(upscale: int, embed_dim: int, depth: int, img_size: int, upsampler: str) -> dict:
    return {
        "upscale": upscale,
        "in_chans": 3,
        "img_size": img_size,
        "window_size": 8,
        "img_range": 1.0,
        "depths": [6] * depth,
        "embed_dim": embed_dim,
        "num_heads": [6] * depth,
        "mlp_ratio": 2,
        "upsampler": upsampler,
        "resi_connection": "1conv",
    }


PRESETS: dict[str, dict] = {
    # SwinIR-M, classical SR (the DCKD teachers): 6 RSTBs of 6 blocks, 180 channels.
    **{f"swinir_m_x{scale}": _preset(scale, 180, 6, 48, "pixelshuffle") for scale in (2, 3, 4)},
    # DCKD's SwinIR student: 4 RSTBs of 6 blocks, 60 channels, classical upsampler.
    **{f"swinir_s_x{scale}": _preset(scale, 60, 4, 48, "pixelshuffle") for scale in (2, 3, 4)},
    # Official SwinIR-light (same body as the student, one-step upsampler, trained on 64x64 patches).
    "swinir_light_x4": _preset(4, 60, 4, 64, "pixelshuffledirect"),
}
"""SwinIR(**PRESETS[name]) builds the paper's networks; the configs are those of dckd/golden/manifests.json."""
