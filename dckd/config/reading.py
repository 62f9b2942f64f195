"""Reading any config file a user may give ``dckd``: a dckd config, or a published BasicSR options file
(a training file for ``dckd train``, a test file for ``dckd test``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from dckd.config.loading import read_yaml
from dckd.config.published import CHECKPOINT_KEYS, convert_published_options, is_published_options
from dckd.config.published_test import TestOptions, convert_published_test_options
from dckd.config.schema import Config, config_from_dict
from dckd.errors import ConfigError
from dckd.files.paths import resolve_path

ROLES = {"student": "student's initial weights", "teacher": "teacher", "vqgan": "VQGAN"}


def print_note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def read_config(
    path: str | Path,
    overrides: list[str] | None = None,
    note: Callable[[str], None] = print_note,
    check_files: bool = False,
) -> Config:
    """The validated ``Config`` of ``path``: a dckd config, or a training options file of the published code,
    converted (``dckd.config.published``) with a ``note(text)`` (default: printed to stderr) for every key it
    does not use as written and every fact worth knowing. ``--set`` overrides apply after the conversion.

    ``check_files``: stop now, naming the option (or the published key it came from), when a checkpoint the
    config names does not exist (``dckd train`` checks before it builds anything; ``--dry-run`` does not)."""
    raw = read_yaml(path)
    origins: dict[str, tuple[str, str | None]] = {}
    if is_published_options(raw):
        converted, notes = convert_published_options(raw, source=str(path))
        for text in notes:
            note(text)
        # Recorded before the overrides apply (they edit the nested mappings in place).
        for section, key in CHECKPOINT_KEYS.items():
            origins[section] = (key, (converted.get(section) or {}).get("checkpoint"))
        config = config_from_dict(converted, overrides, source=str(path))
    else:
        config = config_from_dict(raw, overrides, source=str(path))
    if check_files:
        check_checkpoints(config, origins)
    return config


def check_checkpoints(config: Config, origins: dict[str, tuple[str, str | None]] | None = None) -> None:
    """``ConfigError`` for the first checkpoint of the config (student, teacher, VQGAN, when the method uses
    it) that does not exist, naming its role and its option: ``origins[section] = (published key, value)``
    names the published key instead while the value is still the one that key gave."""
    needs = config.needs
    used = {"student": True, "teacher": needs.teacher, "vqgan": needs.vqgan}
    for section, role in ROLES.items():
        spec = getattr(config, section)
        if not used[section] or spec is None or not spec.checkpoint:
            continue
        key, value = (origins or {}).get(section, (None, None))
        option = key if key is not None and value == spec.checkpoint else f"{section}.checkpoint"
        resolved = resolve_path(spec.checkpoint)
        if not resolved.is_file():
            where = (
                "" if resolved.is_absolute() else f" (relative paths are read from the working directory {Path.cwd()})"
            )
            raise ConfigError(
                f"{role} checkpoint ({option}) {spec.checkpoint} does not exist{where}; put the file there or "
                f"point to it with --set {section}.checkpoint=PATH"
            )


def read_test_options(path: str | Path, note: Callable[[str], None] = print_note) -> TestOptions:
    """What a BasicSR test options file (``test_SwinIR.yml``) asks ``dckd test`` to evaluate; its checkpoint must
    exist (an error names ``path.pretrain_network_g``)."""
    options, notes = convert_published_test_options(read_yaml(path), source=str(path))
    for text in notes:
        note(text)
    resolved = resolve_path(options.network.checkpoint)
    if not resolved.is_file():
        where = "" if resolved.is_absolute() else f" (relative paths are read from the working directory {Path.cwd()})"
        raise ConfigError(
            f"network checkpoint (path.pretrain_network_g) {options.network.checkpoint} does not exist{where}"
        )
    return options
