"""The Python API (dckd.distill / load_network / evaluate) and the method contract: a method defined here, added
with one dict entry, trains, checkpoints, resumes and shows in --dry-run."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_edsr, tiny_run_config
from torch import Tensor, nn
from torch.utils.data import Dataset

import dckd
from dckd.apps.cli import main
from dckd.config import config_from_dict, load_config
from dckd.config.paths import absolute_paths
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint
from dckd.engine.loop import train
from dckd.engine.run_log import read_log
from dckd.engine.setup import construct_network
from dckd.losses.pixel import l1_loss
from dckd.methods import METHODS, Method, Needs, Parts
from dckd.methods.base import result

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md has no python block after <!-- api-example -->"
    return match.group(1)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 16
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "bundled-test" in completed.stdout and "psnr" in completed.stdout
    run_dir = tmp_path / "runs" / "dckd"
    assert (run_dir / "weights.pth").is_file() and (run_dir / "config.yaml").is_file()
    assert {"contrastive", "codebook", "kd"} <= set(next(r for r in read_log(run_dir / "log.jsonl") if "loss" in r))


class Pairs(Dataset):
    """In-memory (lq, gt) pairs: what a user with their own data loader has."""

    def __init__(self, count: int = 6, scale: int = 2) -> None:
        generator = torch.Generator().manual_seed(0)
        self.gt = torch.rand(count, 3, 16 * scale, 16 * scale, generator=generator)
        self.lq = nn.functional.avg_pool2d(self.gt, scale)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"lq": self.lq[index], "gt": self.gt[index]}


def test_distill_takes_modules_and_a_dataset_and_returns_the_trained_student(tmp_path: Path) -> None:
    torch.manual_seed(0)
    student = construct_network("edsr", tiny_edsr(2)["options"])
    teacher = construct_network("edsr", tiny_edsr(2, features=12, blocks=2)["options"])
    before = {key: value.clone() for key, value in student.state_dict().items()}
    random_state = torch.get_rng_state()
    trained = dckd.distill(
        student,
        teacher,
        Pairs(),
        method="logits",
        output_dir=tmp_path,
        kd_weight=0.5,
        total_iters=4,
        ema_decay=0,
        log_every_iters=2,
        tensorboard=False,
        batch_size=2,
    )
    assert trained is student
    assert any(not torch.equal(value, before[key]) for key, value in student.state_dict().items())
    assert torch.equal(torch.get_rng_state(), random_state), "the caller's random state must not move"
    run_dir = tmp_path / "logits"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["method"] == "logits" and saved["logits"]["kd_weight"] == 0.5
    assert saved["data"]["train"]["kind"] == "python" and saved["data"]["scale"] == 2
    # The run folder's config cannot rebuild an in-memory dataset: a clear error, not a traceback.
    assert main(["train", str(run_dir / "config.yaml"), "--set", "name=again"]) == 2
    results = dckd.evaluate(trained, Pairs(2))
    assert set(results["dataset0"]) == {"psnr", "ssim", "images"} and len(results["dataset0"]["images"]) == 2


def test_distill_keywords_are_unambiguous_for_every_method() -> None:
    flat = set(dckd.api.FLAT_DATA) | set(dckd.api.FLAT_TRAIN) | set(dckd.api.SECTIONS)
    assert len(flat) == len(dckd.api.FLAT_DATA) + len(dckd.api.FLAT_TRAIN) + len(dckd.api.SECTIONS)
    for name, method_class in METHODS.items():
        clashes = {field.name for field in dataclasses.fields(method_class.Options)} & flat
        assert not clashes, f"{name}: {clashes}"


def test_distill_rejects_unknown_options_naming_them(tmp_path: Path) -> None:
    student = construct_network("edsr", tiny_edsr(2)["options"])
    with pytest.raises(dckd.errors.ConfigError, match="contrastive_wieght"):
        dckd.distill(student, None, Pairs(), method="scratch", contrastive_wieght=0.1, output_dir=tmp_path)
    with pytest.raises(dckd.errors.ConfigError, match="needs a teacher"):
        dckd.distill(student, None, Pairs(), method="logits", output_dir=tmp_path)


# ------------------------------------------------------------------------------------------------------------------
# A method written outside dckd: one module (here, this test file) and one dict entry.
@dataclass
class HalfKDOptions:
    """Options of the test method: the student learns from the mean of ground truth and teacher."""

    blend: float = 0.5
    """Weight of the teacher in the target."""


class HalfKD(Method):
    Options = HalfKDOptions
    loss_names = ("blended",)

    def __init__(self, student: nn.Module, teacher: nn.Module, blend: float) -> None:
        super().__init__(student)
        self.teacher, self.blend, self.steps = teacher, blend, 0

    @classmethod
    def needs(cls, options: HalfKDOptions) -> Needs:
        return Needs(teacher=True)

    @classmethod
    def build(cls, options: HalfKDOptions, parts: Parts) -> HalfKD:
        return cls(parts.student, parts.teacher, options.blend)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.student(batch["lq"])
        with torch.no_grad():
            target = (1 - self.blend) * batch["gt"] + self.blend * self.teacher(batch["lq"])
        return result({"blended": l1_loss(output, target)}, output)

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        self.steps += 1
        return {}

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])


def test_a_method_added_with_one_dict_entry_trains_checkpoints_resumes_and_dry_runs(
    tmp_path: Path, image_folder: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(METHODS, "half_kd", HalfKD)
    raw = tiny_run_config(tmp_path, image_folder, "half_kd", half_kd={"blend": 0.25})
    raw["teacher"] = {**tiny_edsr(features=12, blocks=2), "random_init": True}
    config_path = tmp_path / "half_kd.yaml"
    config_path.write_text(yaml.safe_dump(raw))

    assert main(["train", str(config_path), "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["method"] == "half_kd" and printed["half_kd"] == {"blend": 0.25}

    short = load_config(config_path, ["train.total_iters=3"])
    run_dir = train(short)
    assert load_checkpoint(list_checkpoints(run_dir)[0][1])["method"] == {"steps": 3}
    resumed = train(load_config(config_path))  # same run folder: resumes at 3, ends at 6
    state = load_checkpoint(list_checkpoints(resumed)[0][1])
    assert state["iteration"] == 6 and state["method"] == {"steps": 6}
    assert [r["iter"] for r in read_log(run_dir / "log.jsonl") if "blended" in r] == [2, 3, 4, 6]
    # The run's own config reloads to the same config, its paths made absolute (and names the method's section).
    assert load_config(run_dir / "config.yaml") == absolute_paths(config_from_dict(raw))


def test_a_run_folder_written_by_dckd_0_1_still_loads_and_resumes(tmp_path: Path, image_folder: Path) -> None:
    """config.yaml (every method's section), weights.pth and a training checkpoint written before the redesign."""
    fixture = ROOT / "tests" / "fixtures" / "dckd_0_1_run"
    run_dir = tmp_path / "runs" / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    text = (fixture / "config.yaml").read_text().replace("RUNS", str(tmp_path / "runs"))
    (run_dir / "config.yaml").write_text(text.replace("IMAGES", str(image_folder)))
    for name in ("weights.pth", "checkpoints/iter_00000002.pth", "checkpoints/iter_00000002.pth.sha256"):
        (run_dir / name).write_bytes((fixture / name).read_bytes())
    config = load_config(run_dir / "config.yaml", ["train.total_iters=4"])
    assert config.method == "scratch" and config.data.lq_patch_size == 8
    network = dckd.load_network(run_dir / "weights.pth")
    assert type(network).__name__ == "EDSR"
    train(config)  # resumes from the old checkpoint at iteration 2
    assert [iteration for iteration, _ in list_checkpoints(run_dir)][0] == 4
    with pytest.raises(dckd.errors.ConfigError, match="section 'dckd' is set but method is 'scratch'"):
        load_config(run_dir / "config.yaml", ["dckd.kd_weight=0.5"])
