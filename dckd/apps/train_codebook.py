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

Training runs on dckd's engine (``dckd.engine.loop``) as method ``codebook`` (``dckd.methods.codebook``):
random ``crop_size`` crops with random flips and transposes, Adam with taming's betas (0.5, 0.9), loss = L1
reconstruction + ``codebook_weight`` * (codebook + ``beta`` * commitment), optionally taming's hinge PatchGAN
with its adaptive weight (off unless ``adversarial_weight`` > 0), dead-code restarts every
``restart_every_iters`` iterations (small datasets otherwise collapse onto a handful of codes). The run
folder (``--log-dir``, default ``<output stem>-log`` beside the output) holds ``config.yaml``, ``log.jsonl``
and checkpoints: running the same command again resumes an interrupted run. Usage (perplexity, share of
codes used) and reconstruction PSNR are measured on a fixed set of evaluation crops before and after
training. Everything random (initialisation, crops, flips, restarts) follows from ``seed``: two CPU runs
with the same arguments give identical weights (cuDNN may make GPU runs differ in the last bits), and the
caller's global random state does not move.

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

import torch
from PIL import Image

from dckd.config.schema import config_from_dict
from dckd.data.bundled import bundled_root
from dckd.data.folders import list_images
from dckd.data.sampler import seed_for
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.run_folder import RunFolderLock
from dckd.engine.run_log import Progress, RunLog
from dckd.engine.setup import build_dataset, construct_network
from dckd.errors import ConfigError, DatasetError
from dckd.files.weights import load_network_weights, save_torch_atomic
from dckd.models.vq_autoencoder import CodebookNetwork, code_usage
from dckd.models.vqgan import TAMING_NORM_GROUPS

INPUT_RANGE = "minus_one_one"
"""The ``vqgan_input_range`` a DCKD config must use with a codebook trained here."""
DEFAULT_CH_MULT = (1, 1, 2, 2, 4)
"""Five levels, as the official f16 VQGAN: DCKD's default ``layer_weights`` expect five feature maps."""


def image_paths(images: str | Path) -> list[Path]:
    """The training images: ``bundled`` (the bundled training photographs) or a folder of images."""
    return list_images(_image_folder(images))


def _image_folder(images: str | Path) -> Path:
    return bundled_root("train") / "HR" if str(images) == "bundled" else Path(images)


def codebook_ddconfig(
    ch: int,
    ch_mult: Sequence[int],
    num_res_blocks: int,
    attn_resolutions: Sequence[int],
    z_channels: int,
    resolution: int,
    norm_groups: int = TAMING_NORM_GROUPS,
) -> dict[str, Any]:
    """A taming ``ddconfig`` with plain lists (it is stored in the checkpoint); ``resolution`` only decides
    at which levels ``attn_resolutions`` put attention (resolution halves per level). ``norm_groups`` other
    than taming's 32 is recorded (narrow encoders: widths below 32)."""
    extra = {} if norm_groups == TAMING_NORM_GROUPS else {"norm_groups": norm_groups}
    return {
        **extra,
        "double_z": False,
        "z_channels": z_channels,
        "resolution": resolution,
        "in_channels": 3,
        "out_ch": 3,
        "ch": ch,
        "ch_mult": [int(value) for value in ch_mult],
        "num_res_blocks": num_res_blocks,
        "attn_resolutions": [int(value) for value in attn_resolutions],
        "dropout": 0.0,
    }


@torch.no_grad()
def evaluate(model: CodebookNetwork, images: torch.Tensor, batch_size: int, device: torch.device) -> dict[str, float]:
    """Reconstruction and codebook usage on fixed crops ``images`` (N, 3, S, S) in [0, 1].

    Returns {"reconstruction": mean |x - rec| in [-1, 1] units (the training term), "psnr": dB in [0, 1]
    units, "codebook": the quantizer loss, "perplexity", "used_codes", "used_fraction"}.
    """
    was_training = model.training
    model.eval()
    absolute, squared, codebook, indices = 0.0, 0.0, 0.0, []
    for start in range(0, len(images), batch_size):
        crops = images[start : start + batch_size].to(device)
        parts = model(crops, details=True)
        x, reconstruction = parts["input"], parts["reconstruction"]
        absolute += float((x - reconstruction).abs().mean()) * len(x)
        # [-1, 1] -> [0, 1] halves the error; PSNR is on the clamped image a user would look at.
        squared += float(((x - reconstruction.clamp(-1, 1)) / 2).square().mean()) * len(x)
        codebook += float(parts["quantizer_loss"]) * len(x)
        indices.append(parts["indices"].cpu())
    model.train(was_training)
    count = len(images)
    usage = code_usage(torch.cat(indices), model.n_embed)
    return {
        "reconstruction": absolute / count,
        "psnr": 10 * math.log10(1 / max(squared / count, 1e-12)),
        "codebook": codebook / count,
        "perplexity": float(usage["perplexity"]),
        "used_codes": int((usage["counts"] > 0).sum()),
        "used_fraction": float(usage["used_fraction"]),
    }


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
    norm_groups: int = TAMING_NORM_GROUPS,
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
            must be multiples of ``norm_groups``, GroupNorm's group count); attention goes to the levels whose
            nominal resolution (``crop_size`` halved per level) is listed.
        norm_groups: GroupNorm groups (taming: 32; fewer allow narrower, faster encoders).
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
        log_dir: the run folder (default: ``<output stem>-log`` beside ``output``): ``config.yaml``,
            ``log.jsonl``, checkpoints; the same command resumes an interrupted run from it.
        cache_images: keep decoded images in memory (False: decode per crop, for folders larger than memory).
        encoder_only: save only what DCKD loads (encoder, quant_conv, codebook): about half the file; the
            decoder (needed only to keep training or to look at reconstructions) is dropped.
        stream: progress output (default stderr).

    Returns:
        The final evaluation (``evaluate``'s keys) plus {"initial": the evaluation before training,
        "iterations", "seconds", "restarted_codes", "output"}.
    """
    _check_arguments(
        iterations,
        batch_size,
        crop_size,
        ch,
        ch_mult,
        n_embed,
        log_every_iters,
        restart_every_iters,
        evaluation_crops,
        norm_groups,
    )
    if adversarial_weight > 0 and crop_size < 24:
        # The PatchGAN shrinks its input 8x and then loses 2 more pixels to its last two 4x4 convolutions.
        raise ConfigError(
            f"--crop-size {crop_size} is too small for the discriminator (--adversarial-weight): use >= 24"
        )
    output = Path(output)
    run_dir = Path(log_dir) if log_dir is not None else output.parent / f"{output.stem}-log"
    stream = stream or sys.stderr
    target = resolve_device(device)
    folder = _image_folder(images)
    _check_image_sizes(image_paths(images), crop_size)

    ddconfig = codebook_ddconfig(ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, crop_size, norm_groups)
    network = {
        "backbone": "vq_autoencoder",
        "options": {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": ddconfig, "beta": beta},
    }
    config = config_from_dict(
        {
            "name": run_dir.name,
            "output_dir": str(run_dir.parent),
            "method": "codebook",
            "student": network,
            "data": {
                "train": {"kind": "hr_only", "gt_dir": str(folder), "cache_images": cache_images},
                "scale": 1,
                "lq_patch_size": crop_size,
                "batch_size": batch_size,
                "num_workers": 0,
            },
            "optimizer": {"name": "adam", "lr": learning_rate, "betas": [0.5, 0.9]},
            "schedule": {"name": "constant"},
            "train": {
                "total_iters": iterations,
                "seed": seed,
                "ema_decay": 0.0,
                "log_every_iters": log_every_iters,
                "validate_every_iters": 0,
                "checkpoint_every_iters": min(iterations, 500),
                "keep_checkpoints": 2,
                "tensorboard": False,
                "device": device,
            },
            "evaluation": {"y_channel": False, "crop_border": 0},
            "codebook": {
                "codebook_weight": codebook_weight,
                "adversarial_weight": adversarial_weight,
                "adversarial_start_iters": adversarial_start_iteration,
                "discriminator_lr": learning_rate,
                "restart_every_iters": restart_every_iters,
            },
        },
        source="train-codebook",
    )

    # Fixed evaluation crops (no flips), measured on the initial network (the engine seeds it the same way).
    crops = build_dataset(config.data.train, 1, crop_size, augment=False)
    evaluation_images = torch.stack(
        [crops[(index % len(crops), seed_for(seed, "evaluation", index))]["gt"] for index in range(evaluation_crops)]
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        initial_network = construct_network("vq_autoencoder", network["options"]).to(target)
    initial = evaluate(initial_network, evaluation_images, batch_size, target)
    progress = Progress(iterations, stream=stream, label="codebook")
    progress.message(
        f"train-codebook: {len(crops)} images, "
        f"{sum(p.numel() for p in initial_network.parameters()) / 1e6:.2f}M parameters, {n_embed} codes, "
        f"on {target}; initial PSNR {initial['psnr']:.2f} dB, {initial['used_codes']}/{n_embed} codes used"
    )

    # One run per folder, also for the records written around the engine's run (which takes the lock again).
    with RunFolderLock(run_dir):
        run_log = RunLog(run_dir, tensorboard=False)
        run_log.event(0, evaluation=initial)
        started = time.monotonic()
        train(config)
        seconds = time.monotonic() - started

        with torch.random.fork_rng(devices=[]):  # the initialisation is overwritten; the caller's RNG stays put
            trained = construct_network("vq_autoencoder", network["options"]).to(target)
        load_network_weights(trained, run_dir / "weights.pth", key="params", architecture="codebook autoencoder")
        final = evaluate(trained, evaluation_images, batch_size, target)
        run_log.event(iterations, evaluation=final)
        method_state = load_checkpoint(list_checkpoints(run_dir)[0][1])["method"]
    weights = trained.encoder_state_dict() if encoder_only else trained.state_dict()
    state_dict = {name: tensor.detach().cpu() for name, tensor in weights.items()}
    if "discriminator" in method_state and not encoder_only:  # taming's names; build_vqgan ignores loss.*
        state_dict.update(
            {f"loss.discriminator.{name}": tensor for name, tensor in method_state["discriminator"].items()}
        )
    training = {
        "images": str(images),
        "iterations": iterations,
        "batch_size": batch_size,
        "crop_size": crop_size,
        "learning_rate": learning_rate,
        "beta": beta,
        "codebook_weight": codebook_weight,
        "adversarial_weight": adversarial_weight,
        "adversarial_start_iteration": adversarial_start_iteration,
        "restart_every_iters": restart_every_iters,
        "seed": seed,
        "device": str(target),
        "torch": str(torch.__version__),
    }
    save_torch_atomic(
        {
            "state_dict": state_dict,
            "vqgan_config": {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": ddconfig},
            "input_range": INPUT_RANGE,
            "training": training,
            "statistics": final,
        },
        output,
    )
    restarted = int(method_state["restarted_codes"])
    progress.message(
        f"train-codebook: {final['used_codes']}/{n_embed} codes used ({100 * final['used_fraction']:.0f}%), perplexity "
        f"{final['perplexity']:.1f}, reconstruction PSNR {final['psnr']:.2f} dB (was {initial['psnr']:.2f}) on "
        f"{evaluation_crops} crops; {restarted} codes restarted; {seconds:.0f} s. Saved {output} "
        f"(use it with dckd.vqgan_input_range: {INPUT_RANGE})"
    )
    return {
        **final,
        "initial": initial,
        "iterations": iterations,
        "seconds": seconds,
        "restarted_codes": restarted,
        "output": str(output),
    }


def _check_image_sizes(paths: Sequence[Path], crop_size: int) -> None:
    """Every image holds a crop (read from the headers; the engine decodes and checks every file again)."""
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError:
            continue  # the engine's data check names the file and the reason
        if min(height, width) < crop_size:
            raise DatasetError(
                f"'{path}' is {height}x{width}, smaller than the crop size {crop_size} (--crop-size); "
                "remove it or choose a smaller crop"
            )


def _check_arguments(
    iterations: int,
    batch_size: int,
    crop_size: int,
    ch: int,
    ch_mult: Sequence[int],
    n_embed: int,
    log_every_iters: int,
    restart_every_iters: int,
    evaluation_crops: int,
    norm_groups: int = TAMING_NORM_GROUPS,
) -> None:
    """Errors that name the command-line option, before any image is read."""
    for option, value in (
        ("--iterations", iterations),
        ("--batch-size", batch_size),
        ("--n-embed", n_embed),
        ("--log-every", log_every_iters),
        ("--evaluation-crops", evaluation_crops),
        ("--norm-groups", norm_groups),
    ):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    if restart_every_iters < 0:
        raise ConfigError(f"--restart-every must be >= 0 (0 = never), got {restart_every_iters}")
    if len(ch_mult) < 1:
        raise ConfigError("--ch-mult needs at least one level")
    factor = 2 ** (len(ch_mult) - 1)
    if crop_size < factor or crop_size % factor:
        raise ConfigError(
            f"--crop-size {crop_size} must be a multiple of {factor} (2 ** (levels - 1), "
            f"{len(ch_mult)} levels in --ch-mult)"
        )
    widths = [ch * multiplier for multiplier in ch_mult]
    if any(width % norm_groups for width in widths):
        raise ConfigError(
            f"--ch {ch} x --ch-mult {list(ch_mult)} gives widths {widths}; every width must be a "
            f"multiple of {norm_groups} (GroupNorm with {norm_groups} groups, --norm-groups)"
        )


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
    parser.description = (
        "Train a VQGAN-style encoder and codebook (taming's architecture) on a folder of images, "
        "for DCKD's feature and codebook losses. Use the result with "
        f"vqgan.checkpoint=<output> and dckd.vqgan_input_range={INPUT_RANGE}."
    )
    parser.add_argument("images", help="folder of training images, or 'bundled' for the bundled training photographs")
    parser.add_argument("--output", "-o", required=True, help="checkpoint to write (.pth)")
    parser.add_argument("--iterations", type=int, default=2000, help="optimizer steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--crop-size", type=int, default=64, help="crop side in pixels (default 64)")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    architecture = parser.add_argument_group("architecture (taming ddconfig)")
    architecture.add_argument("--ch", type=int, default=32, help="base width (default 32; official VQGAN 128)")
    architecture.add_argument(
        "--norm-groups",
        type=int,
        default=TAMING_NORM_GROUPS,
        help="GroupNorm groups (default 32 as taming; e.g. 8 for --ch 16)",
    )
    architecture.add_argument(
        "--ch-mult",
        type=_integers,
        default=list(DEFAULT_CH_MULT),
        help="width multiplier per level (default 1,1,2,2,4: five levels, as DCKD expects)",
    )
    architecture.add_argument("--num-res-blocks", type=int, default=1, help="ResnetBlocks per level (default 1)")
    architecture.add_argument(
        "--attn-resolutions",
        type=_integers,
        default=[],
        help="nominal resolutions with attention, e.g. 16 (default: none besides the middle)",
    )
    architecture.add_argument("--z-channels", type=int, default=64, help="encoder output channels (default 64)")
    architecture.add_argument("--embed-dim", type=int, default=64, help="codebook vector size (default 64)")
    architecture.add_argument("--n-embed", type=int, default=256, help="number of codes (default 256)")
    losses = parser.add_argument_group("losses")
    losses.add_argument("--beta", type=float, default=0.25, help="commitment weight inside the quantizer loss")
    losses.add_argument("--codebook-weight", type=float, default=1.0, help="weight of the quantizer loss")
    losses.add_argument(
        "--adversarial-weight", type=float, default=0.0, help="PatchGAN generator weight (default 0: no discriminator)"
    )
    losses.add_argument("--adversarial-start", type=int, default=0, help="first iteration of the adversarial part")
    losses.add_argument(
        "--restart-every",
        type=int,
        default=200,
        help="dead-code restart interval in iterations (0 = never; default 200)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    run.add_argument("--log-every", type=int, default=50, help="progress and log.jsonl interval (default 50)")
    run.add_argument("--log-dir", help="where log.jsonl goes (default: <output stem>-log beside the output)")
    run.add_argument("--evaluation-crops", type=int, default=64, help="fixed crops for the usage/PSNR report")
    run.add_argument("--no-cache", action="store_true", help="decode images per crop instead of keeping them in memory")
    run.add_argument(
        "--encoder-only",
        action="store_true",
        help="save only the encoder, quant_conv and codebook (what DCKD loads; about half the size)",
    )


def run_train_codebook_command(arguments: argparse.Namespace) -> int:
    train_codebook(
        arguments.images,
        arguments.output,
        iterations=arguments.iterations,
        batch_size=arguments.batch_size,
        crop_size=arguments.crop_size,
        learning_rate=arguments.lr,
        ch=arguments.ch,
        ch_mult=arguments.ch_mult,
        norm_groups=arguments.norm_groups,
        num_res_blocks=arguments.num_res_blocks,
        attn_resolutions=arguments.attn_resolutions,
        z_channels=arguments.z_channels,
        embed_dim=arguments.embed_dim,
        n_embed=arguments.n_embed,
        beta=arguments.beta,
        codebook_weight=arguments.codebook_weight,
        adversarial_weight=arguments.adversarial_weight,
        adversarial_start_iteration=arguments.adversarial_start,
        restart_every_iters=arguments.restart_every,
        evaluation_crops=arguments.evaluation_crops,
        seed=arguments.seed,
        device=arguments.device,
        log_every_iters=arguments.log_every,
        log_dir=arguments.log_dir,
        cache_images=not arguments.no_cache,
        encoder_only=arguments.encoder_only,
    )
    return 0
