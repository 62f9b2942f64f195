"""The frozen VQGAN encoder DCKD measures images with (paper sections 3 and 4).

DCKD never trains this network. It uses the encoder of taming-transformers' "VQGAN ImageNet f=16, 1024
codes" for two things:

- ``features(x)``: five feature maps, one per resolution level, the output of the FIRST ResnetBlock of
  each level (after the previous level's downsampling, before any attention of that level). The
  contrastive loss (DCR) compares student, teacher and negatives on them.
- ``code_distribution(x)``: for every latent position the soft assignment ``softmax_k(-||z - e_k||^2)``
  over the codebook, where ``z`` is the full encoder output followed by ``quant_conv``. The distribution
  mapping loss (DMM) compares the teacher's and the student's.

``features_and_code_distribution(x)`` returns both from ONE encoder pass: the features are intermediate
results of the pass that produces ``z``, so a DCKD step does not run the encoder twice per image.

Module and parameter names are taming's (``encoder.*``, ``quant_conv.*``, ``quantize.embedding.weight``),
so the ``state_dict`` of a taming ``last.ckpt`` loads into the same names; ``from_checkpoint`` does that
strictly (a missing or wrongly shaped key is an error, unlike the published code's ``strict=False``).

Input range: the VQGAN was trained on images in [-1, 1]; the published DCKD code feeds it images in
[0, 1]. This class does not rescale: callers pass images already in the range they want.

The building blocks (``ResnetBlock``, ``AttnBlock``, ``Downsample``, ``Encoder``) are shared with the
trainable autoencoder in ``dckd/codebook_model.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dckd.errors import CheckpointError
from dckd.files.weights import extract_state_dict, read_checkpoint, tensor_kind_mismatches
from dckd.models import sizes

# ---------------------------------------------------------------------------------------------------
# Building blocks (taming-transformers' modules/diffusionmodules/model.py, same parameter names)
# ---------------------------------------------------------------------------------------------------


TAMING_NORM_GROUPS = 32
"""taming's ``Normalize`` uses 32 GroupNorm groups; ``ddconfig["norm_groups"]`` may choose fewer for narrow encoders."""


def group_norm(channels: int, groups: int = TAMING_NORM_GROUPS) -> nn.GroupNorm:
    """taming's ``Normalize``: ``groups`` groups (taming: 32), eps 1e-6 (``channels`` a multiple of ``groups``)."""
    if channels % groups != 0:
        raise ValueError(
            f"VQGAN blocks use GroupNorm with {groups} groups: channels must be multiples of {groups}, not {channels}"
        )
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice with a residual; a 1x1 ``nin_shortcut`` when the width changes.

    (N, in_channels, H, W) -> (N, out_channels, H, W). taming's time-embedding projection is absent
    because its Encoder and Decoder build every block with ``temb_channels=0``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, dropout: float = 0.0, norm_groups: int = TAMING_NORM_GROUPS
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(out_channels, norm_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        shortcut = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return shortcut + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H*W positions, residual. (N, C, H, W) -> (N, C, H, W).

    taming scales the logits by ``int(C) ** -0.5``, which is the default scale of
    ``F.scaled_dot_product_attention`` for head size C; it is passed explicitly anyway so the two
    stay the same function (the fused kernel avoids materialising the (HW, HW) matrix on GPUs).
    """

    def __init__(self, channels: int, norm_groups: int = TAMING_NORM_GROUPS) -> None:
        super().__init__()
        self.norm = group_norm(channels, norm_groups)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        h = self.norm(x)

        def tokens(projection: nn.Conv2d) -> Tensor:
            # (N, C, H, W) -> (N, 1 head, H*W, C), rows in (y, x) order
            return projection(h).reshape(batch, 1, channels, height * width).transpose(2, 3)

        attended = F.scaled_dot_product_attention(tokens(self.q), tokens(self.k), tokens(self.v), scale=channels**-0.5)
        # (N, 1, H*W, C) -> (N, C, H, W)
        attended = attended.transpose(2, 3).reshape(batch, channels, height, width)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Halve H and W: pad one zero row/column at the bottom/right, then a stride-2 3x3 conv (taming's
    asymmetric padding). ``with_conv=False`` is 2x2 average pooling. Both give floor(H/2) x floor(W/2)."""

    def __init__(self, channels: int, with_conv: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0) if with_conv else None

    def forward(self, x: Tensor) -> Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


# The keys a taming ddconfig may hold; Encoder and Decoder each ignore the ones that are the other's.
DDCONFIG_KEYS = {
    "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "in_channels", "resolution", "z_channels",
    "out_ch", "dropout", "double_z", "resamp_with_conv", "give_pre_end", "norm_groups",
}  # fmt: skip
REQUIRED_DDCONFIG_KEYS = (
    "ch", "ch_mult", "num_res_blocks", "attn_resolutions", "in_channels", "resolution", "z_channels",
)  # fmt: skip


def check_ddconfig(ddconfig: Mapping[str, Any]) -> None:
    """Raise ValueError naming any unknown, missing or out-of-range ddconfig key (a typo must not be ignored;
    a size read from a checkpoint's metadata is checked before anything is built, ``dckd.models.sizes``)."""
    if not isinstance(ddconfig, Mapping):
        raise ValueError(f"ddconfig={ddconfig!r}: expected a mapping")
    unknown = sorted(set(ddconfig) - DDCONFIG_KEYS, key=str)
    if unknown:
        raise ValueError(f"unknown ddconfig key(s) {unknown}; expected keys among {sorted(DDCONFIG_KEYS)}")
    missing = [key for key in REQUIRED_DDCONFIG_KEYS if key not in ddconfig]
    if missing:
        raise ValueError(f"ddconfig lacks required key(s) {missing}")
    channels = sizes.integer("ddconfig.ch", ddconfig["ch"])
    groups = sizes.integer("ddconfig.norm_groups", ddconfig.get("norm_groups", TAMING_NORM_GROUPS))
    if channels % groups:
        raise ValueError(
            f"ddconfig.ch={channels}: VQGAN blocks use GroupNorm with {groups} groups (ddconfig.norm_groups), "
            f"so a multiple of {groups}"
        )
    sizes.integers("ddconfig.ch_mult", ddconfig["ch_mult"])
    sizes.integer("ddconfig.num_res_blocks", ddconfig["num_res_blocks"])
    sizes.integers("ddconfig.attn_resolutions", ddconfig["attn_resolutions"], min_length=0)
    for name in ("in_channels", "resolution", "z_channels"):
        sizes.integer(f"ddconfig.{name}", ddconfig[name])
    if "out_ch" in ddconfig:
        sizes.integer("ddconfig.out_ch", ddconfig["out_ch"])
    if "dropout" in ddconfig:
        sizes.number("ddconfig.dropout", ddconfig["dropout"], minimum=0, maximum=0.999)
    for name in ("double_z", "resamp_with_conv", "give_pre_end"):
        if name in ddconfig:
            sizes.flag(f"ddconfig.{name}", ddconfig[name])


def check_codebook_arguments(embed_dim: int, n_embed: int, ddconfig: Mapping[str, Any]) -> None:
    """The arguments of ``VQGANEncoder`` and the codebook autoencoder."""
    sizes.integer("embed_dim", embed_dim)
    sizes.integer("n_embed", n_embed)
    check_ddconfig(ddconfig)


class Encoder(nn.Module):
    """taming's Encoder: conv_in, per level ``num_res_blocks`` ResnetBlocks (each followed by an AttnBlock
    where the level's nominal resolution is in ``attn_resolutions``) and a Downsample (not after the last
    level), then mid (block, attention, block), GroupNorm, swish, conv_out.

    (N, in_channels, H, W) -> (N, z_channels, h, w), H halved (rounding down) L - 1 times, L = len(ch_mult). The nominal
    resolution (``resolution`` halved per level) only decides where attention goes; any H, W works.
    """

    def __init__(self, ddconfig: Mapping[str, Any]) -> None:
        super().__init__()
        check_ddconfig(ddconfig)
        ch, ch_mult = ddconfig["ch"], tuple(ddconfig["ch_mult"])
        dropout = ddconfig.get("dropout", 0.0)
        groups = ddconfig.get("norm_groups", TAMING_NORM_GROUPS)
        self.num_levels = len(ch_mult)
        self.conv_in = nn.Conv2d(ddconfig["in_channels"], ch, kernel_size=3, padding=1)
        nominal_resolution = ddconfig["resolution"]
        in_ch_mult = (1,) + ch_mult
        self.down = nn.ModuleList()
        for level_index in range(self.num_levels):
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            block_in = ch * in_ch_mult[level_index]
            block_out = ch * ch_mult[level_index]
            for _ in range(ddconfig["num_res_blocks"]):
                level.block.append(ResnetBlock(block_in, block_out, dropout, groups))
                block_in = block_out
                if nominal_resolution in ddconfig["attn_resolutions"]:
                    level.attn.append(AttnBlock(block_in, groups))
            if level_index != self.num_levels - 1:
                level.downsample = Downsample(block_in, ddconfig.get("resamp_with_conv", True))
                nominal_resolution //= 2
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout, groups)
        self.norm_out = group_norm(block_in, groups)
        z_channels = ddconfig["z_channels"]
        out_channels = 2 * z_channels if ddconfig.get("double_z", True) else z_channels  # taming's default is True
        self.conv_out = nn.Conv2d(block_in, out_channels, kernel_size=3, padding=1)

    def forward_with_features(self, x: Tensor, stop_after_features: bool = False) -> tuple[list[Tensor], Tensor | None]:
        """Run the encoder, collecting the output of the first ResnetBlock of every level.

        Returns (features, h): ``features[i]`` is (N, ch * ch_mult[i], H_i, W_i); ``h`` is the encoder
        output, or None when ``stop_after_features`` (then nothing after the last level's first block runs).
        """
        features: list[Tensor] = []
        h = self.conv_in(x)
        for level_index, level in enumerate(self.down):
            for block_index, block in enumerate(level.block):
                h = block(h)
                if block_index == 0:
                    features.append(h)  # before this level's attention, as DCKD's hooks see it
                    if stop_after_features and level_index == self.num_levels - 1:
                        return features, None
                if len(level.attn) > 0:
                    h = level.attn[block_index](h)
            if level_index != self.num_levels - 1:
                h = level.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        h = self.conv_out(F.silu(self.norm_out(h)))
        return features, h

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_features(x)[1]


# ---------------------------------------------------------------------------------------------------
# Soft code assignment
# ---------------------------------------------------------------------------------------------------


def latent_rows(latent: Tensor) -> Tensor:
    """(N, D, h, w) -> (N*h*w, D), rows ordered (n, y, x) like taming's quantizer."""
    return latent.permute(0, 2, 3, 1).reshape(-1, latent.shape[1])


def negative_squared_distance_logits(rows: Tensor, codebook: Tensor) -> Tensor:
    """Logits equal to ``-||z - e_k||^2`` up to a per-row constant: (M, D), (K, D) -> (M, K).

    ``-||z - e||^2 = -||z||^2 + 2 z.e - ||e||^2``, and a softmax over k ignores the per-row ``-||z||^2``,
    so it is left out: this is exact for the softmax and avoids the cancellation between two large
    terms that costs float32 precision when ||z|| is large. Computed in float32 even under autocast.
    """
    with torch.autocast(device_type=rows.device.type, enabled=False):
        rows, codebook = rows.float(), codebook.float()
        return torch.addmm(-codebook.square().sum(dim=1), rows, codebook.t(), alpha=2.0)


def code_distribution_from_latent(latent: Tensor, codebook: Tensor) -> Tensor:
    """softmax_k(-||z - e_k||^2) for every latent position (no temperature).

    latent (N, D, h, w), codebook (K, D) -> (N*h*w, K) float32, rows ordered (n, y, x).
    """
    return torch.softmax(negative_squared_distance_logits(latent_rows(latent), codebook), dim=1)


# ---------------------------------------------------------------------------------------------------
# The frozen encoder DCKD uses
# ---------------------------------------------------------------------------------------------------


class VQGANEncoder(nn.Module):
    """Encoder + quant_conv + codebook of a taming VQGAN, as DCKD uses them (see the module docstring).

    Args:
        embed_dim: codebook vector size D (= quant_conv output channels); 256 for the ImageNet model.
        n_embed: number of codebook vectors K; 1024 for the ImageNet model.
        ddconfig: taming's encoder/decoder config (``ch, ch_mult, num_res_blocks, attn_resolutions,
            in_channels, resolution, z_channels``, optionally ``out_ch, dropout, double_z``);
            ``double_z`` must be false (taming's VQ models set it so).

    The module has no buffers and no running statistics (GroupNorm only), so train() and eval() give
    the same outputs whenever ``dropout`` is 0, as in every taming VQGAN config.
    """

    def __init__(self, embed_dim: int, n_embed: int, ddconfig: Mapping[str, Any]) -> None:
        super().__init__()
        check_codebook_arguments(embed_dim, n_embed, ddconfig)
        if ddconfig.get("double_z", False):
            raise ValueError("ddconfig['double_z'] must be false for a VQ model (quant_conv expects z_channels inputs)")
        ddconfig = {**ddconfig, "double_z": False}  # taming's Encoder defaults to True; VQ configs all say False
        self.embed_dim, self.n_embed = embed_dim, n_embed
        self.encoder = Encoder(ddconfig)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, kernel_size=1)
        self.quantize = nn.Module()  # holds only the codebook, under taming's name
        self.quantize.embedding = nn.Embedding(n_embed, embed_dim)

    @property
    def codebook(self) -> Tensor:
        """(n_embed, embed_dim) codebook vectors e_k."""
        return self.quantize.embedding.weight

    def features(self, x: Tensor) -> list[Tensor]:
        """The per-level feature maps: x (N, 3, H, W) -> [(N, ch * ch_mult[i], H_i, W_i)], H_0 = H,
        H_{i+1} = floor(H_i / 2). Stops right after the last level's first ResnetBlock."""
        return self.encoder.forward_with_features(x, stop_after_features=True)[0]

    def encode(self, x: Tensor) -> Tensor:
        """Pre-quantisation latent z: x (N, 3, H, W) -> (N, embed_dim, h, w), H halved (down) levels-1 times."""
        return self.quant_conv(self.encoder(x))

    def features_and_latent(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """``(features(x), encode(x))`` from one encoder pass."""
        features, h = self.encoder.forward_with_features(x)
        return features, self.quant_conv(h)

    def code_distribution(self, x: Tensor) -> Tensor:
        """x (N, 3, H, W) -> (N*h*w, n_embed): softmax(-||z - e_k||^2) per latent position, rows (n, y, x)."""
        return code_distribution_from_latent(self.encode(x), self.codebook)

    def features_and_code_distribution(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """``(features(x), code_distribution(x))`` from one encoder pass (what a DCKD step needs)."""
        features, latent = self.features_and_latent(x)
        return features, code_distribution_from_latent(latent, self.codebook)

    def load_taming_state_dict(self, state_dict: Mapping[str, Tensor], source: str = "state_dict") -> None:
        """Load taming-named weights strictly, ignoring the VQGAN parts DCKD does not use.

        Keys under ``decoder.``, ``post_quant_conv.`` and ``loss.`` (decoder, discriminator, LPIPS) are
        skipped; any other key must be one of this module's, and every one of this module's keys must be
        present with the same shape and kind of value (float weights are never cast from integers or bools).
        Errors name the key, the expected and the found shape.
        """
        check_taming_state_dict(self.state_dict(), state_dict, source)
        expected = self.state_dict()
        self.load_state_dict({key: state_dict[key] for key in expected}, strict=True)


IGNORED_TAMING_PREFIXES = ("decoder.", "post_quant_conv.", "loss.")
"""Parts of a taming VQGAN checkpoint that DCKD does not use (decoder, discriminator, LPIPS)."""


def check_taming_state_dict(expected: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], source: str) -> None:
    """Raise ``CheckpointError`` unless ``state_dict`` fits the encoder whose (possibly meta) state_dict is
    ``expected``: see ``VQGANEncoder.load_taming_state_dict``."""
    unexpected = [key for key in state_dict if key not in expected and not key.startswith(IGNORED_TAMING_PREFIXES)]
    if unexpected:
        raise CheckpointError(
            f"{source}: unexpected key(s) {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}; a taming "
            "VQGAN state_dict holds encoder.*, quant_conv.*, quantize.embedding.weight "
            f"(and the ignored {list(IGNORED_TAMING_PREFIXES)})"
        )
    for key, reference in expected.items():
        if key not in state_dict:
            raise CheckpointError(f"{source}: missing key {key!r} (expected shape {tuple(reference.shape)})")
        found = state_dict[key]
        if not isinstance(found, Tensor) or found.shape != reference.shape:
            found_shape = tuple(found.shape) if isinstance(found, Tensor) else type(found).__name__
            raise CheckpointError(f"{source}: key {key!r} has shape {found_shape}, expected {tuple(reference.shape)}")
    wrong_kind = tensor_kind_mismatches(expected, state_dict)
    if wrong_kind:
        raise CheckpointError(f"{source}: wrong value types, never cast silently: {', '.join(wrong_kind[:8])}")


def load_vqgan_encoder(
    path: str | Path,
    embed_dim: int | None = None,
    n_embed: int | None = None,
    ddconfig: Mapping[str, Any] | None = None,
) -> VQGANEncoder:
    """The frozen encoder (eval mode, parameters without gradients; gradients still flow to its input, which
    DCKD's anchor needs), loaded strictly from a taming ``last.ckpt`` (Lightning dict with ``state_dict``), a
    plain state_dict, a ``.safetensors`` file or a ``dckd train-codebook`` checkpoint. Never executes pickled
    code. The architecture: the arguments, else the file's ``vqgan_config`` metadata (``dckd train-codebook``),
    else the official f16 / 1024-code configuration.

    Sizes read from the file are checked by value, then the encoder is built on the meta device and compared
    with the file's tensors (``dckd.models.sizes``): a ``vqgan_config`` that does not describe the file's
    weights is an error before any memory is allocated."""
    content = read_checkpoint(path)
    source = f"VQGAN checkpoint {path}"
    stored = content.get("vqgan_config", {}) if isinstance(content, dict) else {}
    if not isinstance(stored, dict):
        raise CheckpointError(f"{source}: vqgan_config is a {type(stored).__name__}, expected a mapping")
    official = taming_f16_1024_config()
    given = {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": ddconfig}
    arguments = {
        name: value if value is not None else stored.get(name, official[name]) for name, value in given.items()
    }
    state_dict = extract_state_dict(content, source=source)[0]
    skeleton = sizes.meta_network(lambda: VQGANEncoder(**arguments), f"{source} (vqgan_config or vqgan options)")
    check_taming_state_dict(skeleton.state_dict(), state_dict, source)
    encoder = VQGANEncoder(**arguments)
    encoder.load_taming_state_dict(state_dict, source=source)
    encoder.eval().requires_grad_(False)
    return encoder


def taming_f16_1024_config() -> dict[str, Any]:
    """Constructor arguments of taming's "VQGAN ImageNet f=16, 1024 codes" (manifest "VQGAN_f16_n1024")."""
    return {
        "embed_dim": 256,
        "n_embed": 1024,
        "ddconfig": {
            "double_z": False, "z_channels": 256, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
            "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2, "attn_resolutions": [16], "dropout": 0.0,
        },
    }  # fmt: skip
