"""Every smoke preset trains, checkpoints, evaluates with its task's protocol and resumes, on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from dckd.config.schema import load_config
from dckd.engine.checkpoints import list_checkpoints
from dckd.engine.loop import train
from dckd.engine.run_log import read_log
from dckd.methods import METHODS

SMOKE = sorted((Path(__file__).resolve().parents[1] / "configs" / "smoke").glob("*.yaml"))


@pytest.mark.parametrize("path", SMOKE, ids=[path.stem for path in SMOKE])
def test_smoke_preset_trains_checkpoints_and_resumes(tmp_path: Path, path: Path, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the presets name shipped files relative to the repo
    common = [f"output_dir={tmp_path}", "train.checkpoint_every_iters=2", "train.log_every_iters=1"]
    run_dir = train(load_config(path, common + ["train.total_iters=3"]))
    records = read_log(run_dir / "log.jsonl")
    validation = [record["validation"] for record in records if "validation" in record]
    assert len(validation) == 1
    scores = next(iter(validation[0].values()))
    assert 5 < scores["psnr"] < 60 and 0 < scores["ssim"] <= 1
    terms = set(records[0]) - {"iter", "lr", "loss", "seconds_per_iter"}
    config = load_config(path)
    assert terms <= set(METHODS[config.method].loss_names)
    assert [iteration for iteration, _ in list_checkpoints(run_dir)] == [3, 2]

    # Resume: drop the final checkpoint, run to 5; iterations 3..5 come after the checkpoint at 2.
    newest = list_checkpoints(run_dir)[0][1]
    newest.unlink()
    newest.with_name(newest.name + ".sha256").unlink()
    train(load_config(path, common + ["train.total_iters=5", "data.validation=[]"]))
    iterations = [record["iter"] for record in read_log(run_dir / "log.jsonl") if "loss" in record]
    assert iterations == [1, 2, 3, 3, 4, 5]
    assert list_checkpoints(run_dir)[0][0] == 5
