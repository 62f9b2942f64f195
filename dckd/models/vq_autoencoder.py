"""A trainable VQGAN-style autoencoder, for ``dckd train-codebook`` where the ImageNet VQGAN is unavailable.

DCKD only needs the encoder, ``quant_conv`` and codebook of a VQGAN (``dckd/vqgan.py``). This module
trains a whole one on your own images: taming-transformers' Encoder, ``quant_conv``, a vector quantizer
(straight-through estimator), ``post_quant_conv`` and Decoder, all under taming's parameter names, so
``encoder_state_dict()`` (or the full ``state_dict()``) loads into ``VQGANEncoder`` unchanged.

Losses (taming's ``VQLPIPSWithDiscriminator`` without the perceptual term):
- L1 reconstruction, plus ``codebook_weight`` times the quantizer loss
  ``||sg[z] - e||^2 + beta * ||z - sg[e]||^2`` (beta = 0.25, the VQ-VAE form; taming's default
  "legacy" quantizer swaps which term beta multiplies).
- Optionally a PatchGAN discriminator (``NLayerDiscriminator``, hinge loss) whose generator term is
  scaled by taming's adaptive weight ``||grad L_rec|| / (||grad L_G|| + 1e-4)`` at the decoder's last
  layer, from a configurable step on. Off by default.
- No LPIPS: its VGG weights cannot be downloaded here, and DCKD does not depend on it.

Tiny datasets make codebooks collapse onto a few codes; ``code_usage`` reports perplexity and the
fraction of codes used, and ``VectorQuantizer.restart_unused_codes`` re-initialises codes that went
unused from randomly chosen encoder outputs (the usual "dead code restart").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dckd.models import sizes
from dckd.models.padding import pad_to_multiple
from dckd.models.vqgan import (
    TAMING_NORM_GROUPS,
    AttnBlock,
    Encoder,
    ResnetBlock,
    check_codebook_arguments,
    check_ddconfig,
    group_norm,
    latent_rows,
    negative_squared_distance_logits,
)

# The parameters VQGANEncoder holds; the rest (decoder, post_quant_conv) only serve training.
ENCODER_PREFIXES = ("encoder.", "quant_conv.", "quantize.embedding.weight")


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv (taming's Upsample). (N, C, H, W) -> (N, C, 2H, 2W)."""

    def __init__(self, channels: int, with_conv: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1) if with_conv else None

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x if self.conv is None else self.conv(x)


class Decoder(nn.Module):
    """taming's Decoder: conv_in, mid (block, attention, block), per level from the coarsest
    ``num_res_blocks + 1`` ResnetBlocks (+ AttnBlock at ``attn_resolutions``) and an Upsample (not after
    level 0), then GroupNorm, swish, conv_out. (N, z_channels, h, w) -> (N, out_ch, h * 2**(L-1), ...)."""

    def __init__(self, ddconfig: Mapping[str, Any]) -> None:
        super().__init__()
        check_ddconfig(ddconfig)
        ch, ch_mult = ddconfig["ch"], tuple(ddconfig["ch_mult"])
        dropout = ddconfig.get("dropout", 0.0)
        groups = ddconfig.get("norm_groups", TAMING_NORM_GROUPS)
        self.num_levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        nominal_resolution = ddconfig["resolution"] // 2 ** (self.num_levels - 1)
        self.conv_in = nn.Conv2d(ddconfig["z_channels"], block_in, kernel_size=3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, dropout, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, dropout, groups)
        levels: list[nn.Module] = []
        for level_index in reversed(range(self.num_levels)):
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            block_out = ch * ch_mult[level_index]
            for _ in range(ddconfig["num_res_blocks"] + 1):
                level.block.append(ResnetBlock(block_in, block_out, dropout, groups))
                block_in = block_out
                if nominal_resolution in ddconfig["attn_resolutions"]:
                    level.attn.append(AttnBlock(block_in, groups))
            if level_index != 0:
                level.upsample = Upsample(block_in, ddconfig.get("resamp_with_conv", True))
                nominal_resolution *= 2
            levels.insert(0, level)  # taming stores levels finest first: up.0 is full resolution
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(block_in, groups)
        self.conv_out = nn.Conv2d(block_in, ddconfig.get("out_ch", 3), kernel_size=3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level_index in reversed(range(self.num_levels)):
            level = self.up[level_index]
            for block_index, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[block_index](h)
            if level_index != 0:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def code_usage(indices: Tensor, n_embed: int) -> dict[str, Tensor]:
    """Codebook usage of a batch of code indices (any shape, values in [0, n_embed)).

    ``perplexity`` = exp(entropy of the code histogram): n_embed when all codes are equally used, 1 when
    one code takes everything. ``used_fraction``: share of codes chosen at least once. ``counts``: (n_embed,).
    """
    counts = torch.bincount(indices.reshape(-1), minlength=n_embed)
    probabilities = counts.float() / counts.sum().clamp_min(1)
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-10))).sum()
    return {"perplexity": entropy.exp(), "used_fraction": (counts > 0).float().mean(), "counts": counts}


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantisation with a straight-through gradient (taming's VectorQuantizer2
    without index remapping). Codebook ``embedding.weight``: (n_embed, embed_dim), initialised
    uniformly in +-1/n_embed as taming does."""

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.n_embed, self.embed_dim, self.beta = n_embed, embed_dim, beta
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def forward(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """latent z (N, D, h, w) -> (quantised (N, D, h, w) with straight-through gradient to z,
        loss ``mean(sg[z] - e)^2 + beta * mean(z - sg[e])^2`` (scalar), indices (N, h, w) int64)."""
        batch, _, height, width = latent.shape
        indices = negative_squared_distance_logits(latent_rows(latent), self.embedding.weight).argmax(dim=1)
        # (N*h*w, D) rows back to (N, D, h, w)
        quantised = self.embedding(indices).reshape(batch, height, width, -1).permute(0, 3, 1, 2).to(latent.dtype)
        codebook_term = F.mse_loss(quantised, latent.detach())  # moves the codes toward the encoder outputs
        commitment_term = F.mse_loss(latent, quantised.detach())  # keeps the encoder near its codes
        loss = codebook_term + self.beta * commitment_term
        straight_through = latent + (quantised - latent).detach()
        return straight_through, loss, indices.reshape(batch, height, width)

    @torch.no_grad()
    def restart_unused_codes(self, counts: Tensor, latents: Tensor, generator: torch.Generator | None = None) -> int:
        """Re-initialise every code with ``counts == 0`` from a randomly chosen latent vector.

        counts (n_embed,): how often each code was chosen since the last restart (sum ``code_usage``'s
        counts over some steps); latents (M, embed_dim) or (N, embed_dim, h, w): recent encoder outputs
        (after quant_conv). Unused codes are otherwise never chosen again and never receive a gradient,
        which on tiny datasets leaves most of the codebook dead. Returns the number of codes restarted.
        """
        if counts.shape != (self.n_embed,):
            raise ValueError(f"counts must have shape ({self.n_embed},), got {tuple(counts.shape)}")
        rows = latent_rows(latents) if latents.dim() == 4 else latents
        if rows.dim() != 2 or rows.shape[1] != self.embed_dim or rows.shape[0] == 0:
            raise ValueError(
                f"latents must be (M, {self.embed_dim}) or (N, {self.embed_dim}, h, w), got {tuple(latents.shape)}"
            )
        unused = (counts == 0).nonzero().flatten().to(self.embedding.weight.device)
        if unused.numel() > 0:
            # Drawn on the generator's device (CPU for the engine's generators), then moved.
            generator_device = generator.device if generator is not None else rows.device
            choice = torch.randint(rows.shape[0], (unused.numel(),), generator=generator, device=generator_device)
            self.embedding.weight[unused] = rows[choice.to(rows.device)].to(self.embedding.weight)
        return int(unused.numel())


class VQAutoencoder(nn.Module):
    """Encoder -> quant_conv -> VectorQuantizer -> post_quant_conv -> Decoder, taming's VQModel without
    its loss module. Arguments as ``VQGANEncoder`` (``dckd.models.vqgan``); ``beta`` weighs the commitment term.
    Images in, reconstructions out, both (N, in_channels, H, W) with H, W multiples of 2**(levels-1)."""

    def __init__(self, embed_dim: int, n_embed: int, ddconfig: Mapping[str, Any], beta: float = 0.25) -> None:
        super().__init__()
        check_codebook_arguments(embed_dim, n_embed, ddconfig)
        sizes.number("beta", beta, minimum=0)
        if ddconfig.get("double_z", False):
            raise ValueError("ddconfig['double_z'] must be false for a VQ model (quant_conv expects z_channels inputs)")
        ddconfig = {**ddconfig, "double_z": False}
        self.embed_dim, self.n_embed, self.ddconfig = embed_dim, n_embed, dict(ddconfig)
        self.encoder = Encoder(ddconfig)
        self.decoder = Decoder(ddconfig)
        self.quantize = VectorQuantizer(n_embed, embed_dim, beta)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], kernel_size=1)

    def encode(self, x: Tensor) -> Tensor:
        """Pre-quantisation latent (N, embed_dim, h, w), the same function as ``VQGANEncoder.encode``."""
        return self.quant_conv(self.encoder(x))

    def decode(self, quantised: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(quantised))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (N, C, H, W) -> (reconstruction (N, C, H, W), quantizer loss (scalar), code indices (N, h, w))."""
        quantised, codebook_loss, indices = self.quantize(self.encode(x))
        return self.decode(quantised), codebook_loss, indices

    @property
    def last_layer(self) -> Tensor:
        """The decoder's output conv weight, where the adversarial term's adaptive weight is measured."""
        return self.decoder.conv_out.weight

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """Only the keys ``VQGANEncoder`` holds (``encoder.*``, ``quant_conv.*``, ``quantize.embedding.weight``)."""
        return {key: value for key, value in self.state_dict().items() if key.startswith(ENCODER_PREFIXES)}


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator of pix2pix as taming uses it (BatchNorm, LeakyReLU 0.2, 4x4 convs,
    weights N(0, 0.02)); parameter names ``main.*`` match taming's ``loss.discriminator.*``.
    (N, C, H, W) -> (N, 1, H', W') real/fake logits per patch."""

    def __init__(self, input_channels: int = 3, base_channels: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(input_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        multiplier = 1
        for layer_index in range(1, num_layers + 1):
            previous, multiplier = multiplier, min(2**layer_index, 8)
            stride = 2 if layer_index < num_layers else 1  # the last one keeps the resolution
            layers += [
                # no bias: BatchNorm's shift follows
                nn.Conv2d(base_channels * previous, base_channels * multiplier, 4, stride, padding=1, bias=False),
                nn.BatchNorm2d(base_channels * multiplier),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(base_channels * multiplier, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        for module in self.modules():  # taming's weights_init
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


class CodebookNetwork(VQAutoencoder):
    """``VQAutoencoder`` as a network the engine trains and evaluates like any restoration network.

    ``forward(x)`` takes images in [0, 1] of any size (padded to the latent grid's multiple and cropped
    back) and returns the reconstruction in [0, 1]; ``forward(x, details=True)`` (training crops, sides
    already multiples) returns the parts the training loss needs, in taming's [-1, 1] range:
    ``{"input", "reconstruction", "quantizer_loss", "indices", "latent"}``. Same parameters and names as
    ``VQAutoencoder`` (and so taming's). Called through the possibly wrapped network, so DDP sees the pass.
    """

    scale = 1

    def __init__(self, embed_dim: int, n_embed: int, ddconfig: Mapping[str, Any], beta: float = 0.25) -> None:
        check_ddconfig(ddconfig)
        super().__init__(embed_dim, n_embed, ddconfig, beta)
        self.size_multiple = 2 ** (len(ddconfig["ch_mult"]) - 1)

    def forward(self, x: Tensor, details: bool = False) -> Tensor | dict[str, Tensor]:
        if details:
            scaled = x * 2 - 1
            latent = self.encode(scaled)
            quantised, quantizer_loss, indices = self.quantize(latent)
            return {
                "input": scaled,
                "reconstruction": self.decode(quantised),
                "quantizer_loss": quantizer_loss,
                "indices": indices,
                "latent": latent.detach(),
            }
        height, width = x.shape[-2:]
        reconstruction, _, _ = super().forward(pad_to_multiple(x, self.size_multiple) * 2 - 1)
        return ((reconstruction[..., :height, :width] + 1) / 2).clamp(0, 1)

    def autoencoder(self) -> VQAutoencoder:
        """A plain ``VQAutoencoder`` with these weights (``forward`` returning the taming triple)."""
        plain = VQAutoencoder(self.embed_dim, self.n_embed, self.ddconfig, self.quantize.beta)
        plain.load_state_dict(self.state_dict())
        return plain
