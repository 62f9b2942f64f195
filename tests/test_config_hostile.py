"""Hostile config files (issue 11, class 7): every error is one line naming the file (and the key), comes within
a second, in bounded memory, and writes nothing."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from conftest import tiny_run_config, write_images

from dckd.apps.cli import main
from dckd.config.loading import MAX_CONFIG_BYTES


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": each level lists the previous one nine times (9**levels values once expanded)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines)


def dry_run(capsys, path: Path, *extra: str) -> tuple[str, float, int]:
    """(the one error line, seconds, peak traced memory in bytes) of ``dckd train PATH --dry-run``."""
    started = time.monotonic()
    rc = main(["train", str(path), "--dry-run", *extra])
    seconds = time.monotonic() - started
    capsys.readouterr()
    tracemalloc.start()  # again, measuring memory (tracing slows Python down several times)
    try:
        assert main(["train", str(path), "--dry-run", *extra]) == rc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    captured = capsys.readouterr()
    assert rc == 2, captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0], seconds, peak


@pytest.fixture
def valid(tmp_path: Path) -> dict:
    return tiny_run_config(tmp_path, write_images(tmp_path / "images", 2, 24, 24))


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_an_alias_bomb_in_student_options_is_refused_at_once(tmp_path, valid, capsys):
    text = yaml.safe_dump({key: value for key, value in valid.items() if key != "student"})
    text += "student:\n  backbone: edsr\n  options:\n" + "\n".join("    " + line for line in alias_bomb().splitlines())
    path = write(tmp_path, text)
    message, seconds, peak = dry_run(capsys, path)
    assert message.startswith(f"error: config file {path}: more than") and "alias" in message
    assert seconds < 1 and peak < 50 * 2**20
    assert not (tmp_path / "runs").exists()


def test_an_alias_bomb_in_a_set_override_is_refused(tmp_path, valid, capsys):
    path = write(tmp_path, yaml.safe_dump(valid))
    bomb = "{" + ", ".join(line.replace(": ", ": ", 1) for line in alias_bomb().splitlines()) + "}"
    message, seconds, peak = dry_run(capsys, path, "--set", f"student.options={bomb}")
    assert "override 'student.options=" in message and "more than" in message
    assert seconds < 1 and peak < 50 * 2**20


def test_a_recursive_alias_is_refused(tmp_path, valid, capsys):
    path = write(tmp_path, yaml.safe_dump(valid) + "extra: &loop [*loop]\n")
    message, _, _ = dry_run(capsys, path)
    assert f"config file {path}: line" in message and "contains itself" in message
    message, _, _ = dry_run(capsys, write(tmp_path, yaml.safe_dump(valid), "ok.yaml"), "--set", "name=&x [*x]")
    assert "override 'name=&x [*x]'" in message and "contains itself" in message


def test_harmless_aliases_and_merge_keys_still_work(tmp_path, capsys):
    raw = tiny_run_config(tmp_path, write_images(tmp_path / "images", 2, 24, 24), "logits")
    text = yaml.safe_dump({key: value for key, value in raw.items() if key not in ("student", "teacher")})
    text += (
        "student: &student\n  backbone: edsr\n"
        "  options: {num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 1, upscale: 2}\n"
        "teacher:\n  <<: *student\n  random_init: true\n"
    )
    assert main(["train", str(write(tmp_path, text)), "--dry-run"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["teacher"]["options"] == printed["student"]["options"] and printed["teacher"]["random_init"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "is a binary file"),
        ("name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 9)"),
        (b"", "is empty"),
        (b"# only a comment\n", "is empty"),
        (b"- a\n- b\n", "the top level must be a mapping, got list"),
        (b"name: [unclosed\n", "is not valid YAML: line 2, column 1"),
        (b"\t name: tab\n", "is not valid YAML: line 1"),
    ],
    ids=["png", "latin-1", "empty", "comment-only", "list", "unclosed", "tab"],
)
def test_files_that_are_not_configs_are_named(tmp_path, capsys, content, expected):
    path = write(tmp_path, content)
    message, seconds, _ = dry_run(capsys, path)
    assert message.startswith(f"error: config file {path}") and expected in message
    assert "codec can't decode" not in message and seconds < 1


def test_a_github_actions_workflow_is_not_a_dckd_config(tmp_path, capsys):
    workflow = "name: CI\non:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    path = write(tmp_path, workflow, "ci.yml")
    message, _, _ = dry_run(capsys, path)
    assert message.startswith(f"error: {path} is not a dckd config: its top-level keys ('name', True, 'jobs')")
    assert "True: unknown option" not in message


def test_a_typo_in_a_top_level_key_still_gets_did_you_mean(tmp_path, valid, capsys):
    valid["trian"] = valid.pop("train")
    message, _, _ = dry_run(capsys, write(tmp_path, yaml.safe_dump(valid)))
    assert "trian: unknown option (did you mean 'train'?)" in message


def test_a_folder_a_missing_file_and_a_device_are_named(tmp_path, capsys):
    message, _, _ = dry_run(capsys, tmp_path)
    assert f"config file {tmp_path} is a folder" in message
    message, _, _ = dry_run(capsys, tmp_path / "missing.yaml")
    assert f"config file {tmp_path / 'missing.yaml'} does not exist" in message
    message, seconds, _ = dry_run(capsys, Path("/dev/zero"))
    assert "config file /dev/zero is not a regular file" in message and seconds < 1


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path, valid, capsys):
    text = yaml.safe_dump(valid) + "#" + "x" * MAX_CONFIG_BYTES + "\n"
    path = write(tmp_path, text)
    message, seconds, peak = dry_run(capsys, path)
    assert f"config file {path} is {path.stat().st_size} bytes" in message
    assert seconds < 1 and peak < 10 * 2**20


def test_a_large_config_just_under_the_limit_parses_within_a_second(tmp_path, valid, capsys):
    padding = "".join(f"# comment line {index} " + "x" * 40 + "\n" for index in range(500))
    filler = "student:\n  backbone: edsr\n  options:\n" + "".join(f"    key{index}: {index}\n" for index in range(1500))
    text = yaml.safe_dump({key: value for key, value in valid.items() if key != "student"}) + filler + padding
    assert len(text) < MAX_CONFIG_BYTES
    path = write(tmp_path, text)
    started = time.monotonic()
    rc = main(["train", str(path), "--dry-run"])
    seconds = time.monotonic() - started
    assert rc == 0, capsys.readouterr().err  # options are checked against the constructor when it is built
    assert seconds < 1.5


def test_deep_nesting_is_refused(tmp_path, valid, capsys):
    for depth in (40, 30000):
        path = write(tmp_path, yaml.safe_dump(valid) + "deep: " + "[" * depth + "]" * depth + "\n")
        message, seconds, _ = dry_run(capsys, path)
        assert f"config file {path}: line" in message and "nested more than 32 levels" in message
        assert seconds < 1


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path, valid, capsys):
    text = yaml.safe_dump(valid) + "name: second\n"
    path = write(tmp_path, text)
    message, _, _ = dry_run(capsys, path)
    first = 1 + text.splitlines().index(f"name: {valid['name']}")
    assert f"config file {path}: line {len(text.splitlines())}: key 'name' appears twice (first on line {first})" in (
        message
    )


def test_non_string_keys_are_named(tmp_path, valid, capsys):
    valid["train"][True] = 1
    path = write(tmp_path, yaml.safe_dump(valid))
    message, _, _ = dry_run(capsys, path)
    assert f"{path}: train: key True is a bool, not an option name" in message
    valid["train"].pop(True)
    valid["student"]["options"][3] = "x"
    message, _, _ = dry_run(capsys, write(tmp_path, yaml.safe_dump(valid)))
    assert "student.options key: expected a string, got 3" in message


def test_every_config_error_names_the_file(tmp_path, valid, capsys):
    valid["train"]["total_iters"] = "many"
    path = write(tmp_path, yaml.safe_dump(valid))
    message, _, _ = dry_run(capsys, path)
    assert message.startswith(f"error: {path}: train.total_iters: expected an integer")
