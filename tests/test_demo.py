"""`dckd demo` with a tiny budget: the report's files and table (stand-in teacher and codebook weights)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import TINY_VQGAN

from dckd.apps.cli import main
from dckd.apps.demo import DEMO_TEACHER
from dckd.data.bundled import bundled_root
from dckd.engine.setup import construct_network
from dckd.models.vqgan import VQGANEncoder


def stand_ins(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    teacher = construct_network(DEMO_TEACHER["backbone"], {**DEMO_TEACHER["options"], "upscale": 4})
    teacher_path = tmp_path / "teacher.pth"
    torch.save({"params": teacher.state_dict()}, teacher_path)
    codebook_path = tmp_path / "codebook.pth"
    torch.save({"state_dict": VQGANEncoder(**TINY_VQGAN).state_dict(), "vqgan_config": TINY_VQGAN}, codebook_path)
    return teacher_path, codebook_path


def test_demo_writes_the_report(tmp_path: Path, capsys) -> None:
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
                "--teacher",
                str(teacher),
                "--codebook",
                str(codebook),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    table = json.loads((report / "table.json").read_text())
    test_photos = len(list((bundled_root("test") / "HR").glob("*.png")))  # every bundled test photo is evaluated
    assert [row["method"] for row in table["rows"]] == ["Bicubic", "Scratch", "Logits", "DCKD", "Teacher"]
    for row in table["rows"]:
        assert 5 < row["psnr"] < 60 and 0 < row["ssim"] <= 1 and len(row["images"]) == test_photos
    assert table["iterations"] == 2 and table["scale"] == 4
    markdown = (report / "table.md").read_text()
    assert "| DCKD |" in markdown and "| Teacher |" in markdown
    assert (report / "curves.png").stat().st_size > 1000
    crops = sorted((report / "crops").glob("*.png"))
    assert len(crops) == test_photos
    page = (report / "index.html").read_text()
    assert "curves.png" in page and all(f"crops/{crop.name}" in page for crop in crops)
    assert "DCKD" in capsys.readouterr().out


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
            ]
        )
        == 0
    )
    dckd_log = (report / "runs" / "dckd" / "log.jsonl").read_text()
    assert '"codebook"' in dckd_log and '"contrastive"' not in dckd_log
    assert '"lr": 0.001' in (report / "runs" / "scratch" / "log.jsonl").read_text()
    assert "dckd.contrastive_weight=0" in json.loads((report / "table.json").read_text())["context"]
