"""`dckd selfcheck` on the shipped and generated reference sets, `dckd models`, and the tiny benchmark."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from dckd.apps.cli import main
from dckd.eval.selfcheck import DEFAULT_DIR

REPOSITORY = Path(__file__).resolve().parents[1]
GENERATED = [
    REPOSITORY / "tests" / "references" / name for name in ("sr_backbones", "restoration_backbones", "vqgan", "imaging")
]


def test_selfcheck_passes_on_every_shipped_and_generated_set(capsys) -> None:
    assert main(["selfcheck"]) == 0
    output = capsys.readouterr().out
    index = json.loads((DEFAULT_DIR / "index.json").read_text())
    assert output.count("  PASS  ") == len(index) and "FAIL" not in output
    assert main(["selfcheck", *map(str, GENERATED)]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_selfcheck_fails_on_a_wrong_reference(tmp_path: Path, capsys) -> None:
    copy = tmp_path / "golden"
    shutil.copytree(DEFAULT_DIR, copy)
    tensors = load_file(str(copy / "rcan_small_x3.safetensors"))
    tensors["output"] = tensors["output"] + 1e-3  # above the 1e-4 tolerance
    save_file(tensors, str(copy / "rcan_small_x3.safetensors"))
    index = json.loads((copy / "index.json").read_text())
    index["losses"]["ce"]["value"] *= 1.001
    index["unknown_case"] = {"kind": "teleporter", "file": "x.safetensors"}
    (copy / "index.json").write_text(json.dumps(index))
    assert main(["selfcheck", str(copy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    failed = {line.split()[1] for line in lines if line.strip().startswith("FAIL")}
    assert failed == {"rcan_small_x3", "losses", "unknown_case"}


def test_models_lists_every_preset_with_parameters_and_macs(capsys) -> None:
    assert main(["models", "--input-size", "32x48"]) == 0
    output = capsys.readouterr().out
    for preset, paper in (("swinir_m_x4", "11.9M"), ("rcan_student_x4", "5.2M"), ("restormer_dim24", "3.8M")):
        line = next(line for line in output.splitlines() if line.startswith(preset + " "))
        assert paper in line
    assert "32x48" in output
    assert main(["models", "--input-size", "big"]) == 2


def test_benchmark_runs_at_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "benchmarks" / "train_step.py"),
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--settings",
            "rcan_x4",
            "--methods",
            "published,scratch,dckd_star",
            "--iterations",
            "1",
            "--warmup",
            "0",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": ""},
        cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    labels = {row["variant"] for row in document["rows"]}
    assert {"published fp32", "scratch fp32", "dckd_star fp32", "dckd_star bf16 channels_last teacher_cache"} <= labels
    star = next(row for row in document["rows"] if row["variant"] == "dckd_star fp32")
    assert star["terms"] == ["codebook", "contrastive", "kd", "lcr", "reconstruction"]
    extras = document["extras"]["rcan_x4"]
    assert set(extras["loss_relative_difference_bf16_channels_last"]) >= {"loss", "contrastive", "codebook"}
    assert "x scratch" in completed.stdout and "x published" in completed.stdout


def test_benchmark_loss_agreement_only(tmp_path: Path) -> None:
    out = tmp_path / "agreement.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "benchmarks" / "train_step.py"),
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--settings",
            "rcan_x4",
            "--loss-agreement-only",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": ""},
        cwd=REPOSITORY,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert document["rows"] == []  # nothing timed
    differences = document["extras"]["rcan_x4"]["loss_relative_difference_bf16"]
    assert {"loss", "contrastive", "codebook", "lcr"} <= set(differences)
    assert all(0 <= value < 0.05 for value in differences.values())  # bf16 rounding, not a different computation
