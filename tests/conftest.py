"""Shared fixtures: tiny image folders, tiny stand-in networks and a tiny VQGAN checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Tiny networks on a shared 2-core machine: intra-op threads only add contention (10x slower seen here).
torch.set_num_threads(1)

TINY_VQGAN = dict(
    embed_dim=8,
    n_embed=16,
    ddconfig=dict(
        in_channels=3,
        out_ch=3,
        resolution=64,
        ch=32,
        ch_mult=[1, 1, 1, 1, 2],
        num_res_blocks=1,
        attn_resolutions=[4],
        dropout=0.0,
        double_z=False,
        z_channels=8,
    ),
)


def structured_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth-plus-edges RGB uint8 image (random noise would make SR meaningless)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.03, 0.3), rng.uniform(0.03, 0.3), rng.uniform(0, 6.3)
        channels.append(0.5 + 0.4 * np.sin(fx * x + phase) * np.cos(fy * y))
    image = np.stack(channels, -1)
    image[(x // 9 + y // 7) % 5 == 0] *= 0.6  # some edges
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def write_images(folder: Path, count: int, height: int, width: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(structured_image(height, width, seed + index)).save(folder / f"{index:04d}.png")
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six 48x60 structured images (divisible by 2, 3, 4)."""
    return write_images(tmp_path / "images", 6, 48, 60)


@pytest.fixture
def tiny_vqgan_checkpoint(tmp_path: Path) -> Path:
    """A random tiny VQGAN saved in the taming key layout, with its architecture as metadata."""
    from dckd.models.vqgan import VQGANEncoder

    torch.manual_seed(0)
    encoder = VQGANEncoder(**TINY_VQGAN)
    path = tmp_path / "vqgan.pth"
    torch.save({"state_dict": encoder.state_dict(), "vqgan_config": TINY_VQGAN}, path)
    return path


def tiny_edsr(scale: int = 2, features: int = 8, blocks: int = 1) -> dict:
    return {
        "backbone": "edsr",
        "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": features, "num_block": blocks, "upscale": scale},
    }


def tiny_swinir(scale: int = 2, embed_dim: int = 12) -> dict:
    return {
        "backbone": "swinir",
        "options": {
            "upscale": scale,
            "in_chans": 3,
            "img_size": 16,
            "window_size": 4,
            "img_range": 1.0,
            "depths": [1, 1],
            "embed_dim": embed_dim,
            "num_heads": [2, 2],
            "mlp_ratio": 2,
            "upsampler": "pixelshuffle",
            "resi_connection": "1conv",
            "drop_path_rate": 0.0,
        },
    }


def tiny_run_config(tmp_path: Path, image_folder: Path, method: str = "scratch", **sections) -> dict:
    """A raw config dict for a run of a few iterations on ``image_folder`` (x2, EDSR stand-ins)."""
    config = {
        "name": "run",
        "output_dir": str(tmp_path / "runs"),
        "method": method,
        "student": tiny_edsr(),
        "data": {
            "train": {"kind": "hr_only", "gt_dir": str(image_folder)},
            "validation": [{"kind": "hr_only", "gt_dir": str(image_folder), "name": "val"}],
            "scale": 2,
            "lq_patch_size": 12,
            "batch_size": 4,
            "num_workers": 0,
        },
        "train": {
            "total_iters": 6,
            "log_every_iters": 2,
            "validate_every_iters": 0,
            "checkpoint_every_iters": 3,
            "tensorboard": False,
            "seed": 3,
        },
    }
    if method in ("logits", "fakd", "dckd"):
        # A random stand-in teacher, said explicitly (a teacher without checkpoint is otherwise an error).
        config["teacher"] = {**tiny_edsr(features=12, blocks=2), "random_init": True}
    config.update(sections)
    return config
