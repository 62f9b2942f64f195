"""The README's commands: the quick start has exactly the two promised commands, and every `dckd` command
it shows parses with the real command-line parser and names files that ship (the demo itself runs in
test_demo.py, the dry run here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from dckd.apps.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [
        [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]
        for block in blocks
    ]


def dckd_arguments(line: str) -> list[str]:
    words = shlex.split(line.split("&&")[-1])
    start = max(index for index, word in enumerate(words) if word.endswith("dckd"))
    return words[start + 1 :]


def test_quick_start_is_the_demo_and_the_test_suite() -> None:
    quick_start = bash_blocks()[0]
    assert len(quick_start) == 2
    assert dckd_arguments(quick_start[0]) == ["demo"]
    assert quick_start[1] == "bash .ci/run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci and "set -euo pipefail" in ci


COMMANDS = [line for block in bash_blocks()[1:] for line in block if re.search(r"(^|\s)(-m )?dckd\s", line)]


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("line", COMMANDS)
def test_every_readme_command_parses_and_its_config_ships(line: str) -> None:
    arguments = dckd_arguments(line)
    build_parser().parse_args(arguments)  # an unknown option or command exits (SystemExit fails the test)
    for word in arguments:
        if word.startswith("configs/"):
            assert (ROOT / word).is_file(), word


def test_the_dry_run_prints_the_resolved_config(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    line = next(line for line in COMMANDS if "--dry-run" in line)
    assert main(dckd_arguments(line)) == 0
    assert "method: dckd" in capsys.readouterr().out
