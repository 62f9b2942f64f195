"""Training runs at the edges (issue 11): one run per folder, "last good" means good, every stop saves progress
and speaks one line, no silent wrong result. Each test checks the exit status, the one-line message and that
nothing outside the run folder changed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_edsr, tiny_run_config, write_images

from dckd.apps.cli import main
from dckd.engine import feed, loop
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.engine.run_folder import LOCK_NAME
from dckd.models.backbones import BACKBONES


def environment() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``root`` except those under ``skip``."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not (skip is not None and path.is_relative_to(skip)):
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def write_config(tmp_path: Path, raw: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def one_line_error(capsys, rc: int, status: int = 2) -> str:
    """The command's stderr: exactly one line (after progress lines), starting with error:/stopped:."""
    err = capsys.readouterr().err
    assert rc == status, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: " if status == 2 else "stopped: "), err
    return last


def edsr_checkpoint(path: Path, scale: int = 2, value: float | None = None, **sizes) -> Path:
    """A tiny EDSR teacher's weights file; ``value`` fills every parameter (NaN, inf, 1e30)."""
    torch.manual_seed(0)
    network = BACKBONES["edsr"](**tiny_edsr(scale, **sizes)["options"])
    state = network.state_dict()
    if value is not None:
        state = {key: torch.full_like(tensor, value) for key, tensor in state.items()}
    torch.save({"params": state}, path)
    return path


# --------------------------------------------------------------------------------------------------
# One run per folder
# --------------------------------------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from dckd.engine.run_folder import RunFolderLock
lock = RunFolderLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
"""


def hold_lock(run_dir: Path) -> subprocess.Popen:
    run_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_on_a_locked_folder_stops_at_once_naming_the_holder(tmp_path, image_folder, capsys):
    config = write_config(tmp_path, tiny_run_config(tmp_path, image_folder))
    run_dir = tmp_path / "runs" / "run"
    holder = hold_lock(run_dir)
    try:
        before = snapshot(tmp_path)
        started = time.monotonic()
        message = one_line_error(capsys, main(["train", str(config)]))
        assert time.monotonic() - started < 5  # before the data check and the networks
        assert f"run folder {run_dir} is in use by process {holder.pid} on host" in message
        assert snapshot(tmp_path) == before  # nothing written, also not in the run folder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (run_dir / LOCK_NAME).exists()  # released: the holder removed its record


def test_a_lock_left_by_a_killed_run_is_taken_over_and_the_run_resumes(tmp_path, image_folder, capsys):
    config = write_config(tmp_path, tiny_run_config(tmp_path, image_folder))
    run_dir = tmp_path / "runs" / "run"
    holder = hold_lock(run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert f"pid={holder.pid}" in (run_dir / LOCK_NAME).read_text()  # the record stays behind
    assert main(["train", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"took over the lock of process {holder.pid}" in err and "done:" in err
    assert not (run_dir / LOCK_NAME).exists()


def test_a_second_dckd_train_while_the_first_trains_stops_and_the_first_goes_on(tmp_path, image_folder):
    raw = tiny_run_config(tmp_path, image_folder)
    raw["data"]["validation"] = []
    raw["train"].update(total_iters=100000, checkpoint_every_iters=100000, log_every_iters=1)
    config = write_config(tmp_path, raw)
    command = [sys.executable, "-m", "dckd", "train", str(config)]
    first = subprocess.Popen(command, env=environment(), stderr=subprocess.PIPE, text=True)
    log = tmp_path / "runs" / "run" / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and '"loss"' in log.read_text()):
        time.sleep(0.05)
    config_before = (tmp_path / "runs" / "run" / "config.yaml").read_bytes()
    second = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=120)
    still_running = first.poll() is None
    first.send_signal(signal.SIGTERM)
    _, first_output = first.communicate(timeout=120)
    assert still_running and first.returncode == 0, first_output
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is in use by process {first.pid} on host" in second.stderr.strip().splitlines()[-1]
    assert (tmp_path / "runs" / "run" / "config.yaml").read_bytes() == config_before
    # Only the first run wrote the log: its iterations appear once each, in order.
    iterations = [record["iter"] for record in map(yaml.safe_load, log.read_text().splitlines()) if "loss" in record]
    assert iterations == list(range(1, len(iterations) + 1))


def test_torchrun_ranks_stop_together_on_a_locked_folder(tmp_path, image_folder):
    raw = tiny_run_config(tmp_path, image_folder, "scratch")
    raw["data"]["validation"] = []
    config = write_config(tmp_path, raw)
    holder = hold_lock(tmp_path / "runs" / "run")
    try:
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
            + ["-m", "dckd", "train", str(config)],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=240,
        )
        assert time.monotonic() - started < 120  # no rank waits in a collective
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"is in use by process {holder.pid}" in output


# --------------------------------------------------------------------------------------------------
# "Last good state" means good; never "done" with nothing learned
# --------------------------------------------------------------------------------------------------
def test_an_exploding_learning_rate_stops_with_a_good_checkpoint_that_resumes(tmp_path, image_folder, capsys):
    raw = tiny_run_config(tmp_path, image_folder)
    raw["data"]["validation"] = []
    raw["train"].update(total_iters=12, checkpoint_every_iters=1, keep_checkpoints=1, max_consecutive_nonfinite=3)
    # The learning rate is sane for 4 iterations, then 1e30 times larger: weights of ~1e30 (finite), then inf.
    raw["schedule"] = {"name": "multistep", "milestones_iters": [4], "gamma": 1e30}
    config = write_config(tmp_path, raw)
    run_dir = tmp_path / "runs" / "run"
    message = one_line_error(capsys, main(["train", str(config)]), status=3)
    assert "3 consecutive non-finite losses" in message and "lower optimizer.lr" in message
    saved = list_checkpoints(run_dir)
    assert [iteration for iteration, _ in saved] == [4]  # iteration 5's ~1e30 weights are gone; 4 was kept
    assert f"the newest good checkpoint is {saved[0][1]}" in message
    state = load_checkpoint(saved[0][1])
    assert max(float(tensor.abs().max()) for tensor in state["student"].values()) < 100
    assert not (run_dir / "weights.pth").exists()
    # Resuming from it with a sane schedule trains to the end.
    assert main(["train", str(config), "--set", "schedule.gamma=0.5"]) == 0
    assert f"resumed from {saved[0][1]} at iteration 4" in capsys.readouterr().err
    assert list_checkpoints(run_dir)[0][0] == 12


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_teacher_with_non_finite_weights_is_an_error_before_anything_is_written(
    tmp_path, image_folder, capsys, value
):
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    checkpoint = edsr_checkpoint(tmp_path / "teacher.pth", value=value, features=12, blocks=2)
    raw["teacher"] = {**tiny_edsr(features=12, blocks=2), "checkpoint": str(checkpoint)}
    config = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    message = one_line_error(capsys, main(["train", str(config)]))
    assert f"the teacher ({checkpoint}) holds non-finite weights" in message
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()


def test_a_teacher_with_non_finite_outputs_is_an_error_before_anything_is_written(tmp_path, image_folder, capsys):
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    checkpoint = edsr_checkpoint(tmp_path / "teacher.pth", value=1e30, features=12, blocks=2)  # finite, overflows
    raw["teacher"] = {**tiny_edsr(features=12, blocks=2), "checkpoint": str(checkpoint)}
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, raw))]))
    assert f"the teacher ({checkpoint}) gives non-finite outputs" in message
    assert not (tmp_path / "runs").exists()


def test_a_vqgan_with_nan_weights_is_an_error(tmp_path, image_folder, capsys, tiny_vqgan_checkpoint):
    content = torch.load(tiny_vqgan_checkpoint, weights_only=True)
    first = next(iter(content["state_dict"]))
    content["state_dict"][first] = torch.full_like(content["state_dict"][first], float("nan"))
    torch.save(content, tiny_vqgan_checkpoint)
    raw = tiny_run_config(tmp_path, image_folder, "dckd", vqgan={"checkpoint": str(tiny_vqgan_checkpoint)})
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, raw))]))
    assert f"the VQGAN ({tiny_vqgan_checkpoint}) holds non-finite weights" in message
    assert not (tmp_path / "runs").exists()


def test_a_run_where_every_loss_is_non_finite_never_ends_done(tmp_path, image_folder, capsys, monkeypatch):
    from dckd.methods.scratch import Scratch

    original = Scratch.forward

    def forward(self, batch):
        result = original(self, batch)
        result["loss"] = result["loss"] * float("nan")
        return result

    monkeypatch.setattr(Scratch, "forward", forward)
    raw = tiny_run_config(tmp_path, image_folder)
    raw["train"].update(total_iters=3, max_consecutive_nonfinite=5)  # the streak guard never fires
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, raw))]), status=3)
    assert "every one of the 3 losses was non-finite: nothing was learned" in message
    assert not (tmp_path / "runs" / "run" / "weights.pth").exists()


# --------------------------------------------------------------------------------------------------
# Every stop saves progress and speaks one line
# --------------------------------------------------------------------------------------------------
def break_after_check(monkeypatch, damage) -> None:
    """Call ``damage()`` right after the engine's data check (a file that goes bad during the run)."""
    original = feed.check_dataset
    calls = {"count": 0}

    def check_then_damage(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["count"] += 1
        if calls["count"] == 2:  # training set, then validation set
            damage()
        return result

    monkeypatch.setattr(feed, "check_dataset", check_then_damage)


def test_a_validation_file_going_bad_mid_run_saves_progress_and_resumes(tmp_path, image_folder, capsys, monkeypatch):
    validation = write_images(tmp_path / "validation", 2, 48, 60, seed=9)
    victim = validation / "0001.png"
    good_bytes = victim.read_bytes()
    raw = tiny_run_config(tmp_path, image_folder)
    raw["data"]["validation"] = [{"kind": "hr_only", "gt_dir": str(validation), "name": "val"}]
    raw["train"].update(total_iters=8, validate_every_iters=5, checkpoint_every_iters=100)
    config = write_config(tmp_path, raw)
    break_after_check(monkeypatch, lambda: victim.write_bytes(good_bytes[:200]))
    before = snapshot(tmp_path, skip=tmp_path / "runs")
    message = one_line_error(capsys, main(["train", str(config)]))
    assert message.startswith("error: validation at iteration 5: ") and str(victim) in message
    assert "progress up to iteration 5 is saved" in message
    assert [iteration for iteration, _ in list_checkpoints(tmp_path / "runs" / "run")] == [5]
    after = snapshot(tmp_path, skip=tmp_path / "runs")
    assert {key for key in after if after[key] != before.get(key)} == {"validation/0001.png"}  # only the damage
    victim.write_bytes(good_bytes)
    monkeypatch.undo()
    assert main(["train", str(config)]) == 0
    assert "at iteration 5" in capsys.readouterr().err


def test_a_training_file_deleted_mid_run_saves_progress(tmp_path, capsys, monkeypatch):
    images = write_images(tmp_path / "train", 2, 48, 60)
    raw = tiny_run_config(tmp_path, images)
    raw["data"].update(validation=[], batch_size=2)
    raw["train"].update(total_iters=30, checkpoint_every_iters=100)
    config = write_config(tmp_path, raw)
    state = {"calls": 0}
    original = feed.on_device

    def move_then_delete(*args, **kwargs):
        state["calls"] += 1
        if state["calls"] == 4:  # after three iterations every image was read once: delete one now
            (images / "0001.png").unlink()
        return original(*args, **kwargs)

    monkeypatch.setattr(feed, "on_device", move_then_delete)
    message = one_line_error(capsys, main(["train", str(config)]))
    assert "0001.png" in message and "is saved" in message
    saved = list_checkpoints(tmp_path / "runs" / "run")
    assert len(saved) == 1 and saved[0][0] >= 4


def test_a_truncated_teacher_cache_entry_is_named_and_progress_is_saved(tmp_path, image_folder, capsys, monkeypatch):
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    checkpoint = edsr_checkpoint(tmp_path / "teacher.pth", features=12, blocks=2)
    raw["teacher"] = {**tiny_edsr(features=12, blocks=2), "checkpoint": str(checkpoint)}
    raw["teacher_cache"] = {"enabled": True, "directory": str(tmp_path / "cache")}
    raw["data"]["validation"] = []
    raw["train"].update(total_iters=30, checkpoint_every_iters=100)
    config = write_config(tmp_path, raw)
    original = loop.attach
    truncated = {}

    def attach_then_truncate(*args, **kwargs):
        directory = original(*args, **kwargs)
        entry = sorted(directory.glob("*.npy"))[0]
        truncated["path"] = entry
        return directory

    batches = {"count": 0}
    original_to_device = feed.on_device

    def truncate_later(*args, **kwargs):
        batches["count"] += 1
        if batches["count"] == 3:
            entry = truncated["path"]
            entry.write_bytes(entry.read_bytes()[:300])
        return original_to_device(*args, **kwargs)

    monkeypatch.setattr(loop, "attach", attach_then_truncate)
    monkeypatch.setattr(feed, "on_device", truncate_later)
    message = one_line_error(capsys, main(["train", str(config)]))
    assert f"teacher-output cache entry {truncated['path']}" in message and "truncated or corrupt" in message
    assert "mmap length" not in message.split("(", 1)[0]
    assert "is saved" in message and list_checkpoints(tmp_path / "runs" / "run")


def test_a_full_disk_mid_run_is_one_line_and_the_previous_checkpoint_stays(tmp_path, image_folder):
    raw = tiny_run_config(tmp_path, image_folder)
    raw["data"]["validation"] = []
    config = write_config(tmp_path, raw)
    run = [sys.executable, "-m", "dckd", "train", str(config)]
    assert subprocess.run(run, env=environment(), capture_output=True, timeout=300).returncode == 0
    run_dir = tmp_path / "runs" / "run"
    newest = list_checkpoints(run_dir)[0][1]
    size_kib = newest.stat().st_size // 1024
    assert size_kib >= 8
    before = {path.name: path.read_bytes() for path in (run_dir / "checkpoints").iterdir()}
    # Continue the run with a file size limit below a checkpoint's size: the next checkpoint write fails.
    limited = f"ulimit -f {size_kib // 2}; exec {' '.join(run)} --set train.total_iters=9"
    completed = subprocess.run(["bash", "-c", limited], env=environment(), capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {run_dir / 'checkpoints'}") and "File too large" in last
    assert "ulimit -f" in last
    after = {path.name: path.read_bytes() for path in (run_dir / "checkpoints").iterdir()}
    assert after == before  # the previous checkpoints intact, no temporary file left
    assert load_checkpoint(newest)["iteration"] == 6


def test_permission_denied_on_a_checkpoint_write_is_one_line(tmp_path, image_folder, capsys, monkeypatch):
    from dckd.engine import checkpoints

    original = checkpoints._torch_save
    calls = {"count": 0}

    def deny_second(obj, path):
        calls["count"] += 1
        if calls["count"] == 2:
            raise PermissionError(13, "Permission denied", str(path))
        return original(obj, path)

    monkeypatch.setattr(checkpoints, "_torch_save", deny_second)
    raw = tiny_run_config(tmp_path, image_folder)
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, raw))]))
    assert "Permission denied" in message and str(tmp_path / "runs" / "run" / "checkpoints") in message
    assert "make it writable" in message
    saved = list_checkpoints(tmp_path / "runs" / "run")
    assert [iteration for iteration, _ in saved] == [3] and load_checkpoint(saved[0][1])["iteration"] == 3


@pytest.mark.parametrize("where", ["output_dir", "run_dir", "parent"])
def test_a_file_where_the_run_folder_goes_is_an_error_before_any_work(tmp_path, image_folder, capsys, where):
    raw = tiny_run_config(tmp_path, image_folder)
    blocker = {
        "output_dir": tmp_path / "runs",
        "run_dir": tmp_path / "runs" / "run",
        "parent": tmp_path / "parent",
    }[where]
    if where == "parent":
        raw["output_dir"] = str(tmp_path / "parent" / "runs")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    config = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    message = one_line_error(capsys, main(["train", str(config)]))
    assert f"{blocker} is a file, not a folder" in message
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------------
# No silent wrong result
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, shown",
    [
        ({"method": "logits"}, "method 'scratch', this config has method 'logits'"),
        ({"student": tiny_edsr(features=16)}, "student edsr"),
    ],
)
def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, image_folder, capsys, change, shown):
    raw = tiny_run_config(tmp_path, image_folder)
    raw["data"]["validation"] = []
    config = write_config(tmp_path, raw)
    assert main(["train", str(config)]) == 0
    capsys.readouterr()
    run_dir = tmp_path / "runs" / "run"
    before = snapshot(tmp_path)
    other = tiny_run_config(tmp_path, image_folder, change.get("method", "scratch"))
    other["data"]["validation"] = []
    other.update(change)
    other["train"]["total_iters"] = 9
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, other, "other.yaml"))]))
    assert "does not fit this run's configuration" in message and shown in message
    assert str(list_checkpoints(run_dir)[0][1]) in message
    after = snapshot(tmp_path)
    assert {key: value for key, value in after.items() if key != "other.yaml"} == before  # config.yaml kept


@pytest.mark.parametrize("name", ["/tmp/elsewhere", "../outside", "a/b", "..", ".", ""])
def test_a_run_name_must_stay_inside_output_dir(tmp_path, image_folder, capsys, name):
    raw = tiny_run_config(tmp_path, image_folder, name=name)
    config = write_config(tmp_path, raw)
    before = snapshot(tmp_path)
    message = one_line_error(capsys, main(["train", str(config)]))
    assert message.startswith(f"error: {config}: name: {name!r} is not a folder name")
    assert snapshot(tmp_path) == before and not Path("/tmp/elsewhere").exists()


def test_a_published_options_name_outside_output_dir_is_an_error(tmp_path, capsys):
    options = {
        "name": "../escaped",
        "model_type": "SRModel",
        "scale": 2,
        "network_g": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 2},
        "datasets": {"train": {"type": "PairedImageDataset", "dataroot_gt": "gt", "dataroot_lq": "lq", "gt_size": 16}},
        "train": {"total_iter": 10, "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}},
    }
    path = write_config(tmp_path, options, "options.yml")
    message = one_line_error(capsys, main(["train", str(path), "--dry-run"]))
    assert "name: '../escaped' is not a folder name" in message and str(path) in message


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_scales_that_disagree_are_a_config_error_before_anything_is_written(tmp_path, image_folder, capsys, role):
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    raw[role] = {**tiny_edsr(scale=4), **({"random_init": True} if role == "teacher" else {})}
    config = write_config(tmp_path, raw)
    for command in (["train", str(config), "--dry-run"], ["train", str(config)]):
        message = one_line_error(capsys, main(command))
        assert f"data.scale is 2, but the {role} (edsr) makes x4 outputs" in message and str(config) in message
    assert not (tmp_path / "runs").exists()


def test_a_users_class_with_another_scale_is_found_by_one_forward_pass(tmp_path, image_folder, capsys, monkeypatch):
    (tmp_path / "my_networks.py").write_text(
        "import torch\n"
        "class Upscale3(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 27, 3, padding=1)\n"
        "        self.shuffle = torch.nn.PixelShuffle(3)\n"
        "    def forward(self, x):\n"
        "        return self.shuffle(self.conv(x))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    raw = tiny_run_config(tmp_path, image_folder)
    raw["student"] = {"backbone": "my_networks:Upscale3"}
    message = one_line_error(capsys, main(["train", str(write_config(tmp_path, raw))]))
    assert "data.scale is 2, but the student turns a 12x12 input into 36x36" in message
    assert not (tmp_path / "runs").exists()


def test_a_teacher_without_checkpoint_needs_random_init(tmp_path, image_folder, capsys):
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    raw["teacher"].pop("random_init")
    config = write_config(tmp_path, raw)
    message = one_line_error(capsys, main(["train", str(config), "--dry-run"]))
    assert f"{config}: teacher.checkpoint: not set" in message and "teacher.random_init: true" in message
    assert main(["train", str(config), "--dry-run", "--set", "teacher.random_init=true"]) == 0
    capsys.readouterr()
    # A BasicSR options file with pretrain_network_t: ~ (no teacher weights).
    edsr = {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 2}
    options = {
        "model_type": "DCKDModel",
        "scale": 2,
        "network_g": edsr,
        "network_t": {**edsr, "num_feat": 12},
        "path": {"pretrain_network_t": None},
        "train": {"pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}, "logits_opt": {"loss_weight": 1.0}},
    }
    path = write_config(tmp_path, options, "options.yml")
    message = one_line_error(capsys, main(["train", str(path), "--dry-run"]))
    assert "teacher.checkpoint: not set" in message and "pretrain_network_t" in message
    assert not (tmp_path / "runs").exists()


def test_train_codebook_on_a_locked_log_folder_stops_naming_the_holder(tmp_path, capsys):
    images = write_images(tmp_path / "images", 2, 32, 32)
    log_dir = tmp_path / "logs"
    holder = hold_lock(log_dir)
    try:
        before = snapshot(tmp_path)
        arguments = ["train-codebook", str(images), "--output", str(tmp_path / "codebook.pth")]
        arguments += ["--log-dir", str(log_dir), "--iterations", "2", "--crop-size", "16", "--batch-size", "2"]
        message = one_line_error(capsys, main(arguments))
        assert f"run folder {log_dir} is in use by process {holder.pid}" in message
        assert snapshot(tmp_path) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_an_explicit_resume_of_another_runs_checkpoint_is_refused(tmp_path, image_folder, capsys):
    raw = tiny_run_config(tmp_path, image_folder, name="scratch_run")
    raw["data"]["validation"] = []
    assert main(["train", str(write_config(tmp_path, raw))]) == 0
    checkpoint = list_checkpoints(tmp_path / "runs" / "scratch_run")[0][1]
    other = tiny_run_config(tmp_path, image_folder, "logits", name="logits_run")
    other["data"]["validation"] = []
    config = write_config(tmp_path, other, "logits.yaml")
    capsys.readouterr()
    message = one_line_error(capsys, main(["train", str(config), "--resume", str(checkpoint)]))
    assert f"checkpoint {checkpoint} does not fit this run's configuration" in message
    assert f"student.checkpoint: {checkpoint}" in message  # how to start from its weights instead
    assert not (tmp_path / "runs" / "logits_run").exists()
