"""Training end to end on CPU: run-folder contents, exact resume, evaluation, inference, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from conftest import tiny_run_config, tiny_swinir, write_images
from PIL import Image

from dckd.apps.cli import main
from dckd.config.schema import config_from_dict
from dckd.data.imresize import bicubic_degrade
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.engine.loop import train
from dckd.engine.run_log import read_log


def test_scratch_run_writes_config_log_checkpoints_and_weights(tmp_path: Path, image_folder: Path) -> None:
    raw = tiny_run_config(tmp_path, image_folder, "scratch")
    raw["train"].update(validate_every_iters=3)
    run_dir = train(config_from_dict(raw))
    assert (run_dir / "config.yaml").is_file() and (run_dir / "weights.pth").is_file()
    records = read_log(run_dir / "log.jsonl")
    training = [r for r in records if "loss" in r]
    assert [r["iter"] for r in training] == [2, 4, 6]
    assert all({"lr", "loss", "reconstruction", "seconds_per_iter"} <= set(r) for r in training)
    validations = [r for r in records if "validation" in r]
    assert [r["iter"] for r in validations] == [3, 6]
    assert set(validations[0]["validation"]["val"]) == {"psnr", "ssim"}
    assert [iteration for iteration, _ in list_checkpoints(run_dir)] == [6, 3]
    weights = torch.load(run_dir / "weights.pth", weights_only=True)
    assert {"params", "params_ema", "network"} <= set(weights)
    assert weights["network"]["backbone"] == "edsr"


def dckd_config(tmp_path: Path, image_folder: Path, vqgan_path: Path, total: int, name: str = "run") -> dict:
    raw = tiny_run_config(
        tmp_path,
        image_folder,
        "dckd",
        name=name,
        vqgan={"checkpoint": str(vqgan_path)},
        dckd={
            "lcr_weight": 1.0,
            "degradations": ["mix"],
            "history": {"initial_interval_iters": 2, "interval_growth_iters": 1, "interval_growth_every_iters": 3},
        },
    )
    raw["student"] = tiny_swinir(embed_dim=12)
    raw["student"]["options"]["drop_path_rate"] = 0.2  # the global RNG matters: it must be restored
    raw["data"]["lq_patch_size"] = 8
    raw["train"].update(total_iters=total, checkpoint_every_iters=2, ema_decay=0.9)
    return raw


def final_state(run_dir: Path) -> dict:
    return load_checkpoint(list_checkpoints(run_dir)[0][1])


def test_resumed_run_ends_with_identical_weights(
    tmp_path: Path, image_folder: Path, tiny_vqgan_checkpoint: Path
) -> None:
    uninterrupted = train(config_from_dict(dckd_config(tmp_path, image_folder, tiny_vqgan_checkpoint, 6, "straight")))
    # Stop after 3 iterations (as a kill after the checkpoint at 2 plus one lost iteration would), then resume.
    first_leg = dckd_config(tmp_path, image_folder, tiny_vqgan_checkpoint, 3, "resumed")
    train(config_from_dict(first_leg))
    # Drop the checkpoint at 3 so the resume starts from 2 and replays iteration 3.
    for iteration, path in list_checkpoints(tmp_path / "runs" / "resumed"):
        if iteration == 3:
            path.unlink()
            path.with_name(path.name + ".sha256").unlink()
    resumed = train(config_from_dict(dckd_config(tmp_path, image_folder, tiny_vqgan_checkpoint, 6, "resumed")))

    a, b = final_state(uninterrupted), final_state(resumed)
    assert a["iteration"] == b["iteration"] == 6
    for part in ("student", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key}"
    history_a, history_b = a["method"]["history"], b["method"]["history"]
    assert history_a["updates"] == history_b["updates"] > 0
    for key, value in history_a["network"].items():
        assert torch.equal(value, history_b["network"][key]), f"history.{key}"
    assert torch.equal(a["method"]["negatives"]["generator"], b["method"]["negatives"]["generator"])


def benchmark_folder(root: Path, scale: int, count: int = 2) -> Path:
    hr = write_images(root / "HR", count, 48, 60, seed=40)
    lr = root / "LR_bicubic" / f"X{scale}"
    lr.mkdir(parents=True)
    for path in sorted(hr.iterdir()):
        image = np.asarray(Image.open(path))
        Image.fromarray(bicubic_degrade(image, scale)).save(lr / f"{path.stem}x{scale}.png")
    return root


def test_evaluate_and_infer_from_trained_weights(tmp_path: Path, image_folder: Path, capsys) -> None:
    run_dir = train(config_from_dict(tiny_run_config(tmp_path, image_folder, "scratch")))
    dataset = benchmark_folder(tmp_path / "Set2", 2)
    results = tmp_path / "results.json"
    csv_path = tmp_path / "results.csv"
    assert (
        main(
            [
                "test",
                str(run_dir / "weights.pth"),
                str(dataset),
                "--json",
                str(results),
                "--csv",
                str(csv_path),
                "--self-ensemble",
                "--tile",
                "16",
                "--tile-overlap",
                "4",
            ]
        )
        == 0
    )
    document = json.loads(results.read_text())
    scores = document["datasets"]["Set2"]
    assert len(scores["images"]) == 2 and 5 < scores["psnr"] < 60 and 0 < scores["ssim"] <= 1
    assert document["protocol"] == {"y_channel": True, "crop_border": 2, "scale": 2, "self_ensemble": True, "tile": 16}
    assert csv_path.read_text().splitlines()[0] == "dataset,image,psnr,ssim"
    assert "Set2" in capsys.readouterr().out

    output = tmp_path / "restored"
    assert main(["infer", str(run_dir / "weights.pth"), str(dataset / "LR_bicubic" / "X2"), str(output)]) == 0
    restored = sorted(output.iterdir())
    assert len(restored) == 2 and Image.open(restored[0]).size == (60, 48)


def test_config_errors_exit_cleanly_and_write_nothing(tmp_path: Path, image_folder: Path, capsys) -> None:
    raw = tiny_run_config(tmp_path, image_folder, "scratch")
    raw["train"]["totl_iters"] = 5
    config_path = tmp_path / "bad.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config_path)]) == 2
    message = capsys.readouterr().err
    assert "train.totl_iters: unknown option (did you mean 'total_iters'?)" in message
    assert "Traceback" not in message
    assert not (tmp_path / "runs").exists()

    raw["train"].pop("totl_iters")
    config_path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config_path), "--set", "optimizer.name=sgd"]) == 2
    assert "optimizer.name: 'sgd' is not allowed; accepted values: 'adam', 'adamw'" in capsys.readouterr().err
    assert main(["train", str(config_path), "--set", "data.train.gt_dir=/nonexistent/folder"]) == 2
    assert "/nonexistent/folder" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_resuming_with_another_network_is_a_clear_error(tmp_path: Path, image_folder: Path, capsys) -> None:
    import yaml

    raw = tiny_run_config(tmp_path, image_folder, "scratch")
    raw["data"]["validation"] = []
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path)]) == 0
    raw["student"]["options"]["num_feat"] = 16
    raw["train"]["total_iters"] = 8
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path)]) == 2
    message = capsys.readouterr().err
    assert "does not fit this run's configuration" in message and "Traceback" not in message


def test_a_training_checkpoint_can_be_evaluated_directly(tmp_path: Path, image_folder: Path) -> None:
    run_dir = train(config_from_dict(tiny_run_config(tmp_path, image_folder, "scratch")))
    dataset = benchmark_folder(tmp_path / "Set2", 2)
    checkpoint = list_checkpoints(run_dir)[0][1]
    assert main(["test", str(checkpoint), str(dataset), "--json", str(tmp_path / "r.json")]) == 0
    from_checkpoint = json.loads((tmp_path / "r.json").read_text())["datasets"]["Set2"]["psnr"]
    assert main(["test", str(run_dir / "weights.pth"), str(dataset), "--json", str(tmp_path / "w.json")]) == 0
    assert from_checkpoint == json.loads((tmp_path / "w.json").read_text())["datasets"]["Set2"]["psnr"]
