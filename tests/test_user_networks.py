"""Networks a user brings (issue 12, section 3): every saved network records its scale, every output is checked
to be input x scale, a plain state_dict of the user's class is tested and inferred with --backbone/--options/
--scale, the console script and ``python -m dckd`` say the same thing about importing it, and grayscale and
16-bit inputs give grayscale and 16-bit results."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import structured_image, tiny_edsr, tiny_run_config, write_images
from file_tree import snapshot
from PIL import Image

from dckd.apps.cli import main
from dckd.config.schema import config_from_dict
from dckd.data import decode_image
from dckd.data.image_io import write_image
from dckd.engine.checkpoints import list_checkpoints, load_checkpoint, save_weights
from dckd.engine.loop import train
from dckd.engine.setup import construct_network
from dckd.errors import NetworkOutputError
from dckd.eval.report import dataset_from_folder
from dckd.eval.restoration import evaluate_dataset, restore

ENVIRONMENT = {
    **{key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}
MODULE = '''
import torch
from torch import nn


class Upscaler(nn.Module):
    """x factor by a conv and pixel shuffle; says nothing about its scale."""

    def __init__(self, factor=2, channels=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * factor * factor, 3, padding=1)
        self.factor = factor

    def forward(self, x):
        return nn.functional.pixel_shuffle(self.conv(x), self.factor) + nn.functional.interpolate(
            x, scale_factor=self.factor, mode="nearest"
        )


class SameSize(nn.Module):
    """Output as large as its input (a restoration network)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return x + 0 * self.conv(x)
'''


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch) -> Path:
    """``usernets.py`` in its own folder, importable in this process."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "usernets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "usernets", raising=False)
    return folder


def plain_state_dict(folder: Path, factor: int = 2) -> Path:
    """A plain state_dict of ``usernets.Upscaler`` (no record), as a user's own training would save it."""
    torch.manual_seed(0)
    path = folder / f"upscaler_x{factor}.pth"
    channels = 3 * factor * factor
    torch.save({"conv.weight": torch.randn(channels, 3, 3, 3) * 0.01, "conv.bias": torch.zeros(channels)}, path)
    return path


def dckd_program() -> Path:
    """The ``dckd`` console script installed next to this Python."""
    return Path(sys.executable).parent / "dckd"


# ----------------------------------------------------------------------------------------------------
# The scale is recorded for every network


def test_weights_and_checkpoints_record_the_scale_also_for_a_users_class(tmp_path, image_folder, user_module) -> None:
    raw = tiny_run_config(tmp_path, image_folder)
    raw["train"].update(total_iters=2, checkpoint_every_iters=2)
    run_dir = train(config_from_dict(raw))
    assert torch.load(run_dir / "weights.pth", weights_only=True)["network"] == {**tiny_edsr(), "scale": 2}
    checkpoint = load_checkpoint(list_checkpoints(run_dir)[0][1])
    assert checkpoint["network"]["scale"] == 2

    raw = tiny_run_config(tmp_path, image_folder, name="user")
    raw["student"] = {"backbone": "usernets:Upscaler", "options": {"factor": 2}}
    raw["train"].update(total_iters=2, checkpoint_every_iters=2, ema_decay=0.0)
    run_dir = train(config_from_dict(raw))
    weights = run_dir / "weights.pth"
    assert torch.load(weights, weights_only=True)["network"] == {
        "backbone": "usernets:Upscaler",
        "options": {"factor": 2},
        "scale": 2,
    }
    images = write_images(tmp_path / "inputs", 1, 11, 15)
    assert main(["test", str(weights), "bundled"]) == 2  # the file names a class: the user must name it
    assert main(["infer", str(weights), str(images), str(tmp_path / "out"), "--backbone", "usernets:Upscaler"]) == 0
    assert Image.open(tmp_path / "out" / "0000.png").size == (30, 22)  # 15x11 at x2, never a crop
    assert main(["test", str(weights), "bundled", "--backbone", "usernets:Upscaler"]) == 0
    assert main(["test", str(weights), "bundled", "--backbone", "usernets:Upscaler", "--scale", "3"]) == 2


def test_an_output_of_another_scale_is_an_error_never_a_crop(tmp_path, user_module, capsys) -> None:
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3), "conv.bias": torch.zeros(3)}, tmp_path / "same.pth")
    images = write_images(tmp_path / "images", 2, 11, 15)
    before = snapshot(tmp_path)
    options = ["--backbone", "usernets:SameSize", "--scale", "4"]
    assert main(["infer", str(tmp_path / "same.pth"), str(images), str(tmp_path / "out"), *options]) == 2
    error = capsys.readouterr().err
    assert "output is 11x15 for an input of 11x15 (x1 by x1), expected 44x60 (scale 4)" in error
    assert snapshot(tmp_path) == before  # no result written, not even a cropped one
    assert main(["test", str(tmp_path / "same.pth"), "bundled", *options]) == 2
    assert "expected" in capsys.readouterr().err
    network = importlib.import_module("usernets").SameSize()
    with pytest.raises(NetworkOutputError, match="scale 2"):
        restore(network, torch.zeros(1, 3, 8, 8), 2, tile_size=4, tile_overlap=1)
    dataset = dataset_from_folder("bundled", 2, "sr")
    with pytest.raises(NetworkOutputError):
        evaluate_dataset(network, dataset, 2, torch.device("cpu"), True, 2)


# ----------------------------------------------------------------------------------------------------
# A plain state_dict of the user's class; option combinations that make no sense


def test_a_plain_state_dict_of_a_users_class_is_tested_and_inferred(tmp_path, user_module, capsys) -> None:
    weights = plain_state_dict(tmp_path, factor=2)
    images = write_images(tmp_path / "images", 1, 10, 14)
    user = ["--backbone", "usernets:Upscaler", "--options", '{"factor": 2}', "--scale", "2"]
    assert main(["infer", str(weights), str(images), str(tmp_path / "out"), *user]) == 0
    assert Image.open(tmp_path / "out" / "0000.png").size == (28, 20)
    assert main(["test", str(weights), "bundled", *user, "--json", str(tmp_path / "r.json")]) == 0
    weights4 = plain_state_dict(tmp_path, factor=4)
    assert (
        main(
            [
                "test",
                str(weights4),
                "bundled:test",
                "--backbone",
                "usernets:Upscaler",
                "--options",
                '{"factor": 4}',
                "--scale",
                "4",
            ]
        )
        == 0
    )
    capsys.readouterr()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--options", '{"factor": 2}'], "--options describe a backbone: give --backbone"),
        (
            ["--backbone", "usernets:Upscaler"],
            "does not say its scale (no record in the file, no 'scale' attribute); pass --scale N",
        ),
        (["--backbone", "usernets:Upscaler", "--scale", "2", "--options", '{"factr": 2}'], "do not fit Upscaler"),
        (["--backbone", "usernets:Missing", "--scale", "2"], "'Missing' in 'usernets' is not an nn.Module class"),
        (["--backbone", "users nets:Upscaler", "--scale", "2"], "expected 'package.module:Class'"),
        (["--backbone", "not_installed_anywhere:Net", "--scale", "2"], "cannot import module 'not_installed_anywhere'"),
        (["--backbone", "broken:Net", "--scale", "2"], "importing module 'broken' failed: SyntaxError"),
        (
            ["--backbone", "needs_timm:Net", "--scale", "2"],
            "module 'needs_timm' imports 'timm_not_here', which is not installed",
        ),
        (
            ["--preset", "edsr_baseline_x2", "--backbone", "rcan"],
            "preset 'edsr_baseline_x2' is a edsr network, but backbone 'rcan'",
        ),
        (
            ["--backbone", "usernets:Upscaler", "--scale", "2", "--tile", "8", "--tile-overlap", "8"],
            "--tile-overlap 8 must be smaller than --tile 8",
        ),
        (["--backbone", "usernets:Upscaler", "--scale", "2", "--tlc", "64"], "--tlc is for NAFNet networks"),
    ],
)
def test_nonsense_option_combinations_are_clear_errors(tmp_path, user_module, capsys, options, message) -> None:
    (user_module / "broken.py").write_text("def (:\n")
    (user_module / "needs_timm.py").write_text("import timm_not_here\n")
    weights = plain_state_dict(tmp_path)
    images = write_images(tmp_path / "images", 1, 8, 8)
    before = snapshot(tmp_path)
    for command in (["test", str(weights), "bundled"], ["infer", str(weights), str(images), str(tmp_path / "out")]):
        assert main([*command, *options]) == 2, options
        error = capsys.readouterr().err
        assert message in error and error.startswith("error: "), error
    assert snapshot(tmp_path) == before


def test_a_scale_that_disagrees_with_the_architecture_is_refused(tmp_path, capsys) -> None:
    record = tiny_edsr(scale=4)
    network = construct_network(record["backbone"], record["options"])
    torch.save(network.state_dict(), tmp_path / "official_x4.pth")
    assert (
        main(
            [
                "test",
                str(tmp_path / "official_x4.pth"),
                "bundled",
                "--backbone",
                "edsr",
                "--options",
                '{"num_feat": 8, "num_block": 1, "upscale": 4}',
                "--scale",
                "2",
            ]
        )
        == 2
    )
    assert "the scale is ambiguous: --scale: x2, the network's options: x4" in capsys.readouterr().err
    save_weights(tmp_path / "w.pth", network.state_dict(), None, {**record, "scale": 3})
    assert main(["test", str(tmp_path / "w.pth"), "bundled"]) == 2
    assert "the file's record: x3, the network's options: x4" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--options", "{num_feat: 8"], "not valid JSON"),
        (["--options", "[1]"], "expected a JSON object"),
        (["--scale", "0"], "expected a positive integer"),
        (["--tile", "-1"], "expected an integer >= 0"),
    ],
)
def test_malformed_option_values_are_usage_errors(tmp_path, capsys, arguments, message) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["test", str(tmp_path / "w.pth"), "bundled", *arguments])
    assert stop.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# The console script and python -m dckd


def test_the_console_script_says_how_to_import_a_class_from_the_working_directory(tmp_path) -> None:
    """``python -m dckd`` puts the working directory on sys.path, the ``dckd`` script does not (Python's rules).
    dckd keeps that difference and says exactly what to do; both remedies it names work."""
    program = dckd_program()
    if not program.is_file():
        pytest.skip("the dckd console script is not installed next to this Python")
    project = tmp_path / "project"
    project.mkdir()
    (project / "usernets.py").write_text(MODULE)
    weights = plain_state_dict(project)
    write_images(project / "images", 1, 8, 10)
    user = ["--backbone", "usernets:Upscaler", "--options", '{"factor": 2}', "--scale", "2"]

    def run(command: list[str], output: str, environment: dict) -> subprocess.CompletedProcess:
        arguments = [*command, "infer", weights.name, "images", output, *user]
        return subprocess.run(arguments, cwd=project, env=environment, capture_output=True, text=True)

    script = run([str(program)], "out_script", ENVIRONMENT)
    assert script.returncode == 2 and "Traceback" not in script.stderr
    assert "cannot import module 'usernets'" in script.stderr
    assert f"{project / 'usernets.py'} is in the working directory" in script.stderr
    assert "run `python -m dckd ...` or `PYTHONPATH=. dckd ...` here" in script.stderr
    assert not (project / "out_script").exists()
    module = run([sys.executable, "-m", "dckd"], "out_module", ENVIRONMENT)
    assert module.returncode == 0, module.stderr
    with_path = run([str(program)], "out_path", {**ENVIRONMENT, "PYTHONPATH": "."})
    assert with_path.returncode == 0, with_path.stderr
    assert (project / "out_module" / "0000.png").read_bytes() == (project / "out_path" / "0000.png").read_bytes()


# ----------------------------------------------------------------------------------------------------
# Grayscale and 16-bit inputs


def test_16_bit_png_is_written_and_read_back_exactly(tmp_path) -> None:
    generator = np.random.default_rng(0)
    for channels in (3, 1):
        pixels = generator.integers(0, 65536, size=(9, 13, channels), dtype=np.uint16)
        path = tmp_path / f"c{channels}.png"
        write_image(path, pixels, bit_depth=16)
        decoded = decode_image(path)
        assert decoded.bit_depth == 16 and decoded.grayscale == (channels == 1)
        assert np.array_equal(decoded.pixels, np.repeat(pixels, 3 // channels, axis=2))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c1.png")), pixels[..., 0])  # Pillow agrees (I;16)
    with pytest.raises(ValueError, match="16-bit images are written as PNG"):
        write_image(tmp_path / "x.jpg", pixels, bit_depth=16)


def test_gray_in_gives_gray_out_and_16_bit_in_gives_16_bit_out(tmp_path, capsys) -> None:
    record = tiny_edsr(scale=2)
    torch.manual_seed(0)
    network = construct_network(record["backbone"], record["options"]).eval()
    save_weights(tmp_path / "w.pth", network.state_dict(), None, {**record, "scale": 2})
    images = tmp_path / "images"
    images.mkdir()
    rgb8 = structured_image(12, 16, 0)
    Image.fromarray(rgb8[..., 1]).save(images / "gray8.png")
    gray16 = (structured_image(12, 16, 1)[..., 0].astype(np.uint16) * 257 + 100).astype(np.uint16)
    Image.fromarray(gray16).save(images / "gray16.png")  # mode I;16
    rgb16 = (rgb8.astype(np.uint16) * 257) ^ 0x00F0  # low bits differ from any 8-bit value
    write_image(images / "rgb16.png", rgb16, bit_depth=16)
    Image.fromarray(rgb8).save(images / "rgb8.png")

    def infer(output: str, *options: str) -> dict:
        assert main(["infer", str(tmp_path / "w.pth"), str(images), str(tmp_path / output), *options]) == 0
        return {path.stem: decode_image(path) for path in (tmp_path / output).iterdir()}

    auto = infer("auto")
    assert (auto["gray8"].grayscale, auto["gray8"].bit_depth) == (True, 8)
    assert Image.open(tmp_path / "auto" / "gray8.png").mode == "L"
    assert (auto["gray16"].grayscale, auto["gray16"].bit_depth) == (True, 16)
    assert (auto["rgb16"].grayscale, auto["rgb16"].bit_depth) == (False, 16)
    assert (auto["rgb8"].grayscale, auto["rgb8"].bit_depth) == (False, 8)
    # the 16-bit result is the network's output at 16-bit precision, from the input at 16-bit precision
    lq = torch.from_numpy(rgb16.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    expected = np.round(restore(network, lq, 2)[0].clamp(0, 1).permute(1, 2, 0).double().numpy() * 65535)
    assert np.abs(auto["rgb16"].pixels.astype(np.float64) - expected).max() <= 1
    # a gray result is the mean of the network's three channels
    gray = torch.from_numpy(np.repeat(rgb8[..., 1:2], 3, axis=2).astype(np.float32) / 255).permute(2, 0, 1)[None]
    expected_gray = np.round(restore(network, gray, 2)[0].mean(0).clamp(0, 1).numpy() * 255)
    assert np.abs(auto["gray8"].pixels[..., 0].astype(np.float64) - expected_gray).max() <= 1

    forced = infer("forced", "--color", "rgb", "--bit-depth", "8")
    assert all(not image.grayscale and image.bit_depth == 8 for image in forced.values())
    assert Image.open(tmp_path / "forced" / "gray8.png").mode == "RGB"
    deep = infer("deep", "--color", "gray", "--bit-depth", "16")
    assert all(image.grayscale and image.bit_depth == 16 for image in deep.values())
    capsys.readouterr()
