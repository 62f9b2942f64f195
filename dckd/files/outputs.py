"""Where results go: every output path of a command is planned and checked before any work, and written safely.

Every command that writes results (``dckd infer``, ``dckd test --json/--csv/--save-images``) goes through one
``OutputPlan``:

1. ``protect(paths, role)``: files that must never be written (the weights, every input image);
2. ``folder(out, inputs=...)``: an output folder; the input folder itself is refused (``dckd infer IN IN``);
3. ``file(path, origin, root)``: each result, with what it comes from;
4. ``check()``: all problems at once, before any work: two results with one name (``photo.jpg`` and
   ``photo.png`` both give ``photo.png``; names equal after Unicode NFC normalisation or case folding collide
   too, as they do on macOS and Windows file systems), a result that would replace an input or the weights,
   an existing file (replaced only with ``--overwrite``), a folder where a file goes, a file where a folder
   goes, a symbolic link that would lead a result outside its output folder, a read-only folder;
5. ``write(path, write)``: an atomic write (temporary file, fsync, rename), which without ``--overwrite`` also
   refuses a file that appeared since the check. An ``OSError`` (disk full, a file-size limit, a read-only
   file system) becomes one ``OutputError`` line naming the path and what to do; nothing is half-written.
"""

from __future__ import annotations

import errno
import os
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from dckd.errors import OutputError
from dckd.files.weights import atomic_write

LISTED_PROBLEMS = 12
"""How many problems one error lists before summarising the rest as a count."""


def name_key(path: str | os.PathLike) -> str:
    """The form under which two names are the same file on some file system: NFC-normalised, case-folded."""
    return unicodedata.normalize("NFC", os.fspath(path)).casefold()


def _real(path: Path) -> Path:
    """``path`` with every existing symbolic link resolved (missing components are kept as written)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def write_error(path: Path, error: OSError) -> OutputError:
    """One line for an ``OSError`` while writing ``path``: what happened and what to do."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        advice = "the disk is full or a file-size limit was reached: free space or choose another output folder"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = "the folder cannot be written (read-only or no permission): choose another output folder"
    elif error.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        advice = "a file or folder is in the way: choose another output path"
    else:
        advice = "check the output path"
    return OutputError(f"cannot write {path}: {reason}; {advice} (nothing was left half-written)")


@dataclass
class _Planned:
    path: Path
    origin: str
    root: Path | None


class OutputPlan:
    """All output paths of one command, checked together before any work (see the module docstring)."""

    def __init__(self, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self._protected: list[tuple[Path, str]] = []
        self._folders: list[tuple[Path, Path | None]] = []
        self._files: list[_Planned] = []
        self._checked = False

    # ---- planning
    def protect(self, paths: Iterable[str | os.PathLike], role: str) -> None:
        """Files no result may replace (``role``: "the weights file", "an input image", ...)."""
        self._protected.extend((Path(path), role) for path in paths)

    def folder(self, folder: str | os.PathLike, inputs: str | os.PathLike | None = None) -> Path:
        """An output folder; ``inputs``: the folder the inputs are read from, which it may not be."""
        folder = Path(folder)
        self._folders.append((folder, None if inputs is None else Path(inputs)))
        return folder

    def file(self, path: str | os.PathLike, origin: str, root: str | os.PathLike | None = None) -> Path:
        """A result at ``path`` made from ``origin`` (a name for messages); ``root``: the output folder it must
        stay inside (through symbolic links too)."""
        planned = _Planned(Path(path), origin, None if root is None else Path(root))
        self._files.append(planned)
        return planned.path

    # ---- checking
    def check(self) -> None:
        """Raise one ``OutputError`` listing every problem; nothing has been written at this point."""
        folders: dict[Path, list[str]] = {}  # nearest existing ancestor -> its problems (reported once)
        problems = self._folder_problems(folders) + self._file_problems(folders)
        if problems:
            shown = problems[:LISTED_PROBLEMS]
            more = len(problems) - len(shown)
            raise OutputError(
                f"{len(problems)} problem(s) with the output paths; nothing was written:\n  "
                + "\n  ".join(shown)
                + (f"\n  ... and {more} more" if more else "")
            )
        self._checked = True

    def _folder_problems(self, folders: dict[Path, list[str]]) -> list[str]:
        problems = []
        for folder, inputs in self._folders:
            if inputs is not None and _real(folder) == _real(inputs):
                problems.append(
                    f"the output folder {folder} is the input folder: results would replace or mix with the "
                    f"inputs; choose another folder (e.g. {Path(os.path.abspath(folder)).name}_restored)"
                )
            problems += self._writable_problems(folder, folders)
        return problems

    @staticmethod
    def _writable_problems(folder: Path, folders: dict[Path, list[str]]) -> list[str]:
        """A file where the folder (or one of its parents) should be; a read-only existing ancestor. Each
        ancestor is examined once: later folders under a bad one add no problem (``folders`` remembers)."""
        existing = folder
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        if existing in folders:
            return []
        problems = []
        if os.path.lexists(existing) and not existing.is_dir():
            what = "the output folder" if existing == folder else f"a parent of {folder}"
            problems.append(f"{existing} is a file, not a folder ({what}); choose another output path")
        elif existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"{existing} is read-only (no permission to write); choose another output folder")
        folders[existing] = problems
        return problems

    def _file_problems(self, folders: dict[Path, list[str]]) -> list[str]:
        problems: list[str] = []
        protected = {}
        for path, role in self._protected:
            protected.setdefault(name_key(_real(path)), (path, role))
        first_by_key: dict[str, _Planned] = {}
        listings: dict[Path, dict[str, str]] = {}
        for planned in self._files:
            path, real = planned.path, _real(planned.path)
            key = name_key(real)
            other = first_by_key.get(key)
            if other is not None:
                same = "" if other.path == path else f" (the same name on macOS/Windows file systems as {other.path})"
                problems.append(
                    f"{other.origin} and {planned.origin} would both be written to {path}{same}; one result would "
                    "be lost: rename one of them or write them to separate folders"
                )
                continue
            first_by_key[key] = planned
            if key in protected:
                original, role = protected[key]
                problems.append(f"{path} would replace {role} {original}; choose another output path")
                continue
            hit = self._protected_samefile(path)
            if hit is not None:
                problems.append(f"{path} is {hit[1]} {hit[0]} (the same file); choose another output path")
                continue
            if planned.root is not None and not _inside(_real(path.parent), _real(planned.root)):
                problems.append(
                    f"{path.parent} leads outside the output folder {planned.root} (a symbolic link to "
                    f"{_real(path.parent)}); dckd does not write through it: remove the link or choose another folder"
                )
                continue
            problems += self._writable_problems(path.parent, folders) + self._existing_problems(path, listings)
        return problems

    def _protected_samefile(self, path: Path) -> tuple[Path, str] | None:
        if not path.exists():
            return None
        for original, role in self._protected:
            try:
                if original.exists() and os.path.samefile(path, original):
                    return original, role
            except OSError:
                continue
        return None

    def _existing_problems(self, path: Path, listings: dict[Path, dict[str, str]]) -> list[str]:
        parent = path.parent
        if parent.is_dir() and parent not in listings:
            try:
                listings[parent] = {name_key(entry.name): entry.name for entry in os.scandir(parent)}
            except OSError as error:
                return [f"cannot list {parent} ({error.strerror or error})"]
        stored = listings.get(parent, {}).get(name_key(path.name))
        if stored is None:
            return []
        existing = parent / stored
        if existing.is_dir() and not existing.is_symlink():
            return [f"{existing} is a folder; a result cannot replace it: choose another output folder"]
        if self.overwrite:
            return []
        also = "" if stored == path.name else f" (as {stored}: the same name on macOS/Windows file systems)"
        return [f"{path} exists{also}; pass --overwrite to replace it, or choose another output folder"]

    # ---- writing
    def write(self, path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
        """Write one planned result atomically through ``write(temporary_path)``; see the module docstring."""
        path = Path(path)
        if not self._checked:
            raise RuntimeError("OutputPlan.write before check()")
        planned = next((item for item in self._files if item.path == path), None)
        if planned is None:
            raise RuntimeError(f"{path} was not planned")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(path.parent, error) from None
        if planned.root is not None and not _inside(_real(path.parent), _real(planned.root)):
            raise OutputError(f"{path.parent} now leads outside the output folder {planned.root}; nothing written")
        try:
            atomic_write(path, write, overwrite=self.overwrite)
        except FileExistsError:
            raise OutputError(
                f"{path} appeared while dckd was working and was kept; pass --overwrite to replace it"
            ) from None
        except OSError as error:
            raise write_error(path, error) from None
        return path
