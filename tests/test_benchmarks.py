"""The measurement scripts behind the demo's numbers (docs/demo.md) run and write what the docs cite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SHIPPED_CODEBOOK = REPOSITORY / "dckd" / "assets" / "weights" / "demo_codebook.pth"


def run(script: str, *arguments: str) -> None:
    command = [sys.executable, str(REPOSITORY / "benchmarks" / script), *arguments]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr[-2000:]


def test_demo_step_times_the_three_methods_and_the_dckd_parts(tmp_path: Path) -> None:
    out = tmp_path / "step.json"
    run("demo_step.py", "--rounds", "1", "--warmup", "1", "--part-repeats", "1", "--out", str(out))
    document = json.loads(out.read_text())
    assert set(document["iteration"]) == {"scratch", "logits", "dckd"}
    assert all(values["wall_ms"] > 0 for values in document["iteration"].values())
    assert "VQGAN frozen pass on [T(x), negatives] (no_grad)" in document["dckd_parts"]


def test_codebook_compare_counts_codes_on_the_bundled_photos(tmp_path: Path) -> None:
    out = tmp_path / "codebooks.json"
    run("codebook_compare.py", str(SHIPPED_CODEBOOK), "--repeats", "1", "--out", str(out))
    (row,) = json.loads(out.read_text())["codebooks"]
    assert row["encoder_parameters"] == 339_976 and row["frozen_pass_ms"] > 0
    for photos in (row["train_photos"], row["validation_photos"]):
        assert 1 < photos["codes_used"] <= 256 and 1 < photos["perplexity"] <= 256
    assert row["training"]["iterations"] == 16000


def test_demo_validation_appends_a_record_with_the_curve_and_training_l1(tmp_path: Path) -> None:
    out = tmp_path / "validation.jsonl"
    arguments = ["--method", "scratch", "--name", "tiny", "--iterations", "8", "--runs", str(tmp_path / "runs")]
    run("demo_validation.py", *arguments, "--out", str(out))
    run("demo_validation.py", *arguments[:3], "tiny2", *arguments[4:], "--out", str(out))
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert [iteration for iteration, _ in first["val_curve"]] == [2, 4, 6, 8] and second["name"] == "tiny2"
    assert first["train_l1"]["301-400"] is not None and first["codebook"] == "shipped"
