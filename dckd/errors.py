"""Every error dckd raises for the user, in one place.

``DckdError`` and its subclasses carry a message written for a person: it names the file, option or value
and says what was expected. The command line prints it as one ``error: ...`` paragraph and exits with
status 2 (3 for ``NonFiniteLossError``); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class DckdError(Exception):
    """A problem with the user's files, options or data (not a bug in dckd)."""


class ConfigError(DckdError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class CheckpointError(DckdError, ValueError):
    """A checkpoint cannot be read, or does not fit the network it is loaded into."""


class DatasetError(DckdError):
    """A problem with the data on disk, with a message written for the user (no traceback needed)."""


class ImageReadError(DatasetError):
    """An image that cannot be read; ``str(error)`` names the file and the reason.

    ``ImageReadError(path, reason)`` is the normal form. With a single argument the argument is the whole
    message: this is how ``torch.utils.data.DataLoader`` re-raises an error from a worker process (and
    how pickling restores it), and the message still names the file.
    """

    def __init__(self, path: str | os.PathLike, reason: str | None = None):
        if reason is None:
            message = str(path)
            self.path: Path | None = None
        else:
            self.path = Path(path)
            message = f"cannot read image '{path}': {reason}"
        self.reason = reason
        super().__init__(message)


class NetworkOutputError(DckdError):
    """A network's output is not an image of the expected scale (never cropped silently)."""


class OutputError(DckdError):
    """A result cannot be written where asked (it would replace a file, collide with another result, leave the
    output folder, or the disk refused it); the message names the path and what to do."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickled file asks to import or call something that can run code (raised while unpickling)."""


class ExportError(DckdError):
    """A network cannot be exported, or the exported file does not reproduce it (``dckd export``)."""


class NonFiniteLossError(DckdError, RuntimeError):
    """Too many consecutive non-finite losses (or none finite at all); the diverged state is not kept, the newest
    good checkpoint is named."""


class RunFolderBusyError(DckdError):
    """Another process holds the run folder's lock (``dckd.engine.run_folder``): one run per folder."""


class RunFolderWriteError(DckdError):
    """The run folder cannot be written (read-only, disk full, a file where a folder should be); the message
    names the path and says what to do. The previous checkpoint is left intact."""
