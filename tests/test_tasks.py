"""Deblurring and deraining end to end: layouts through the config, progressive patches, protocols, TLC."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import structured_image, write_images
from PIL import Image

from dckd.config.schema import DatasetConfig, config_from_dict, load_config
from dckd.engine.feed import stage_at as _stage
from dckd.engine.loop import train
from dckd.engine.setup import build_dataset
from dckd.eval.restoration import evaluation_protocol

REPOSITORY = Path(__file__).resolve().parents[1]


def test_restormer_progressive_schedule_matches_the_official_stages() -> None:
    config = load_config(REPOSITORY / "configs" / "deblur" / "restormer_gopro_dckd.yaml")
    expected = {
        1: (128, 64),
        92000: (128, 64),
        92001: (160, 40),
        156001: (192, 32),
        204001: (256, 16),
        240001: (320, 8),
        276001: (384, 8),
        300000: (384, 8),
    }
    for iteration, (patch, batch) in expected.items():
        _, lq_patch, global_batch = _stage(config, iteration)
        assert (lq_patch, global_batch) == (patch, batch), iteration


def test_progressive_training_switches_patch_and_batch(tmp_path: Path, monkeypatch) -> None:
    clean = write_images(tmp_path / "clean", 4, 40, 48)
    raw = {
        "name": "progressive",
        "output_dir": str(tmp_path / "runs"),
        "method": "scratch",
        "student": {
            "backbone": "nafnet",
            "options": {"img_channel": 3, "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1], "dec_blk_nums": [1]},
        },
        "data": {
            "task": "deblur",
            "scale": 1,
            "lq_patch_size": 8,
            "batch_size": 4,
            "num_workers": 0,
            "train": {"kind": "synthetic", "gt_dir": str(clean), "synthetic_task": "deblur"},
            "progressive": [
                {"start_iter": 2, "lq_patch_size": 12, "batch_size": 2},
                {"start_iter": 4, "lq_patch_size": 16, "batch_size": 2},
            ],
        },
        "train": {
            "total_iters": 5,
            "log_every_iters": 1,
            "validate_every_iters": 0,
            "checkpoint_every_iters": 5,
            "tensorboard": False,
            "ema_decay": 0.0,
        },
    }
    shapes = []
    from dckd.methods.scratch import Scratch

    original = Scratch.forward

    def spy(self, batch):
        shapes.append(tuple(batch["lq"].shape))
        return original(self, batch)

    monkeypatch.setattr(Scratch, "forward", spy)
    train(config_from_dict(raw))
    assert shapes == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 12, 12), (2, 3, 12, 12), (2, 3, 16, 16)]


def test_task_protocols() -> None:
    assert evaluation_protocol("sr", 4, None, None) == (True, 4)
    assert evaluation_protocol("deblur", 1, None, None) == (False, 0)
    assert evaluation_protocol("derain", 1, None, None) == (True, 0)


def _pair_folder(root: Path, names: list[str], seed: int) -> None:
    for offset, name in enumerate(names):
        sharp = structured_image(24, 32, seed + offset)
        for folder, image in (("sharp", sharp), ("blur", (sharp * 0.9).astype("uint8"))):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / folder / name)


def test_gopro_and_rain_layouts_through_the_config(tmp_path: Path) -> None:
    for sequence in ("GOPR0372_07_00", "GOPR0384_11_01"):
        _pair_folder(tmp_path / "GoPro" / "test" / sequence, ["000047.png", "000048.png"], seed=len(sequence))
    gopro = build_dataset(DatasetConfig(kind="gopro", root=str(tmp_path / "GoPro"), split="test"), 1, None, False)
    assert len(gopro) == 4 and gopro[0]["lq"].shape == gopro[0]["gt"].shape == (3, 24, 32)
    assert len(set(gopro.sample_names)) == 4  # same file names in different sequences stay apart

    write_images(tmp_path / "Rain100L" / "input", 3, 24, 32, seed=5)
    write_images(tmp_path / "Rain100L" / "target", 3, 24, 32, seed=9)
    rain = build_dataset(DatasetConfig(kind="input_target", root=str(tmp_path / "Rain100L")), 1, 16, True)
    sample = rain[(1, 123)]
    assert sample["lq"].shape == sample["gt"].shape == (3, 16, 16)


def test_synthetic_validation_pairs_are_fixed_and_training_pairs_vary(tmp_path: Path) -> None:
    clean = write_images(tmp_path / "clean", 2, 40, 48)
    spec = DatasetConfig(kind="synthetic", gt_dir=str(clean), synthetic_task="derain")
    first, second = build_dataset(spec, 1, None, False, seed=1), build_dataset(spec, 1, None, False, seed=1)
    assert torch.equal(first[0]["lq"], second[0]["lq"])
    training = build_dataset(spec, 1, 16, True, seed=1)
    assert not torch.equal(training[(0, 1)]["lq"], training[(0, 2)]["lq"])
    assert torch.equal(training[(0, 1)]["lq"], training[(0, 1)]["lq"])
