"""Reading any config file a user may give ``dckd train``: a dckd config, or a published BasicSR options file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from dckd.config.loading import read_yaml
from dckd.config.published import convert_published_options, is_published_options
from dckd.config.schema import Config, config_from_dict


def print_note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def read_config(
    path: str | Path, overrides: list[str] | None = None, note: Callable[[str], None] = print_note
) -> Config:
    """The validated ``Config`` of ``path``: a dckd config, or an options file of the published code, converted
    (``dckd.config.published``) with a ``note(text)`` (default: printed to stderr) for every key it does not
    use as written and every fact worth knowing."""
    raw = read_yaml(path)
    if is_published_options(raw):
        converted, notes = convert_published_options(raw, source=str(path))
        for text in notes:
            note(text)
        return config_from_dict(converted, overrides, source=str(path))
    return config_from_dict(raw, overrides, source=str(path))
