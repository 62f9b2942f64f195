"""Bad training data through the command line: a clear message naming each file, never a traceback."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import tiny_run_config, write_images

from dckd.apps.cli import main


def broken_folder(root: Path) -> Path:
    folder = write_images(root / "mixed", 4, 48, 60)
    (folder / "zero.png").write_bytes(b"")
    good = (folder / "0000.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.png").write_text("this is not an image")
    return folder


def config_file(tmp_path: Path, folder: Path, **train) -> Path:
    raw = tiny_run_config(tmp_path, folder, "scratch")
    raw["data"]["validation"] = []
    raw["train"].update(train)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_check_data_and_train_name_every_bad_file(tmp_path: Path, capsys) -> None:
    config = config_file(tmp_path, broken_folder(tmp_path))
    assert main(["check-data", str(config)]) == 1
    report = capsys.readouterr().out
    for name in ("zero.png", "truncated.png", "notes.png"):
        assert name in report
    assert main(["train", str(config)]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and all(name in error for name in ("zero.png", "truncated.png", "notes.png"))
    assert not (tmp_path / "runs").exists()  # nothing written before the data is valid


def test_skip_bad_files_trains_on_the_rest(tmp_path: Path, capsys) -> None:
    config = config_file(tmp_path, broken_folder(tmp_path))
    assert main(["train", str(config), "--set", "data.skip_bad_files=true"]) == 0
    assert "skipped 3 of 7 items" in capsys.readouterr().err
    assert (tmp_path / "runs" / "run" / "weights.pth").is_file()


def test_a_file_that_goes_bad_during_training_is_named(tmp_path: Path, capsys) -> None:
    folder = write_images(tmp_path / "images", 4, 48, 60)
    config = config_file(tmp_path, folder, total_iters=4)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["check_files"] = False  # as if the file broke after the check
    raw["data"]["num_workers"] = 1
    config.write_text(yaml.safe_dump(raw))
    (folder / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["train", str(config)]) == 2
    error = capsys.readouterr().err
    assert "0002.png" in error and "Traceback" not in error
    # The first batch holds it: nothing to save yet, and the message says so (not "progress is saved").
    assert "(at iteration 1; no checkpoint was saved yet: fix or remove the file" in error
