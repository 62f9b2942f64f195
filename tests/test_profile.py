"""``dckd profile`` / ``dckd.eval.profile``: exact parameters and multiply-adds, positive timings and memory,
PSNR/SSIM as ``dckd test`` computes them, and the JSON / Markdown / PNG report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from dckd.apps.cli import main
from dckd.data.bundled import bundled_dataset
from dckd.engine.checkpoints import save_weights
from dckd.errors import DckdError
from dckd.eval import profile
from dckd.eval.model_table import multiply_adds
from dckd.eval.restoration import evaluate_dataset
from dckd.models.backbones import BACKBONES

STUDENT = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 2}
TEACHER = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 12, "num_block": 2, "upscale": 2}


def edsr(options: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return BACKBONES["edsr"](**options).eval()


def test_profile_measures_each_network(tmp_path: Path) -> None:
    networks = [edsr(STUDENT, 0), edsr(TEACHER, 1)]
    dataset = bundled_dataset("test", 2, lq_patch_size=None, augment=False)
    report = profile.profile_networks(
        networks, ["student", "teacher"], dataset, input_size=(24, 20), repeats=3, warmup=1
    )
    for row, network, options in zip(report.rows, networks, (STUDENT, TEACHER)):
        assert row.parameters == sum(parameter.numel() for parameter in network.parameters())
        assert (row.parameters, row.multiply_adds) == multiply_adds("edsr", options, 24, 20)
        assert row.latency_ms > 0 and row.peak_memory_bytes > 0 and row.scale == 2
        expected = evaluate_dataset(network, dataset, 2, torch.device("cpu"), True, 2)
        assert (row.psnr, row.ssim) == (expected["psnr"], expected["ssim"])
    assert report.rows[1].multiply_adds > report.rows[0].multiply_adds
    assert report.threads == torch.get_num_threads() and report.protocol == "Y, crop border 2"
    assert "(cpu)" in report.device and report.dataset == "bundled-test"


def test_peak_memory_sees_what_a_forward_pass_allocates() -> None:
    class Allocates(torch.nn.Module):
        """At its busiest three 4 MiB tensors live at once (``ones``, ``first`` and their product)."""

        scale = 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            first = torch.ones(1 << 20) + x.mean()
            second = torch.ones(1 << 20) * first
            return x + second.sum()

    peak = profile.peak_memory_bytes(Allocates(), torch.zeros(1, 3, 4, 4))
    assert 12 * 2**20 <= peak < 12 * 2**20 + 4096  # the three, and a few scalars


def test_report_files_table_and_plot(tmp_path: Path) -> None:
    report = profile.profile_networks(
        [edsr(STUDENT, 0), edsr(TEACHER, 1)], ["small", "big"], input_size=(16, 16), repeats=2, warmup=0
    )
    paths = profile.write_profile(report, tmp_path / "report")
    assert [path.name for path in paths] == ["profile.json", "profile.md", "profile.png"]
    document = json.loads(paths[0].read_text())
    assert [row["label"] for row in document["rows"]] == ["small", "big"]
    assert document["rows"][0]["parameters"] == report.rows[0].parameters and document["input_size"] == [16, 16]
    markdown = paths[1].read_text()
    assert "| network | scale | params | GMACs | latency (ms) | peak memory (MiB) |" in markdown
    assert "| small | x2 |" in markdown and "PSNR" not in markdown  # no dataset, no quality columns
    with Image.open(paths[2]) as image:
        assert image.format == "PNG" and image.size[0] > 300
    terminal = profile.format_table(report)
    assert "thread" in terminal and "small" in terminal and "big" in terminal
    with pytest.raises(DckdError, match="exist; pass --overwrite"):
        profile.write_profile(report, tmp_path / "report")
    profile.write_profile(report, tmp_path / "report", overwrite=True)


def test_profile_rejects_mismatched_inputs() -> None:
    with pytest.raises(DckdError, match="2 networks but 1 labels"):
        profile.profile_networks([edsr(STUDENT, 0), edsr(STUDENT, 0)], ["one"])
    dataset = bundled_dataset("test", 4, lq_patch_size=None, augment=False)
    with pytest.raises(DckdError, match="x2 network, but the dataset's pairs are x4"):
        profile.profile_networks([edsr(STUDENT, 0)], ["x2"], dataset, repeats=1)


def test_cli_profile_writes_the_report(tmp_path: Path, capsys) -> None:
    paths = []
    for name, options, seed in (("student", STUDENT, 0), ("teacher", TEACHER, 1)):
        path = tmp_path / "runs" / name / "weights.pth"
        save_weights(path, edsr(options, seed).state_dict(), None, {"backbone": "edsr", "options": options})
        paths.append(str(path))
    output = tmp_path / "report"
    arguments = ["profile", *paths, "--size", "16x12", "--repeats", "2", "--threads", "1", "--output", str(output)]
    assert main([*arguments, "--data", "bundled:test"]) == 0
    printed = capsys.readouterr().out
    assert "1 thread;" in printed and "student" in printed and "teacher" in printed and "PSNR (dB)" in printed
    rows = json.loads((output / "profile.json").read_text())["rows"]
    assert [row["label"] for row in rows] == ["student", "teacher"]  # run folder names for weights.pth
    assert all(row["psnr"] > 10 for row in rows)
    assert main(arguments) == 2  # the report exists
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*arguments, "--overwrite", "--labels", "a"]) == 2
    assert "--labels names 1 networks" in capsys.readouterr().err
    assert main([*arguments, "--overwrite", "--size", "0x4"]) == 2
    assert main([*arguments, "--overwrite", "--threads", "0"]) == 2
    assert "--threads 0: expected 1 or more" in capsys.readouterr().err
