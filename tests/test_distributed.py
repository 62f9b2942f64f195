"""Two processes with torchrun (gloo, CPU) give the result of one process with the same global batch,
and a run resumes with a different number of processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from conftest import tiny_run_config

from dckd.engine.checkpoints import list_checkpoints, load_checkpoint


def write_config(tmp_path: Path, image_folder: Path, name: str, total: int) -> Path:
    raw = tiny_run_config(tmp_path, image_folder, "logits", name=name)
    raw["train"].update(total_iters=total, checkpoint_every_iters=3, ema_decay=0.5)
    raw["data"]["validation"] = []
    path = tmp_path / f"{name}_{total}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(command: list[str]) -> None:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def torchrun(processes: int, config: Path) -> None:
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "dckd",
            "train",
            str(config),
        ]
    )


def single(config: Path) -> None:
    run([sys.executable, "-m", "dckd", "train", str(config)])


def final(run_dir: Path) -> dict:
    return load_checkpoint(list_checkpoints(run_dir)[0][1])


def assert_same_weights(a: dict, b: dict, tolerance: float = 1e-5) -> None:
    assert a["iteration"] == b["iteration"]
    for part in ("student", "ema"):
        for key, value in a[part].items():
            torch.testing.assert_close(value, b[part][key], rtol=tolerance, atol=tolerance, msg=f"{part}.{key}")


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path: Path, image_folder: Path) -> None:
    torchrun(2, write_config(tmp_path, image_folder, "two", 6))
    single(write_config(tmp_path, image_folder, "one", 6))
    two, one = final(tmp_path / "runs" / "two"), final(tmp_path / "runs" / "one")
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert_same_weights(two, one)
    # Written once: one checkpoint file per saved iteration, one log line per logged iteration.
    log = (tmp_path / "runs" / "two" / "log.jsonl").read_text().splitlines()
    assert sum('"loss"' in line for line in log) == 3

    # Resume the two-process run's checkpoint at 3 with one process: same end result.
    for iteration, path in list_checkpoints(tmp_path / "runs" / "two"):
        if iteration == 6:
            path.unlink()
            path.with_name(path.name + ".sha256").unlink()
    single(write_config(tmp_path, image_folder, "two", 6))
    assert_same_weights(final(tmp_path / "runs" / "two"), one)
