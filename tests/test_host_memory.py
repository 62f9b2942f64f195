"""train.keep_freed_host_memory: glibc's malloc thresholds, an error where it cannot work, results unchanged."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch
from conftest import tiny_run_config

from dckd.config.schema import config_from_dict
from dckd.engine import host_memory
from dckd.engine.loop import train
from dckd.errors import ConfigError

GLIBC = platform.libc_ver()[0] == "glibc"


def test_the_option_is_off_by_default_and_validated_as_a_bool(tmp_path: Path, image_folder: Path) -> None:
    assert config_from_dict(tiny_run_config(tmp_path, image_folder)).train.keep_freed_host_memory is False
    raw = tiny_run_config(tmp_path, image_folder)
    raw["train"]["keep_freed_host_memory"] = "yes"
    with pytest.raises(ConfigError, match="keep_freed_host_memory"):
        config_from_dict(raw)


def test_without_glibc_it_is_an_error_naming_the_option_and_the_library(monkeypatch) -> None:
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("", ""))
    assert not host_memory.available()
    with pytest.raises(ConfigError, match=r"keep_freed_host_memory: true needs Linux with glibc.*unknown.*false"):
        host_memory.keep_freed_host_memory()


def test_a_refused_value_is_an_error_not_ignored(monkeypatch) -> None:
    class Library:  # a C library whose mallopt refuses every value (glibc 2.36 accepts any; older ones cap it)
        def __init__(self, name) -> None:
            self.mallopt = lambda parameter, value: 0

    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("glibc", "2.17"))
    monkeypatch.setattr(host_memory.ctypes, "CDLL", Library)
    with pytest.raises(ConfigError, match="refused M_MMAP_THRESHOLD = 33554432"):
        host_memory.keep_freed_host_memory()


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_a_run_with_it_ends_with_the_same_weights_as_one_without(tmp_path: Path, image_folder: Path) -> None:
    # The run without comes first: once set, the thresholds stay for the rest of the process.
    weights = []
    for name, keep in (("without", False), ("with", True)):
        raw = tiny_run_config(tmp_path, image_folder, name=name)
        raw["train"]["keep_freed_host_memory"] = keep
        run_dir = train(config_from_dict(raw))
        weights.append(torch.load(run_dir / "weights.pth", weights_only=True)["params"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
