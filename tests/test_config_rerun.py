"""A run's config reruns, and paths work from anywhere.

- ``config.yaml`` in a run folder, the config stored in its checkpoints and the ``--dry-run`` output of it reload
  to the same config; ``dckd train RUN/config.yaml`` from another folder reproduces the run (identical weights).
- One rule for path options: relative to the working directory; ``dckd:`` names a file shipped in the package;
  the run records absolute paths. A non-editable installation (the package copied elsewhere, as ``pip install``
  puts it) runs the shipped smoke config from an unrelated folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_VQGAN, tiny_edsr, write_images

from dckd.apps.cli import main
from dckd.config import config_from_dict, load_config
from dckd.config.loading import dump_yaml
from dckd.config.paths import absolute_path, absolute_paths
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.files.paths import ASSETS, resolve_path
from dckd.models.vqgan import VQGANEncoder

REPOSITORY = Path(__file__).resolve().parent.parent


def _relative_run(work: Path) -> dict:
    """A tiny DCKD run whose every path is relative to ``work`` (the working directory of the first run)."""
    write_images(work / "data" / "train", 4, 48, 48)
    write_images(work / "data" / "val", 2, 24, 32, seed=7)
    torch.manual_seed(0)
    (work / "weights").mkdir()
    torch.save({"state_dict": VQGANEncoder(**TINY_VQGAN).state_dict()}, work / "weights" / "vqgan.pth")
    teacher = {**tiny_edsr(features=12, blocks=2), "random_init": True}
    return {
        "name": "run",
        "output_dir": "runs",
        "method": "dckd",
        "student": tiny_edsr(),
        "teacher": teacher,
        "vqgan": {"checkpoint": "weights/vqgan.pth", **TINY_VQGAN},
        "data": {
            "train": {"kind": "hr_only", "gt_dir": "data/train"},
            "validation": [{"kind": "hr_only", "gt_dir": "data/val", "name": "val"}],
            "scale": 2,
            "lq_patch_size": 8,
            "batch_size": 2,
            "num_workers": 0,
        },
        "train": {
            "total_iters": 4,
            "log_every_iters": 2,
            "validate_every_iters": 0,
            "checkpoint_every_iters": 2,
            "tensorboard": False,
            "seed": 5,
        },
        "dckd": {
            "history": {"initial_interval_iters": 1},
            "degradations": ["mix"],
            "vqgan_input_range": "minus_one_one",
        },
    }


def test_a_run_config_reruns_from_another_folder_with_identical_weights(tmp_path: Path, monkeypatch, capsys) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    raw = _relative_run(work)
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(work)
    assert main(["train", "config.yaml"]) == 0
    run_dir = work / "runs" / "run"
    recorded = load_config(run_dir / "config.yaml")
    # The run records absolute paths: the relative ones as read from the working directory of the run.
    assert recorded == absolute_paths(config_from_dict(raw), work)
    assert recorded.data.train.gt_dir == str(work / "data" / "train") and recorded.output_dir == str(work / "runs")
    assert recorded.vqgan.checkpoint == str(work / "weights" / "vqgan.pth")
    # The copy in every checkpoint is the same config.
    for _, checkpoint in list_checkpoints(run_dir):
        assert config_from_dict(yaml.safe_load(load_checkpoint(checkpoint)["config"])) == recorded
    # --dry-run of the run's config prints a config that reloads to it.
    assert main(["train", str(run_dir / "config.yaml"), "--dry-run"]) == 0
    assert config_from_dict(yaml.safe_load(capsys.readouterr().out)) == recorded

    # From another folder: the relative paths would not resolve there; the recorded absolute ones do.
    monkeypatch.chdir(elsewhere)
    assert main(["train", str(run_dir / "config.yaml"), "--set", "name=rerun"]) == 0
    assert not (elsewhere / "runs").exists()  # output_dir was recorded absolute too
    first = torch.load(run_dir / "weights.pth", weights_only=True)
    second = torch.load(work / "runs" / "rerun" / "weights.pth", weights_only=True)
    tensors = ["params", "params_ema"]
    assert first["network"] == second["network"]
    for key in tensors:
        assert first[key].keys() == second[key].keys()
        for name, value in first[key].items():
            assert torch.equal(value, second[key][name]), f"{key}.{name} differs"
    # The original relative config, run from the other folder, stops at the first missing input.
    shutil.copy(work / "config.yaml", elsewhere / "config.yaml")
    assert main(["train", "config.yaml"]) == 2
    assert "VQGAN checkpoint (vqgan.checkpoint) weights/vqgan.pth does not exist" in capsys.readouterr().err


def test_the_path_rule() -> None:
    assert absolute_path("data/x", "/work") == "/work/data/x"
    assert absolute_path("../x/./y", "/work/a") == "/work/x/y"
    assert absolute_path("/abs/x", "/work") == "/abs/x"
    assert absolute_path("dckd:weights/demo_teacher_x4.pth", "/work") == "dckd:weights/demo_teacher_x4.pth"
    assert absolute_path(None, "/work") is None
    assert resolve_path("dckd:weights/demo_teacher_x4.pth") == ASSETS / "weights" / "demo_teacher_x4.pth"
    assert resolve_path("dckd:bundled/train/HR").is_dir()
    assert resolve_path("data/x") == Path("data/x")  # an ordinary relative path: the working directory's


def test_every_shipped_config_names_shipped_files_by_dckd_names() -> None:
    for path in sorted((REPOSITORY / "configs").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        assert "dckd/assets" not in body, f"{path.name}: a shipped file named by a repository path"
        config = load_config(path)
        for spec in (config.teacher, config.vqgan):
            if spec is not None and spec.checkpoint and spec.checkpoint.startswith("dckd:"):
                assert resolve_path(spec.checkpoint).is_file(), f"{path.name}: {spec.checkpoint}"


def test_a_non_editable_install_runs_the_smoke_config_from_another_folder(tmp_path: Path) -> None:
    """The package copied to a site folder (what pip install does), run from a folder that is neither the
    clone nor the installation."""
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    shutil.copytree(REPOSITORY / "dckd", site / "dckd", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import dckd; print(dckd.__file__)"],
        cwd=elsewhere,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).parent == site / "dckd"
    smoke = REPOSITORY / "configs" / "smoke" / "dckd.yaml"
    overrides = ["train.total_iters=2", "train.checkpoint_every_iters=2", f"output_dir={tmp_path / 'runs'}"]
    command = [sys.executable, "-m", "dckd", "train", str(smoke)] + [f"--set={item}" for item in overrides]
    result = subprocess.run(command, cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "dckd"
    assert (run_dir / "weights.pth").is_file()
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["teacher"]["checkpoint"] == "dckd:weights/demo_teacher_x4.pth"  # location-free, kept
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran


@pytest.mark.parametrize("kind", ["paired", "benchmark"])
def test_dataset_folders_resolve_dckd_names(kind: str, tmp_path: Path) -> None:
    from dckd.config.schema import DatasetConfig
    from dckd.engine.setup import build_dataset

    if kind == "paired":
        spec = DatasetConfig(
            kind="paired",
            gt_dir="dckd:bundled/test/HR",
            lq_dir="dckd:bundled/test/LR_bicubic/X2",
            filename_template="{}x2",
        )
    else:
        spec = DatasetConfig(kind="benchmark", root="dckd:bundled/test")
    dataset = build_dataset(spec, 2, None, False)
    assert len(dataset) == len(list((ASSETS / "bundled" / "test" / "HR").glob("*.png")))
    assert dump_yaml(absolute_paths(config_from_dict({"data": {"validation": [spec.__dict__]}}))).count("dckd:") == (
        2 if kind == "paired" else 1
    )
