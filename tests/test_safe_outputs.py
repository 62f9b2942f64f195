"""Writing results never loses a user's file: ``dckd infer`` and ``dckd test --json/--csv/--save-images`` plan every
output before any work, refuse collisions and existing files (unless --overwrite), keep going past bad
images, and turn OSError into one line (issue 11, sections 2 and 5)."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import structured_image, tiny_edsr, tiny_run_config, write_images
from file_tree import snapshot
from PIL import Image

from dckd.apps.cli import main
from dckd.config.schema import config_from_dict
from dckd.data import decode_image
from dckd.engine.checkpoints import save_weights
from dckd.engine.setup import build_dataset, construct_network
from dckd.files import outputs
from dckd.files.outputs import OutputPlan

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """Tiny x2 EDSR weights as ``dckd train`` writes them (with the network record and its scale)."""
    record = tiny_edsr(scale=2)
    torch.manual_seed(0)
    network = construct_network(record["backbone"], record["options"])
    path = tmp_path / "weights.pth"
    save_weights(path, network.state_dict(), None, {**record, "scale": 2})
    return path


def infer(weights: Path, source: Path, target: Path, *options: str) -> int:
    return main(["infer", str(weights), str(source), str(target), *options])


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


# ----------------------------------------------------------------------------------------------------
# Inputs and existing files are never replaced unasked


def test_infer_into_its_own_input_folder_is_refused_and_changes_nothing(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 3, 12, 16)
    before = snapshot(tmp_path)
    assert infer(weights, images, images) == 2
    error = capsys.readouterr().err
    assert "the output folder" in error and "is the input folder" in error and "nothing was written" in error
    link = tmp_path / "same"
    link.symlink_to(images)  # the same folder under another name
    assert infer(weights, images, link) == 2
    assert "is the input folder" in capsys.readouterr().err
    link.unlink()
    assert snapshot(tmp_path) == before


def test_infer_into_a_folder_inside_the_inputs_works_and_a_rerun_keeps_the_results(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 2, 12, 16)
    inside = images / "restored"
    assert infer(weights, images, inside) == 0
    assert sorted(path.name for path in inside.iterdir()) == ["0000.png", "0001.png"]
    assert Image.open(inside / "0000.png").size == (32, 24)
    capsys.readouterr()
    first = snapshot(tmp_path)
    assert infer(weights, images, inside) == 2  # the results exist: kept
    error = capsys.readouterr().err
    assert "0000.png exists; pass --overwrite" in error and "0001.png exists" in error
    assert snapshot(tmp_path) == first
    assert infer(weights, images, inside, "--overwrite") == 0
    assert snapshot(tmp_path) == first  # same weights, same results


def test_existing_results_are_kept_unless_overwrite(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 2, 12, 16)
    output = tmp_path / "out"
    output.mkdir()
    (output / "0001.png").write_bytes(b"the user's own file")
    (output / "NOTES.txt").write_text("unrelated")
    before = snapshot(tmp_path)
    assert infer(weights, images, output) == 2
    assert "0001.png exists; pass --overwrite" in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # nothing written, not even 0000.png
    assert infer(weights, images, output, "--overwrite") == 0
    assert Image.open(output / "0001.png").size == (32, 24)
    assert (output / "NOTES.txt").read_text() == "unrelated"


@pytest.mark.parametrize(
    "names, expected",
    [
        (["photo.jpg", "photo.png"], "photo.jpg and photo.png would both be written to"),
        (["Photo.png", "photo.jpg"], "Photo.png and photo.jpg would both be written"),
        ([unicodedata.normalize("NFC", "café.png"), unicodedata.normalize("NFD", "café.jpg")], "would both be written"),
        (["a.PNG", "a.tif", "b.png"], "a.PNG and a.tif would both be written"),
    ],
)
def test_inputs_that_would_share_a_result_name_are_found_before_any_work(
    tmp_path, weights, capsys, names: list[str], expected: str
) -> None:
    images = tmp_path / "images"
    for index, name in enumerate(names):
        save(images / name, structured_image(12, 16, index))
    assert len(list(images.iterdir())) == len(names)  # distinct files on this file system
    before = snapshot(tmp_path)
    assert infer(weights, images, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert expected in error and "rename one of them" in error
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_an_existing_name_differing_in_case_or_normalisation_counts_as_existing(tmp_path, weights, capsys) -> None:
    images = tmp_path / "images"
    save(images / "photo.png", structured_image(12, 16, 0))
    save(images / unicodedata.normalize("NFD", "é.png"), structured_image(12, 16, 1))
    output = tmp_path / "out"
    output.mkdir()
    (output / "PHOTO.png").write_bytes(b"keep me")
    (output / unicodedata.normalize("NFC", "é.png")).write_bytes(b"keep me too")
    before = snapshot(tmp_path)
    assert infer(weights, images, output) == 2
    error = capsys.readouterr().err
    assert "photo.png exists (as PHOTO.png" in error and "2 problem(s)" in error
    assert snapshot(tmp_path) == before


def test_symbolic_links_in_the_output_are_never_written_through(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 1, 12, 16)
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"a file elsewhere")
    output = tmp_path / "out"
    output.mkdir()
    (output / "0000.png").symlink_to(outside)
    before = snapshot(tmp_path)
    assert infer(weights, images, output) == 2
    assert "0000.png exists" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert infer(weights, images, output, "--overwrite") == 0  # the link is replaced, its target is not
    assert outside.read_bytes() == b"a file elsewhere" and not (output / "0000.png").is_symlink()
    # a link pointing at an input is refused even with --overwrite
    (output / "0000.png").unlink()
    (output / "0000.png").symlink_to(images / "0000.png")
    assert infer(weights, images, output, "--overwrite") == 2
    assert "would replace the input image" in capsys.readouterr().err


def test_test_outputs_never_replace_the_weights_an_input_or_each_other(tmp_path, weights, capsys) -> None:
    dataset = tmp_path / "Set2"
    write_images(dataset / "HR", 2, 24, 32)
    hr_image = dataset / "HR" / "0000.png"
    link = tmp_path / "link.json"
    link.symlink_to(weights)
    before = snapshot(tmp_path)
    cases = [
        (["--json", str(weights)], "would replace the weights file"),
        (["--csv", str(hr_image)], "would replace an input image"),
        (["--json", str(link)], "would replace the weights file"),
        (["--json", str(tmp_path / "r.txt"), "--csv", str(tmp_path / "r.txt")], "--json and --csv would both"),
        (["--json", str(tmp_path / "R.json"), "--csv", str(tmp_path / "r.json")], "--json and --csv would both"),
        (["--json", str(dataset)], "is a folder; a result cannot replace it"),
        (["--json", str(hr_image / "r.json")], "is a file, not a folder"),
        (["--save-images", str(hr_image)], "is a file, not a folder"),
        (["--save-images", str(tmp_path), "--json", str(tmp_path / "Set2" / "0000.png")], "would both be written"),
    ]
    for options, message in cases:
        assert main(["test", str(weights), str(dataset), *options]) == 2, options
        error = capsys.readouterr().err
        assert message in error, (options, error)
        assert snapshot(tmp_path) == before, options


def test_test_save_images_keeps_existing_files_and_stays_inside_its_folder(tmp_path, weights, capsys) -> None:
    dataset = tmp_path / "Set2"
    write_images(dataset / "HR", 2, 24, 32)
    results = tmp_path / "results"
    assert (
        main(["test", str(weights), str(dataset), "--save-images", str(results), "--json", str(tmp_path / "r.json")])
        == 0
    )
    assert sorted(path.name for path in (results / "Set2").iterdir()) == ["0000.png", "0001.png"]
    first = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["test", str(weights), str(dataset), "--save-images", str(results)]) == 2
    assert "0000.png exists; pass --overwrite" in capsys.readouterr().err
    assert main(["test", str(weights), str(dataset), "--json", str(tmp_path / "r.json")]) == 2
    assert "r.json exists" in capsys.readouterr().err
    assert snapshot(tmp_path) == first
    assert main(["test", str(weights), str(dataset), "--save-images", str(results), "--overwrite"]) == 0
    # a dataset folder inside the results that is a link elsewhere: results would leave the folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = tmp_path / "other_results"
    other.mkdir()
    (other / "Set2").symlink_to(elsewhere)
    before = snapshot(tmp_path)
    assert main(["test", str(weights), str(dataset), "--save-images", str(other), "--overwrite"]) == 2
    assert "leads outside the output folder" in capsys.readouterr().err
    assert snapshot(tmp_path) == before and not list(elsewhere.iterdir())


# ----------------------------------------------------------------------------------------------------
# A bad image does not stop the batch; alpha is a choice


def test_infer_writes_every_good_image_and_lists_the_bad_ones(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 2, 12, 16)
    truncated = images / "0002_truncated.png"
    truncated.write_bytes((images / "0000.png").read_bytes()[:60])
    (images / "0003_text.png").write_text("not an image")
    rgba = structured_image(12, 16, 5)
    alpha = np.full((12, 16, 1), 255, np.uint8)
    alpha[0, 0] = 0  # one transparent pixel
    Image.fromarray(np.concatenate([rgba, alpha], axis=2)).save(images / "0004_rgba.png")
    output = tmp_path / "out"
    before = snapshot(tmp_path, exclude=(output,))
    assert infer(weights, images, output) == 1
    error = capsys.readouterr().err
    assert "3 of 5 images could not be restored" in error
    assert "0002_truncated.png" in error and "0003_text.png" in error and "0004_rgba.png" in error
    assert "not fully opaque" in error and "Traceback" not in error
    assert sorted(path.name for path in output.iterdir()) == ["0000.png", "0001.png"]
    assert snapshot(tmp_path, exclude=(output,)) == before
    assert infer(weights, images, output, "--alpha", "drop") == 2  # the existing results are kept, no --overwrite
    assert "0000.png exists" in capsys.readouterr().err
    assert infer(weights, images, output, "--alpha", "drop", "--overwrite") == 1
    error = capsys.readouterr().err
    listed = error.split("could not be restored")[1]
    assert "2 of 5 images" in error and "0004_rgba.png" not in listed and "0003_text.png" in listed
    assert (output / "0004_rgba.png").is_file()


def test_test_takes_alpha_and_configs_take_data_alpha(tmp_path, weights, capsys) -> None:
    dataset = tmp_path / "Set1"
    pixels = structured_image(24, 32, 0)
    alpha = np.full((24, 32, 1), 255, np.uint8)
    alpha[3, 3] = 10
    save(dataset / "HR" / "a.png", np.concatenate([pixels, alpha], axis=2))
    assert main(["test", str(weights), str(dataset)]) == 2
    assert "not fully opaque" in capsys.readouterr().err
    assert main(["test", str(weights), str(dataset), "--alpha", "drop"]) == 0

    raw = tiny_run_config(tmp_path, dataset / "HR")
    raw["data"]["lq_patch_size"] = 8
    for policy, problems in (("error", 1), ("drop", 0)):
        raw["data"]["alpha"] = policy
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
        assert main(["check-data", str(tmp_path / "config.yaml")]) == (1 if problems else 0)
        config = config_from_dict(raw)
        assert config.data.alpha == policy
        dataset_object = build_dataset(config.data.train, 2, 8, False, alpha=config.data.alpha)
        assert dataset_object.alpha == policy
    raw["data"]["alpha"] = "keep"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    assert main(["train", str(tmp_path / "config.yaml"), "--dry-run"]) == 2
    assert "data.alpha: 'keep' is not allowed" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# OSError while writing: one line, nothing half-written


def test_a_full_disk_while_writing_is_one_line_and_leaves_no_partial_file(
    tmp_path, weights, capsys, monkeypatch
) -> None:
    images = write_images(tmp_path / "images", 3, 12, 16)
    output = tmp_path / "out"
    real_atomic_write = outputs.atomic_write
    written = []

    def fill_the_disk_on_the_second(path, write, overwrite=True):
        if written:

            def failing(temporary):
                temporary.write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")

            return real_atomic_write(path, failing, overwrite)
        written.append(path)
        return real_atomic_write(path, write, overwrite)

    monkeypatch.setattr(outputs, "atomic_write", fill_the_disk_on_the_second)
    assert infer(weights, images, output) == 2
    error = capsys.readouterr().err
    last = error.strip().splitlines()[-1]
    assert error.count("error:") == 1 and last.startswith("error: cannot write") and "0001.png" in last
    assert "the disk is full" in last and "Traceback" not in error
    assert sorted(os.listdir(output)) == ["0000.png"]  # no temporary file, no half-written result


def test_a_file_size_limit_mid_write_in_a_real_process(tmp_path, weights) -> None:
    """``ulimit -f`` (RLIMIT_FSIZE) makes the kernel refuse the write of a large result (EFBIG)."""
    source = tmp_path / "images"
    save(source / "small.png", structured_image(8, 8, 0))
    save(source / "zlarge.png", structured_image(160, 200, 1))
    output = tmp_path / "out"
    limit = 16 * 1024

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "dckd", "infer", str(weights), str(source), str(output)],
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write") and "zlarge.png" in last and "file-size limit" in last
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(output)) == ["small.png"]


def test_an_unwritable_or_misplaced_output_folder_is_found_before_any_work(
    tmp_path, weights, capsys, monkeypatch
) -> None:
    images = write_images(tmp_path / "images", 1, 12, 16)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    before = snapshot(tmp_path)
    assert infer(weights, images, a_file) == 2
    assert "a_file is a file, not a folder (the output folder)" in capsys.readouterr().err
    assert infer(weights, images, a_file / "sub") == 2
    assert f"a_file is a file, not a folder (a parent of {a_file / 'sub'})" in capsys.readouterr().err
    original_access = os.access
    monkeypatch.setattr(
        outputs.os, "access", lambda path, mode: Path(path) != read_only and original_access(path, mode)
    )
    assert infer(weights, images, read_only / "results") == 2
    assert "read_only is read-only" in capsys.readouterr().err
    assert main(["test", str(weights), "bundled", "--json", str(read_only / "r.json")]) == 2
    captured = capsys.readouterr()
    assert "read_only is read-only" in captured.err and captured.out == ""  # found before the evaluation
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_for_an_ordinary_user(tmp_path, weights, capsys) -> None:
    images = write_images(tmp_path / "images", 1, 12, 16)
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        assert infer(weights, images, read_only) == 2
        assert "read-only" in capsys.readouterr().err
    finally:
        read_only.chmod(0o755)


def test_a_write_refused_by_the_file_system_is_one_line(tmp_path, weights, capsys, monkeypatch) -> None:
    images = write_images(tmp_path / "images", 1, 12, 16)

    def read_only_file_system(*arguments, **keywords):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(outputs, "atomic_write", read_only_file_system)
    assert infer(weights, images, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert error.startswith("error: cannot write") and "Read-only file system" in error
    assert "choose another output folder" in error and error.count("\n") == 1


def test_a_file_that_appears_during_the_work_is_kept(tmp_path, weights, capsys, monkeypatch) -> None:
    images = write_images(tmp_path / "images", 2, 12, 16)
    output = tmp_path / "out"
    real_write = OutputPlan.write

    def someone_else_writes_first(plan, path, write):
        if path.name == "0001.png":
            path.write_bytes(b"written by another program")
        return real_write(plan, path, write)

    monkeypatch.setattr(OutputPlan, "write", someone_else_writes_first)
    assert infer(weights, images, output) == 2
    assert "appeared while dckd was working and was kept" in capsys.readouterr().err
    assert (output / "0001.png").read_bytes() == b"written by another program"
    assert decode_image(output / "0000.png").pixels.shape == (24, 32, 3)
    assert sorted(os.listdir(output)) == ["0000.png", "0001.png"]
