"""`dckd demo` with a tiny budget: the report's files and table (stand-in teacher and codebook weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_VQGAN, write_images

from dckd.apps import demo_report
from dckd.apps.cli import main
from dckd.apps.demo import DEMO_TEACHER, codebook_path, demo_config, teacher_path
from dckd.engine import host_memory
from dckd.engine.setup import construct_network
from dckd.files.paths import ASSETS
from dckd.methods.dckd.method import DCKDOptions
from dckd.models.vqgan import VQGANEncoder


def stand_ins(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    teacher = construct_network(DEMO_TEACHER["backbone"], {**DEMO_TEACHER["options"], "upscale": 4})
    teacher_path = tmp_path / "teacher.pth"
    torch.save({"params": teacher.state_dict()}, teacher_path)
    codebook_path = tmp_path / "codebook.pth"
    torch.save({"state_dict": VQGANEncoder(**TINY_VQGAN).state_dict(), "vqgan_config": TINY_VQGAN}, codebook_path)
    return teacher_path, codebook_path


def test_demo_writes_the_report_with_statistics_over_seeds(tmp_path: Path, capsys) -> None:
    teacher, codebook = stand_ins(tmp_path)
    report = tmp_path / "report"
    eval_folder = write_images(tmp_path / "my_photos", 2, 48, 36)
    arguments = ["demo", "--iterations", "2", "--batch-size", "2", "--patch", "16", "--seeds", "3,4"]
    arguments += ["--report", str(report), "--teacher", str(teacher), "--codebook", str(codebook), "--device", "cpu"]
    arguments += ["--set", "dckd.contrastive_start_iters=1"]  # the demo's quarter of 2 iterations would be 0
    assert main([*arguments, "--eval-data", str(eval_folder), "--validate-every", "1"]) == 0
    document = json.loads((report / "table.json").read_text())
    assert document["seeds"] == [3, 4] and document["iterations"] == 2 and document["scale"] == 4
    photos = len(list((ASSETS / "bundled" / "test" / "HR").glob("*.png")))
    assert [row["method"] for row in document["rows"]] == ["Bicubic", "Scratch", "Logits", "DCKD", "Teacher"]
    for row in document["rows"]:
        assert 5 < row["psnr"] < 60 and 0 < row["ssim"] <= 1 and len(row["images"]) == photos
    main_set, extra_set = document["evaluations"]
    assert document["evaluations"][extra_set]["photos"] == 2 and "--eval-data" in extra_set
    statistics = document["evaluations"][main_set]["methods"]
    for label in ("Scratch", "Logits", "DCKD"):  # one run per seed; the mean is their mean
        per_seed = [run["psnr"] for run in statistics[label]["per_seed"]]
        assert [run["seed"] for run in statistics[label]["per_seed"]] == [3, 4]
        assert statistics[label]["psnr"]["mean"] == pytest.approx(sum(per_seed) / 2)
    differences = document["evaluations"][main_set]["differences"]
    assert set(differences) == {"Logits - Scratch", "DCKD - Scratch", "DCKD - Logits"}
    dckd_minus_scratch = differences["DCKD - Scratch"]["over_seeds"]
    expected = sum(
        a["psnr"] - b["psnr"] for a, b in zip(statistics["DCKD"]["per_seed"], statistics["Scratch"]["per_seed"])
    )
    assert dckd_minus_scratch["mean"] == pytest.approx(expected / 2) and dckd_minus_scratch["count"] == 2
    assert differences["DCKD - Scratch"]["over_photos"]["count"] == photos
    curves = document["validation_curves"]
    assert set(curves) == {"Scratch", "Logits", "DCKD"} and curves["DCKD"]["iterations"] == [1, 2]
    markdown = (report / "table.md").read_text()
    assert "| DCKD |" in markdown and "| Teacher |" in markdown and "DCKD - Scratch" in markdown
    assert (report / "curves.png").stat().st_size > 1000 and (report / "psnr_curve.png").stat().st_size > 1000
    crops = sorted((report / "crops").glob("*.png"))
    assert len(crops) == photos
    page = (report / "index.html").read_text()
    assert "psnr_curve.png" in page and all(f"crops/{crop.name}" in page for crop in crops)
    assert (report / "runs" / "seed4" / "dckd" / "weights.pth").is_file()
    profile = {row["label"]: row for row in document["profile"]["rows"]}
    assert profile["Teacher"]["parameters"] == statistics["Teacher"]["parameters"]
    assert profile["Student (any method)"]["parameters"] == statistics["DCKD"]["parameters"]
    assert "The student against the teacher" in markdown
    assert "DCKD" in capsys.readouterr().out
    assert "contrastive term from iteration 1 on (dckd.contrastive_start_iters, beyond the paper" in markdown


def test_the_demo_dckd_has_the_paper_loss_weights_and_says_what_is_beyond_the_paper(tmp_path: Path) -> None:
    arguments = (4, 400, 0, tmp_path, 8, 24, "cpu", teacher_path(4), codebook_path())
    config = demo_config("dckd", *arguments)
    paper = DCKDOptions()  # the defaults are the paper's main setting (configs/sr/*_dckd.yaml)
    options = config.dckd
    assert (options.contrastive_weight, options.codebook_weight, options.kd_weight, options.layer_weights) == (
        paper.contrastive_weight,
        paper.codebook_weight,
        paper.kd_weight,
        tuple(paper.layer_weights),
    )
    assert options.contrastive_weight > 0 and options.codebook_weight > 0, "every DCKD term is on"
    assert options.contrastive_start_iters == 100 and options.contrastive_ramp_iters == 0  # a quarter of the run
    assert config.train.keep_freed_host_memory is host_memory.available() and config.train.channels_last
    assert demo_config("dckd", *arguments, ["dckd.contrastive_start_iters=0"]).dckd.contrastive_start_iters == 0


def test_demo_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "demo",
                "--methods",
                "scratch,magic",
                "--report",
                str(tmp_path / "r"),
                "--teacher",
                str(tmp_path / "t.pth"),
                "--codebook",
                str(tmp_path / "c.pth"),
            ]
        )
        == 2
    )
    assert "magic" in capsys.readouterr().err
    assert main(["demo", "--scale", "2", "--report", str(tmp_path / "r")]) == 2
    assert "teacher" in capsys.readouterr().err


def test_demo_overrides_reach_only_their_method(tmp_path: Path) -> None:
    teacher, codebook = stand_ins(tmp_path)
    report = tmp_path / "report"
    assert (
        main(
            [
                "demo",
                "--iterations",
                "2",
                "--batch-size",
                "2",
                "--patch",
                "16",
                "--report",
                str(report),
                "--methods",
                "scratch,dckd",
                "--teacher",
                str(teacher),
                "--codebook",
                str(codebook),
                "--set",
                "dckd.contrastive_weight=0",
                "--set",
                "optimizer.lr=0.001",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    dckd_log = (report / "runs" / "seed0" / "dckd" / "log.jsonl").read_text()
    assert '"codebook"' in dckd_log and '"contrastive"' not in dckd_log
    assert '"lr": 0.001' in (report / "runs" / "seed0" / "scratch" / "log.jsonl").read_text()
    assert "dckd.contrastive_weight=0" in json.loads((report / "table.json").read_text())["context"]


def test_loss_curves_include_a_term_that_starts_later() -> None:
    records = [
        {"iter": 10, "lr": 1e-3, "loss": 0.3, "kd": 0.1},
        {"iter": 20, "lr": 1e-3, "loss": 0.2, "kd": 0.05, "contrastive": 0.02, "seconds_per_iter": 0.1},
        {"iter": 30, "lr": 1e-3, "loss": 0.1, "kd": 0.04, "contrastive": 0.01},
    ]
    terms = demo_report.logged_terms(records)
    assert list(terms) == ["loss", "kd", "contrastive"]
    assert terms["contrastive"] == ([20, 30], [0.02, 0.01]) and terms["loss"] == ([10, 20, 30], [0.3, 0.2, 0.1])
