"""Test helpers: snapshots of a folder tree, to assert that nothing outside an output folder changed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def snapshot(root: Path, exclude: tuple[Path, ...] = ()) -> dict[str, str]:
    """{relative path: content digest, or the link target for symbolic links} of everything under ``root``
    (folders included, so a created or removed folder shows), skipping the trees in ``exclude``."""
    excluded = [Path(os.path.abspath(path)) for path in exclude]
    state: dict[str, str] = {}
    for folder, folders, files in os.walk(root, followlinks=False):
        here = Path(os.path.abspath(folder))
        if any(here == path or path in here.parents for path in excluded):
            folders[:] = []
            continue
        for name in folders + files:
            path = here / name
            if any(path == excluded_path for excluded_path in excluded):
                continue
            relative = str(path.relative_to(Path(os.path.abspath(root))))
            if path.is_symlink():
                state[relative] = "link -> " + os.readlink(path)
            elif path.is_dir():
                state[relative] = "folder"
            elif path.is_file():
                state[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[relative] = "special"
    return state
