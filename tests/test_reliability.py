"""Runs that survive kills, corrupt checkpoints, NaNs and SIGTERM, and end as if never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_run_config, tiny_swinir

from dckd.apps.cli import main
from dckd.config.schema import config_from_dict
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.engine.loop import train
from dckd.errors import NonFiniteLossError

TOTAL = 14


def write_config(tmp_path: Path, image_folder: Path, vqgan: Path, name: str) -> Path:
    raw = tiny_run_config(
        tmp_path,
        image_folder,
        "dckd",
        name=name,
        vqgan={"checkpoint": str(vqgan)},
        dckd={
            "lcr_weight": 1.0,
            "degradations": ["mix"],
            "history": {"initial_interval_iters": 2, "interval_growth_iters": 1, "interval_growth_every_iters": 4},
        },
    )
    raw["student"] = tiny_swinir(embed_dim=12)
    raw["student"]["options"]["drop_path_rate"] = 0.2
    raw["data"].update(lq_patch_size=8, validation=[])
    raw["train"].update(
        total_iters=TOTAL, checkpoint_every_iters=1, keep_checkpoints=2, ema_decay=0.9, log_every_iters=1
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dckd", "train", str(config)],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(config: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "dckd", "train", str(config)],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stderr


def final_state(run_dir: Path) -> dict:
    return load_checkpoint(list_checkpoints(run_dir)[0][1])


def assert_identical(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"] == TOTAL
    for part in ("student", "ema"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key}"
    for key, value in a["method"]["history"]["network"].items():
        assert torch.equal(value, b["method"]["history"]["network"][key]), f"history.{key}"
    assert torch.equal(a["optimizer"]["state"][0]["exp_avg"], b["optimizer"]["state"][0]["exp_avg"])


def kill_after_progress(config: Path, run_dir: Path, seconds: float) -> None:
    """SIGKILL the run at a moment after it has started iterating; aim at a checkpoint write when one is seen."""
    process = start(config)
    folder = run_dir / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and list(folder.glob("iter_*.pth")):
            break
        time.sleep(0.01)
    aim = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < aim:
        if list(folder.glob(".iter_*.tmp")):  # a checkpoint is being written right now
            break
        time.sleep(0.0005)
    process.kill()
    process.wait()


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(tmp_path, image_folder, tiny_vqgan_checkpoint):
    reference = write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "straight")
    finish(reference)
    interrupted = write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "killed")
    run_dir = tmp_path / "runs" / "killed"
    rng = random.Random(0)
    for _ in range(3):
        kill_after_progress(interrupted, run_dir, rng.uniform(0.05, 0.6))
    progress_before = max((iteration for iteration, _ in list_checkpoints(run_dir)), default=0)
    assert progress_before < TOTAL, "the kills came too late to interrupt anything"
    finish(interrupted)
    assert not list((run_dir / "checkpoints").glob(".iter_*.tmp"))
    assert_identical(final_state(tmp_path / "runs" / "straight"), final_state(run_dir))
    # Keep-last-K: only the newest two checkpoints remain.
    assert [iteration for iteration, _ in list_checkpoints(run_dir)] == [TOTAL, TOTAL - 1]


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, image_folder, tiny_vqgan_checkpoint):
    reference = write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "straight")
    finish(reference)
    config = write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "corrupt")
    raw = yaml.safe_load(config.read_text())
    raw["train"]["total_iters"] = 9
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(raw))
    finish(short)
    newest = list_checkpoints(tmp_path / "runs" / "corrupt")[0][1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a truncated write
    output = finish(config)
    assert "skipping unusable checkpoint" in output and "iter_00000009.pth" in output
    assert "resumed from" in output and "iter_00000008.pth" in output
    assert_identical(final_state(tmp_path / "runs" / "straight"), final_state(tmp_path / "runs" / "corrupt"))


def test_sigterm_saves_and_the_resumed_run_is_identical(tmp_path, image_folder, tiny_vqgan_checkpoint):
    finish(write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "straight"))
    config = write_config(tmp_path, image_folder, tiny_vqgan_checkpoint, "terminated")
    raw = yaml.safe_load(config.read_text())
    raw["train"]["checkpoint_every_iters"] = 100  # only the SIGTERM handler and the end write checkpoints
    config.write_text(yaml.safe_dump(raw))
    process = start(config)
    log = tmp_path / "runs" / "terminated" / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and '"loss"' in log.read_text()):
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "stopped at iteration" in output
    saved = list_checkpoints(tmp_path / "runs" / "terminated")
    assert len(saved) == 1 and saved[0][0] < TOTAL
    raw["train"]["checkpoint_every_iters"] = 1
    config.write_text(yaml.safe_dump(raw))
    finish(config)
    assert_identical(final_state(tmp_path / "runs" / "straight"), final_state(tmp_path / "runs" / "terminated"))


def test_non_finite_losses_skip_steps_then_stop_with_the_last_good_state(tmp_path, image_folder, monkeypatch, capsys):
    raw = tiny_run_config(tmp_path, image_folder, "scratch")
    # A checkpoint every iteration, only one kept: rotation must still keep the newest known-good one.
    raw["train"].update(total_iters=20, max_consecutive_nonfinite=3, checkpoint_every_iters=1, keep_checkpoints=1)
    config = config_from_dict(raw)
    from dckd.methods.scratch import Scratch

    original = Scratch.forward
    calls = {"count": 0}

    def forward(self, batch):
        calls["count"] += 1
        result = original(self, batch)
        if calls["count"] == 2 or calls["count"] >= 5:  # one isolated NaN, then a divergence
            result["loss"] = result["loss"] * float("nan")
        return result

    with monkeypatch.context() as patch:
        patch.setattr(Scratch, "forward", forward)
        with pytest.raises(NonFiniteLossError, match="3 consecutive non-finite losses") as stopped:
            train(config)
    messages = capsys.readouterr().err
    assert "non-finite loss at iteration 2 (1 in a row); step skipped" in messages
    assert "non-finite loss at iteration 7 (3 in a row)" in messages
    # The parameters after iteration 4 gave only non-finite losses: its checkpoint is removed, and the one of
    # iteration 3 (its parameters gave the finite loss of iteration 4) survived the rotation (keep 1).
    saved = list_checkpoints(tmp_path / "runs" / "run")
    assert [iteration for iteration, _ in saved] == [3]
    assert "removed the checkpoint(s) of iteration(s) [4]" in str(stopped.value)
    assert f"the newest good checkpoint is {saved[0][1]} (iteration 3)" in str(stopped.value)
    state = load_checkpoint(saved[0][1])
    assert all(torch.isfinite(value).all() for value in state["student"].values())
    # Resuming from it trains to the end.
    train(config)
    assert "resumed from" in capsys.readouterr().err
    assert list_checkpoints(tmp_path / "runs" / "run")[0][0] == 20


def test_gradient_clipping_clips_the_student_gradient(tmp_path, image_folder, monkeypatch) -> None:
    norms_after = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        result = original(parameters, max_norm, *args, **kwargs)
        norms_after.append((max_norm, torch.norm(torch.stack([p.grad.norm() for p in parameters])).item()))
        return result

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    raw = tiny_run_config(tmp_path, image_folder, "scratch", name="clipped")
    raw["train"].update(total_iters=3, grad_clip_norm=1e-3)
    train(config_from_dict(raw))
    assert len(norms_after) == 3
    assert all(max_norm == 1e-3 and norm <= 1e-3 * 1.0001 for max_norm, norm in norms_after)


def test_malicious_checkpoint_is_refused_by_every_entry_point(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pth"
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "x": Payload()}, path)
    assert main(["test", str(path), "bundled", "--preset", "edsr_baseline_x4"]) == 2
    assert "refused" in capsys.readouterr().err and not marker.exists()
    assert main(["infer", str(path), str(tmp_path), str(tmp_path / "out"), "--preset", "edsr_baseline_x4"]) == 2
    assert not marker.exists()
