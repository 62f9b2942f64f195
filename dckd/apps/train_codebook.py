"""``dckd train-codebook``: train a VQGAN-style encoder and codebook on your own images.

DCKD measures images with a frozen VQGAN encoder (``dckd/vqgan.py``). Where the ImageNet VQGAN
(``vqgan_imagenet_f16_1024``) is unavailable, or a domain-specific one is wanted (medical, satellite,
documents), this trains ``dckd.models.vq_autoencoder.VQAutoencoder``, taming's architecture at a configurable
width, and saves it in the format ``dckd.engine.setup.build_vqgan`` loads with no further options:

    dckd train-codebook bundled --output pretrained/codebook_bundled.pth              # the bundled photos
    dckd train-codebook /data/DIV2K/HR --output codebook.pth --iterations 20000 --device cuda

Input range. Images are read in [0, 1] and fed to the autoencoder as ``2x - 1``, in [-1, 1], as taming
trains its VQGANs. A DCKD config using a codebook from here should therefore set
``dckd.vqgan_input_range: minus_one_one`` (``mclir.vqgan_input_range`` likewise); the published code's
``zero_one`` feeds [0, 1] images, which this encoder never saw.

Training. Random ``crop_size`` crops with random flips and transposes (``dckd.data.augment``), Adam with
taming's betas (0.5, 0.9), loss = L1 reconstruction + ``codebook_weight`` * (codebook + ``beta`` *
commitment) (``dckd.models.vq_autoencoder.autoencoder_loss``), optionally taming's hinge PatchGAN with its
adaptive weight (off unless ``adversarial_weight`` > 0). Every ``restart_every_iters`` iterations the codes
no batch chose since the previous restart are re-initialised from encoder outputs of the current batch
(dead-code restart): small datasets otherwise collapse onto a handful of codes. Usage (perplexity, share
of codes used) and reconstruction PSNR are measured on a fixed set of evaluation crops before and after
training. Everything random (initialisation, crops, flips, restarts) follows from ``seed``: two CPU runs
with the same arguments give identical weights (cuDNN may make GPU runs differ in the last bits).

Checkpoint (``torch.load(weights_only=True)`` reads it; only tensors and plain Python values):
``{"state_dict": taming-named weights (encoder.*, quant_conv.*, quantize.embedding.weight,
post_quant_conv.*, decoder.*, and loss.discriminator.* when adversarial), "vqgan_config": {"embed_dim",
"n_embed", "ddconfig"}, "input_range": "minus_one_one", "training": the arguments, "statistics": the
final evaluation}``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import Tensor

from dckd.models.vq_autoencoder import (
    NLayerDiscriminator,
    VQAutoencoder,
    adversarial_factor,
    autoencoder_loss,
    code_usage,
    discriminator_hinge_loss,
)
from dckd.data.folders import list_images
from dckd.data.image_io import DatasetError, decode_image
from dckd.data.sampler import TrainBatchSampler, seed_for
from dckd.data.transforms import augment

INPUT_RANGE = "minus_one_one"
"""The ``vqgan_input_range`` a DCKD config must use with a codebook trained here."""
DEFAULT_CH_MULT = (1, 1, 2, 2, 4)
"""Five levels, as the official f16 VQGAN: DCKD's default ``layer_weights`` expect five feature maps."""


# --------------------------------------------------------------------------------------------------
# Data: random crops of whole images held in memory
# --------------------------------------------------------------------------------------------------
def image_paths(images: str | Path) -> list[Path]:
    """The training images: ``bundled`` (the bundled training photographs) or a folder of images."""
    if str(images) == "bundled":
        from dckd.data.bundled import bundled_root

        return list_images(bundled_root("train") / "HR")
    return list_images(images)


class ImageCrops:
    """Square crops of a list of images, in [0, 1], drawn from explicit seeds.

    Every image is decoded once when constructed (a corrupt or too small file fails before training
    starts, naming the file); ``cache_images`` keeps the decoded pixels (H*W*3 bytes each) for the run.
    """

    def __init__(self, paths: Sequence[Path], crop_size: int, cache_images: bool = True) -> None:
        self.paths = list(paths)
        self.crop_size = crop_size
        self.cache: dict[int, np.ndarray] = {}
        for index, path in enumerate(self.paths):
            pixels = self._decode(index)
            height, width = pixels.shape[:2]
            if min(height, width) < crop_size:
                raise DatasetError(f"'{path}' is {height}x{width}, smaller than the crop size {crop_size} "
                                   "(--crop-size); remove it or choose a smaller crop")
            if cache_images:
                self.cache[index] = pixels

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, index: int) -> np.ndarray:
        decoded = decode_image(self.paths[index])
        pixels = decoded.pixels
        if decoded.bit_depth != 8:  # 16-bit sources: scale to 8 bits once, as every crop is float later anyway
            pixels = np.floor(pixels.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
        return pixels

    def crop(self, index: int, seed: int, flips: bool = True) -> Tensor:
        """A (3, crop_size, crop_size) float32 crop of image ``index``; position and flips from ``seed``."""
        pixels = self.cache.get(index)
        if pixels is None:
            pixels = self._decode(index)
        generator = torch.Generator().manual_seed(seed)
        height, width = pixels.shape[:2]
        top = int(torch.randint(height - self.crop_size + 1, (), generator=generator))
        left = int(torch.randint(width - self.crop_size + 1, (), generator=generator))
        patch = pixels[top:top + self.crop_size, left:left + self.crop_size]
        tensor = torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float() / 255.0
        return augment([tensor], generator)[0] if flips else tensor

    def batch(self, keys: Sequence[tuple[int, int]], flips: bool = True) -> Tensor:
        """(N, 3, crop_size, crop_size) from ``(index, seed)`` keys."""
        return torch.stack([self.crop(index, seed, flips) for index, seed in keys])


# --------------------------------------------------------------------------------------------------
# Architecture and evaluation
# --------------------------------------------------------------------------------------------------
def codebook_ddconfig(ch: int, ch_mult: Sequence[int], num_res_blocks: int, attn_resolutions: Sequence[int],
                      z_channels: int, resolution: int) -> dict[str, Any]:
    """A taming ``ddconfig`` with plain lists (it is stored in the checkpoint); ``resolution`` only decides
    at which levels ``attn_resolutions`` put attention (resolution halves per level)."""
    return {"double_z": False, "z_channels": z_channels, "resolution": resolution, "in_channels": 3, "out_ch": 3,
            "ch": ch, "ch_mult": [int(value) for value in ch_mult], "num_res_blocks": num_res_blocks,
            "attn_resolutions": [int(value) for value in attn_resolutions], "dropout": 0.0}


@torch.no_grad()
def evaluate(model: VQAutoencoder, images: Tensor, batch_size: int, device: torch.device) -> dict[str, float]:
    """Reconstruction and codebook usage on fixed crops ``images`` (N, 3, S, S) in [0, 1].

    Returns {"reconstruction": mean |x - rec| in [-1, 1] units (the training term), "psnr": dB in [0, 1]
    units, "codebook": the quantizer loss, "perplexity", "used_codes", "used_fraction"}.
    """
    model.eval()
    absolute, squared, codebook, indices = 0.0, 0.0, 0.0, []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device) * 2 - 1
        reconstruction, codebook_loss, batch_indices = model(x)
        absolute += float((x - reconstruction).abs().mean()) * len(x)
        # [-1, 1] -> [0, 1] halves the error; PSNR is on the clamped image a user would look at.
        squared += float(((x - reconstruction.clamp(-1, 1)) / 2).square().mean()) * len(x)
        codebook += float(codebook_loss) * len(x)
        indices.append(batch_indices.cpu())
    model.train()
    count = len(images)
    usage = code_usage(torch.cat(indices), model.n_embed)
    mean_squared = squared / count
    return {"reconstruction": absolute / count, "psnr": 10 * math.log10(1 / max(mean_squared, 1e-12)),
            "codebook": codebook / count, "perplexity": float(usage["perplexity"]),
            "used_codes": int((usage["counts"] > 0).sum()), "used_fraction": float(usage["used_fraction"])}


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def train_codebook(
    images: str | Path,
    output: str | Path,
    *,
    iterations: int = 2000,
    batch_size: int = 8,
    crop_size: int = 64,
    learning_rate: float = 2e-4,
    ch: int = 32,
    ch_mult: Sequence[int] = DEFAULT_CH_MULT,
    num_res_blocks: int = 1,
    attn_resolutions: Sequence[int] = (),
    z_channels: int = 64,
    embed_dim: int = 64,
    n_embed: int = 256,
    beta: float = 0.25,
    codebook_weight: float = 1.0,
    adversarial_weight: float = 0.0,
    adversarial_start_iteration: int = 0,
    restart_every_iters: int = 200,
    evaluation_crops: int = 64,
    seed: int = 0,
    device: str = "auto",
    log_every_iters: int = 50,
    log_dir: str | Path | None = None,
    cache_images: bool = True,
    encoder_only: bool = False,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Train a VQ autoencoder on ``images`` and save its checkpoint to ``output`` (atomically).

    Args:
        images: a folder of images, or ``"bundled"`` for the bundled training photographs.
        output: the checkpoint file (``.pth``); ``build_vqgan(VQGANConfig(checkpoint=output))`` loads it.
        iterations: optimizer steps.
        batch_size, crop_size: crops per step and their side in pixels (a multiple of 2**(len(ch_mult) - 1)).
        learning_rate: Adam learning rate of the autoencoder (and of the discriminator), betas (0.5, 0.9).
        ch, ch_mult, num_res_blocks, attn_resolutions, z_channels: taming's ddconfig (widths ``ch * ch_mult``
            must be multiples of 32, GroupNorm's group count); attention goes to the levels whose nominal
            resolution (``crop_size`` halved per level) is listed.
        embed_dim, n_embed: codebook vector size and number of codes.
        beta: weight of the commitment term inside the quantizer loss.
        codebook_weight: weight of the quantizer loss next to the L1 reconstruction.
        adversarial_weight: weight of taming's adaptive-weighted generator term (0 = no discriminator).
        adversarial_start_iteration: first iteration of the adversarial part.
        restart_every_iters: dead-code restart interval (0 = never); not in the run's last interval.
        evaluation_crops: fixed crops for the usage and PSNR measured before and after training.
        seed: everything random follows from it.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        log_every_iters: interval of the progress line and of ``log.jsonl`` records.
        log_dir: where ``log.jsonl`` goes (default: ``<output stem>-log`` beside ``output``); a previous
            ``log.jsonl`` there is replaced, since a new run starts from scratch.
        cache_images: keep decoded images in memory (False: decode per crop, for folders larger than memory).
        encoder_only: save only what DCKD loads (encoder, quant_conv, codebook): about half the file; the
            decoder (needed only to keep training or to look at reconstructions) is dropped.
        stream: progress output (default stderr).

    Returns:
        The final evaluation (``evaluate``'s keys) plus {"initial": the evaluation before training,
        "iterations", "seconds", "restarted_codes", "output"}.
    """
    from dckd.files.weights import save_torch_atomic
    from dckd.engine.distributed import resolve_device
    from dckd.engine.run_log import Progress, RunLog

    _check_arguments(iterations, batch_size, crop_size, ch, ch_mult, n_embed, log_every_iters, restart_every_iters,
                     evaluation_crops)
    if adversarial_weight > 0 and crop_size < 24:
        # The PatchGAN shrinks its input 8x and then loses 2 more pixels to its last two 4x4 convolutions.
        raise ValueError(f"--crop-size {crop_size} is too small for the discriminator (--adversarial-weight): "
                         "use >= 24")
    output = Path(output)
    log_dir = Path(log_dir) if log_dir is not None else output.parent / f"{output.stem}-log"
    stream = stream or sys.stderr
    target = resolve_device(device)

    # Data
    crops = ImageCrops(image_paths(images), crop_size, cache_images)
    sampler = TrainBatchSampler(len(crops), batch_size, seed)
    evaluation_keys = [(index % len(crops), seed_for(seed, "evaluation", index)) for index in range(evaluation_crops)]
    evaluation_images = crops.batch(evaluation_keys, flips=False)

    # Networks: initialised from the seed without touching the caller's global RNG.
    ddconfig = codebook_ddconfig(ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, crop_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_for(seed, "initialisation"))
        model = VQAutoencoder(embed_dim, n_embed, ddconfig, beta=beta)
        discriminator = NLayerDiscriminator() if adversarial_weight > 0 else None
    model = model.to(target).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.5, 0.9))
    if discriminator is not None:
        discriminator = discriminator.to(target).train()
        discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=learning_rate, betas=(0.5, 0.9))
    restart_generator = torch.Generator(device=target).manual_seed(seed_for(seed, "restarts"))

    initial = evaluate(model, evaluation_images, batch_size, target)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "log.jsonl").unlink(missing_ok=True)
    run_log = RunLog(log_dir, tensorboard=False)
    run_log.event(0, evaluation=initial)
    progress = Progress(iterations, stream=stream, label="codebook")
    progress.message(f"train-codebook: {len(crops)} images, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
                     f"parameters, {n_embed} codes, on {target}; initial PSNR {initial['psnr']:.2f} dB, "
                     f"{initial['used_codes']}/{n_embed} codes used")

    # The loop
    counts_since_restart = torch.zeros(n_embed, dtype=torch.long, device=target)
    counts_since_log = torch.zeros(n_embed, dtype=torch.long, device=target)
    sums: dict[str, float] = {}
    steps_since_log, restarted_total, started = 0, 0, time.monotonic()
    for iteration in range(1, iterations + 1):
        x = crops.batch(sampler.batch(iteration - 1)).to(target) * 2 - 1  # [0, 1] -> [-1, 1], as taming
        latent = model.encode(x)
        quantised, quantizer_loss, indices = model.quantize(latent)
        reconstruction = model.decode(quantised)
        factor = adversarial_factor(iteration, adversarial_start_iteration) if discriminator is not None else 0.0
        fake_logits = discriminator(reconstruction) if factor > 0 else None
        terms = autoencoder_loss(x, reconstruction, quantizer_loss, codebook_weight, fake_logits=fake_logits,
                                 last_layer=model.last_layer, adversarial_weight=adversarial_weight * factor)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if factor > 0:
            discriminator_loss = discriminator_hinge_loss(discriminator(x), discriminator(reconstruction.detach()))
            discriminator_optimizer.zero_grad(set_to_none=True)
            discriminator_loss.backward()
            discriminator_optimizer.step()
            terms["discriminator"] = discriminator_loss

        batch_counts = torch.bincount(indices.reshape(-1), minlength=n_embed)
        counts_since_restart += batch_counts
        counts_since_log += batch_counts
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        steps_since_log += 1

        # Dead-code restart, never in the last interval so the saved codebook has been trained after it.
        restart_due = restart_every_iters and iteration % restart_every_iters == 0
        if restart_due and iteration + restart_every_iters <= iterations:
            restarted = model.quantize.restart_unused_codes(counts_since_restart, latent.detach(), restart_generator)
            restarted_total += restarted
            counts_since_restart.zero_()
            run_log.event(iteration, restarted_codes=restarted)

        if iteration % log_every_iters == 0 or iteration == iterations:
            values = {name: total / steps_since_log for name, total in sums.items()}
            probabilities = counts_since_log.float() / counts_since_log.sum()
            values["perplexity"] = float(torch.exp(-(probabilities * probabilities.clamp_min(1e-10).log()).sum()))
            values["seconds_per_iter"] = (time.monotonic() - started) / iteration
            run_log.training(iteration, {"lr": learning_rate, **values})
            progress.update(iteration, {name: values[name] for name in ("loss", "reconstruction", "perplexity")},
                            force=True)
            sums, steps_since_log = {}, 0
            counts_since_log.zero_()
    progress.close()
    seconds = time.monotonic() - started

    # Final evaluation and the checkpoint
    final = evaluate(model, evaluation_images, batch_size, target)
    run_log.event(iterations, evaluation=final)
    run_log.close()
    weights = model.encoder_state_dict() if encoder_only else model.state_dict()
    state_dict = {name: tensor.detach().cpu() for name, tensor in weights.items()}
    if discriminator is not None and not encoder_only:  # taming's names; build_vqgan ignores loss.*
        state_dict.update({f"loss.discriminator.{name}": tensor.detach().cpu()
                           for name, tensor in discriminator.state_dict().items()})
    training = {"images": str(images), "iterations": iterations, "batch_size": batch_size, "crop_size": crop_size,
                "learning_rate": learning_rate, "beta": beta, "codebook_weight": codebook_weight,
                "adversarial_weight": adversarial_weight, "adversarial_start_iteration": adversarial_start_iteration,
                "restart_every_iters": restart_every_iters, "seed": seed, "device": str(target),
                "torch": str(torch.__version__)}
    save_torch_atomic({"state_dict": state_dict,
                       "vqgan_config": {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": ddconfig},
                       "input_range": INPUT_RANGE, "training": training, "statistics": final}, output)
    progress.message(
        f"train-codebook: {final['used_codes']}/{n_embed} codes used ({100 * final['used_fraction']:.0f}%), perplexity "
        f"{final['perplexity']:.1f}, reconstruction PSNR {final['psnr']:.2f} dB (was {initial['psnr']:.2f}) on "
        f"{evaluation_crops} crops; {restarted_total} codes restarted; {seconds:.0f} s. Saved {output} "
        f"(use it with dckd.vqgan_input_range: {INPUT_RANGE})")
    return {**final, "initial": initial, "iterations": iterations, "seconds": seconds,
            "restarted_codes": restarted_total, "output": str(output)}


def _check_arguments(iterations: int, batch_size: int, crop_size: int, ch: int, ch_mult: Sequence[int],
                     n_embed: int, log_every_iters: int, restart_every_iters: int, evaluation_crops: int) -> None:
    """Errors that name the command-line option, before any image is read."""
    for option, value in (("--iterations", iterations), ("--batch-size", batch_size), ("--n-embed", n_embed),
                          ("--log-every", log_every_iters), ("--evaluation-crops", evaluation_crops)):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if restart_every_iters < 0:
        raise ValueError(f"--restart-every must be >= 0 (0 = never), got {restart_every_iters}")
    if len(ch_mult) < 1:
        raise ValueError("--ch-mult needs at least one level")
    factor = 2 ** (len(ch_mult) - 1)
    if crop_size < factor or crop_size % factor:
        raise ValueError(f"--crop-size {crop_size} must be a multiple of {factor} (2 ** (levels - 1), "
                         f"{len(ch_mult)} levels in --ch-mult)")
    widths = [ch * multiplier for multiplier in ch_mult]
    if any(width % 32 for width in widths):
        raise ValueError(f"--ch {ch} x --ch-mult {list(ch_mult)} gives widths {widths}; every width must be a "
                         "multiple of 32 (GroupNorm with 32 groups)")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def _integers(text: str) -> list[int]:
    """``"1,1,2,2,4"`` -> [1, 1, 2, 2, 4]; ``""`` -> []."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_train_codebook_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dckd train-codebook`` (defaults as ``train_codebook``'s)."""
    parser.description = ("Train a VQGAN-style encoder and codebook (taming's architecture) on a folder of images, "
                          "for DCKD's feature and codebook losses. Use the result with "
                          f"vqgan.checkpoint=<output> and dckd.vqgan_input_range={INPUT_RANGE}.")
    parser.add_argument("images", help="folder of training images, or 'bundled' for the bundled training photographs")
    parser.add_argument("--output", "-o", required=True, help="checkpoint to write (.pth)")
    parser.add_argument("--iterations", type=int, default=2000, help="optimizer steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--crop-size", type=int, default=64, help="crop side in pixels (default 64)")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    architecture = parser.add_argument_group("architecture (taming ddconfig)")
    architecture.add_argument("--ch", type=int, default=32, help="base width (default 32; official VQGAN 128)")
    architecture.add_argument("--ch-mult", type=_integers, default=list(DEFAULT_CH_MULT),
                              help="width multiplier per level (default 1,1,2,2,4: five levels, as DCKD expects)")
    architecture.add_argument("--num-res-blocks", type=int, default=1, help="ResnetBlocks per level (default 1)")
    architecture.add_argument("--attn-resolutions", type=_integers, default=[],
                              help="nominal resolutions with attention, e.g. 16 (default: none besides the middle)")
    architecture.add_argument("--z-channels", type=int, default=64, help="encoder output channels (default 64)")
    architecture.add_argument("--embed-dim", type=int, default=64, help="codebook vector size (default 64)")
    architecture.add_argument("--n-embed", type=int, default=256, help="number of codes (default 256)")
    losses = parser.add_argument_group("losses")
    losses.add_argument("--beta", type=float, default=0.25, help="commitment weight inside the quantizer loss")
    losses.add_argument("--codebook-weight", type=float, default=1.0, help="weight of the quantizer loss")
    losses.add_argument("--adversarial-weight", type=float, default=0.0,
                        help="PatchGAN generator weight (default 0: no discriminator)")
    losses.add_argument("--adversarial-start", type=int, default=0, help="first iteration of the adversarial part")
    losses.add_argument("--restart-every", type=int, default=200,
                        help="dead-code restart interval in iterations (0 = never; default 200)")
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    run.add_argument("--log-every", type=int, default=50, help="progress and log.jsonl interval (default 50)")
    run.add_argument("--log-dir", help="where log.jsonl goes (default: <output stem>-log beside the output)")
    run.add_argument("--evaluation-crops", type=int, default=64, help="fixed crops for the usage/PSNR report")
    run.add_argument("--no-cache", action="store_true", help="decode images per crop instead of keeping them in memory")
    run.add_argument("--encoder-only", action="store_true",
                     help="save only the encoder, quant_conv and codebook (what DCKD loads; about half the size)")


def run_train_codebook_command(arguments: argparse.Namespace) -> int:
    train_codebook(
        arguments.images, arguments.output, iterations=arguments.iterations, batch_size=arguments.batch_size,
        crop_size=arguments.crop_size, learning_rate=arguments.lr, ch=arguments.ch, ch_mult=arguments.ch_mult,
        num_res_blocks=arguments.num_res_blocks, attn_resolutions=arguments.attn_resolutions,
        z_channels=arguments.z_channels, embed_dim=arguments.embed_dim, n_embed=arguments.n_embed,
        beta=arguments.beta, codebook_weight=arguments.codebook_weight,
        adversarial_weight=arguments.adversarial_weight, adversarial_start_iteration=arguments.adversarial_start,
        restart_every_iters=arguments.restart_every, evaluation_crops=arguments.evaluation_crops, seed=arguments.seed,
        device=arguments.device, log_every_iters=arguments.log_every, log_dir=arguments.log_dir,
        cache_images=not arguments.no_cache, encoder_only=arguments.encoder_only,
    )
    return 0
