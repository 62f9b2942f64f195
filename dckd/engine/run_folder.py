"""One run per folder, and run-folder writes that fail with one line instead of a traceback.

A run holds an exclusive ``fcntl.flock`` on ``<run folder>/.lock`` from the moment it decides to use the
folder until it ends. The lock file records the holder's PID and host, so a second ``dckd train`` on the
same folder stops at once naming the holder. The kernel releases a flock when its process dies, also by
SIGKILL: a lock file left behind by a killed run is stale (its flock is free) and is taken over with a note,
so a killed run resumes with the same command and no manual cleanup.

Under ``torchrun`` only rank 0 takes the lock and writes to the run folder (the engine broadcasts the
outcome, so the other ranks stop with it instead of waiting in a collective). In one process the lock is
re-entrant: ``dckd train-codebook`` holds it around the engine's ``train``, which takes it again.

Limit: on network file systems ``flock`` is as good as the file system's lock support (NFS: yes; some
cluster file systems only lock per machine unless mounted with their flock option).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from dckd.errors import RunFolderBusyError, RunFolderWriteError

LOCK_NAME = ".lock"

_held: dict[str, tuple[int, int]] = {}
"""Locks held by this process: resolved run folder -> (lock file descriptor, how many holders)."""


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _describe(holder: str) -> str:
    fields = dict(part.split("=", 1) for part in holder.split() if "=" in part)
    if "pid" in fields:
        return f"process {fields['pid']} on host {fields.get('host', '?')}"
    return "another process"


class RunFolderLock:
    """The exclusive lock of one run folder (see the module docstring). ``acquire`` returns a note to show
    (a stale lock taken over) or None; it raises ``RunFolderBusyError`` naming the holder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.acquired = False

    def _key(self) -> str:
        return str(self.run_dir.resolve())

    def acquire(self) -> str | None:
        if self.acquired:
            return None
        key = self._key()
        if key in _held:  # this process already holds it (train-codebook around train)
            descriptor, count = _held[key]
            _held[key] = (descriptor, count + 1)
            self.acquired = True
            return None
        note = None
        for _ in range(10):  # the file may be replaced between open and flock by a holder that releases
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise write_error(error, self.path) from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(descriptor)
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                    raise write_error(error, self.path) from None
                holder = _holder(self.path)
                raise RunFolderBusyError(
                    f"run folder {self.run_dir} is in use by {_describe(holder)} (lock {self.path}: {holder}); "
                    "wait for that run to end or stop it, or give this run another name (--set name=...)"
                ) from None
            try:
                same_file = os.fstat(descriptor).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous holder removed the file after we opened it: try again
                os.close(descriptor)
                continue
            previous = _holder(self.path)
            if previous:
                note = (
                    f"note: took over the lock of {_describe(previous)}, which ended without releasing it "
                    "(killed?); resuming its run folder"
                )
            record = f"pid={os.getpid()} host={socket.gethostname()}\n".encode()
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, record, 0)
            except OSError as error:
                os.close(descriptor)
                raise write_error(error, self.path) from None
            _held[key] = (descriptor, 1)
            self.acquired = True
            return note
        raise RunFolderBusyError(
            f"run folder {self.run_dir}: its lock {self.path} keeps changing; is another run starting?"
        )

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        key = self._key()
        descriptor, count = _held[key]
        if count > 1:
            _held[key] = (descriptor, count - 1)
            return
        del _held[key]
        # While still locked: the next run finds no stale record (in a read-only folder the record stays, and
        # the next run takes it over as stale).
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        os.close(descriptor)

    def __enter__(self) -> RunFolderLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


_ADVICE = {
    errno.ENOSPC: "free disk space",
    errno.EDQUOT: "free space within your disk quota",
    errno.EFBIG: "the file size limit was reached (ulimit -f): raise it or free space",
    errno.EROFS: "the file system is read-only: choose another output_dir",
    errno.EACCES: "make it writable for you, or choose another output_dir",
    errno.EPERM: "make it writable for you, or choose another output_dir",
    errno.ENOTDIR: "a file stands where a folder is needed: move it, or choose another output_dir or name",
    errno.EEXIST: "a file stands where a folder is needed: move it, or choose another output_dir or name",
    errno.EISDIR: "a folder stands where a file is needed: move it",
}


def write_error(error: OSError, path: Path | str) -> RunFolderWriteError:
    """One line for an ``OSError`` while writing ``path``: the path, the reason and what to do."""
    named = getattr(error, "filename", None)
    # A temporary file beside the target (atomic writes) is named by its target.
    where = named if named and Path(named).parent != Path(path).parent else path
    reason = error.strerror or str(error)
    advice = _ADVICE.get(error.errno, "fix the cause and run the same command to resume")
    return RunFolderWriteError(f"cannot write {where}: {reason}; {advice}")


def check_writable(run_dir: Path) -> None:
    """Fail now, before any work, when ``run_dir`` cannot become a writable folder: a file stands on its path,
    or the folder (or its nearest existing parent) is not writable."""
    run_dir = Path(run_dir)
    for folder in [run_dir, *run_dir.parents]:
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                kind = "a broken link" if not folder.exists() else "a file"
                raise RunFolderWriteError(
                    f"cannot create the run folder {run_dir}: {folder} is {kind}, not a folder; move it, or choose "
                    "another output_dir or name"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise RunFolderWriteError(
                    f"cannot write the run folder {run_dir}: {folder} is not writable; make it writable for you, "
                    "or choose another output_dir"
                )
            return
