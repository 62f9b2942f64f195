"""Loading network weights safely and strictly; saving files atomically.

Loading never executes pickled code: ``.safetensors`` holds only tensors; ``.pth/.pt/.ckpt`` go through
``torch.load(weights_only=True)`` and, for Lightning checkpoints that also pickle callback classes and
hyper-parameter objects (taming's ``last.ckpt``), through ``dckd.files.safe_pickle``, which builds tensors and
plain containers and turns every other object into an inert placeholder without calling it.

Official checkpoints wrap their weights in different keys (BasicSR ``params_ema`` / ``params``, Lightning
``state_dict``, others ``model``) and DataParallel/DDP prefix every key with ``module.``; both are
unwrapped here. A checkpoint that does not match the architecture is an error that lists the missing,
unexpected and wrongly shaped keys; there is no partial loading.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from dckd.errors import CheckpointError
from dckd.files.paths import resolve_path
from dckd.files.safe_pickle import safe_torch_load

WRAPPER_KEYS = ("params_ema", "params", "ema", "student", "state_dict", "model", "net", "generator")
SUPPORTED_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".bin")


def read_checkpoint(path: str | Path) -> Any:
    """Read a checkpoint file without executing any pickled code (``dckd:...`` names a shipped file).

    Anything that is not a readable checkpoint file (a folder, a FIFO or device, a symlink loop, an empty
    file, text or an image with a ``.pth`` name, a truncated file) is a ``CheckpointError`` naming the path.
    """
    path = resolve_path(path)
    check_regular_file(path, "checkpoint")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise CheckpointError(
            f"checkpoint {path}: unsupported extension; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if path.suffix.lower() == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"checkpoint {path} is not a readable safetensors file: {error}") from None
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise CheckpointError(f"checkpoint {path} cannot be read ({error.strerror or error})") from None
    # torch.save writes a zip archive ("PK\x03\x04"); the legacy format and plain pickles (protocol >= 2)
    # start with the PROTO opcode 0x80.
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch checkpoint (it starts with {head!r}, not a zip archive or a "
            "pickle); give a file written by torch.save or a .safetensors file"
        )
    return safe_torch_load(path)


def check_regular_file(path: Path, role: str) -> None:
    """Raise ``CheckpointError`` unless ``path`` is an existing, readable, non-empty regular file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise CheckpointError(f"{role} {path} is a symbolic link to a missing file") from None
        raise CheckpointError(f"{role} {path} does not exist") from None
    except OSError as error:  # ELOOP (a symlink loop), EACCES on a parent folder, ENAMETOOLONG ...
        raise CheckpointError(f"{role} {path} cannot be opened ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise CheckpointError(f"{role} {path} is a folder, not a file; give the weights file inside it")
    if not stat.S_ISREG(status.st_mode):
        raise CheckpointError(f"{role} {path} is not a regular file (a pipe, socket or device)")
    if status.st_size == 0:
        raise CheckpointError(f"{role} {path} is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{role} {path} cannot be read (permission denied)")


def extract_state_dict(checkpoint: Any, key: str | None = None, source: str = "checkpoint") -> tuple[dict, str | None]:
    """Return (state_dict, wrapper key used) from a possibly wrapped checkpoint; strip ``module.`` prefixes."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a mapping of weights, got {type(checkpoint).__name__}")
    used = None
    if key is not None:
        if key not in checkpoint:
            raise CheckpointError(
                f"{source}: no entry {key!r}; top-level entries: {', '.join(map(str, list(checkpoint)[:20]))}"
            )
        checkpoint, used = checkpoint[key], key
    elif not _is_state_dict(checkpoint):
        for candidate in WRAPPER_KEYS:
            if candidate in checkpoint and isinstance(checkpoint[candidate], Mapping):
                checkpoint, used = checkpoint[candidate], candidate
                break
        else:
            raise CheckpointError(
                f"{source}: found no weights; expected a state_dict or one of the entries {', '.join(WRAPPER_KEYS)}, "
                f"top-level entries are: {', '.join(map(str, list(checkpoint)[:20]))}"
            )
    state_dict = {}
    for name, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {name!r} is a {type(value).__name__}, not a tensor")
        if value.is_meta or value.layout != torch.strided or value.is_quantized:
            raise CheckpointError(
                f"{source}: entry {name!r} is a {value.layout} / {'meta' if value.is_meta else value.dtype} tensor; "
                "weights must be ordinary dense tensors"
            )
        if not isinstance(name, str):
            raise CheckpointError(f"{source}: a weight is named {name!r}, not a string")
        while name.startswith("module."):
            name = name[len("module.") :]
        state_dict[name] = value
    return state_dict, used


def _is_state_dict(mapping: Mapping) -> bool:
    return len(mapping) > 0 and all(isinstance(value, torch.Tensor) for value in mapping.values())


def _key_report(title: str, keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
    return f"\n  {title} ({len(keys)}): {shown}"


def tensor_kind(tensor: torch.Tensor) -> str:
    """``floating``, ``complex``, ``bool`` or ``integer``: what a value means, whatever its precision."""
    if tensor.dtype.is_floating_point:
        return "floating"
    if tensor.dtype.is_complex:
        return "complex"
    return "bool" if tensor.dtype == torch.bool else "integer"


def tensor_kind_mismatches(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> list[str]:
    """``key (found dtype, expected <kind>)`` for every shared key whose values are of another kind: uint8 /
    int32 / bool tensors where float weights belong would be cast silently by ``load_state_dict``."""
    return [
        f"{key} ({found[key].dtype}, expected {tensor_kind(value)} like {value.dtype})"
        for key, value in expected.items()
        if key in found and isinstance(found[key], torch.Tensor) and tensor_kind(found[key]) != tensor_kind(value)
    ]


def check_state_dict_fits(
    expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor], description: str, network_name: str
) -> None:
    """Raise ``CheckpointError`` listing every missing, unexpected, wrongly shaped or wrongly typed key.

    ``expected`` may be the state_dict of a network built on the meta device (shapes and dtypes only), so a
    checkpoint is compared with its architecture before any memory is allocated for the network.
    """
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state_dict[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(value.shape)
    ]
    wrong_kind = tensor_kind_mismatches(expected, state_dict)
    if missing or unexpected or wrong_shape or wrong_kind:
        message = f"{description} does not match the network {network_name}"
        if missing:
            message += _key_report("missing keys", missing)
        if unexpected:
            message += _key_report("unexpected keys", unexpected)
        if wrong_shape:
            message += _key_report("wrong shapes (checkpoint != network)", wrong_shape)
        if wrong_kind:
            message += _key_report("wrong value types, never cast silently", wrong_kind)
        raise CheckpointError(message)


def load_state_dict_strict(network: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], description: str) -> None:
    """Copy ``state_dict`` into ``network``; any missing, unexpected, wrongly shaped or typed key is an error."""
    check_state_dict_fits(network.state_dict(), state_dict, description, type(network).__name__)
    network.load_state_dict(dict(state_dict), strict=True)


def load_network_weights(
    network: torch.nn.Module,
    path: str | Path,
    key: str | None = None,
    convert: Callable[[dict], dict] | None = None,
    architecture: str = "",
) -> str | None:
    """Load a checkpoint file into ``network`` strictly; return the wrapper key it came from.

    ``convert`` maps an alternative official key layout to ours (e.g. EDSR-PyTorch RCAN names); it must
    return the state_dict unchanged when it is already in our layout.
    """
    state_dict, used = extract_state_dict(read_checkpoint(path), key, source=f"checkpoint {path}")
    if convert is not None:
        state_dict = convert(state_dict)
    where = f"checkpoint {path}" + (f" (entry {used!r})" if used else "")
    load_state_dict_strict(network, state_dict, f"{where}{' for ' + architecture if architecture else ''}")
    return used


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(
    path: str | Path, write: Callable[[Path], None], overwrite: bool = True, temporary_suffix: str = ".tmp"
) -> Path:
    """Call ``write(temporary_path)`` then rename onto ``path``: readers see the old file or the whole new one.

    An exception from ``write`` (a failed check of what it wrote, too) removes the temporary file and leaves
    ``path`` as it was. ``overwrite=False`` publishes with a hard link instead of a rename, which fails with
    ``FileExistsError`` when ``path`` exists (also one created meanwhile): an existing file is never replaced.
    On a file system without hard links the existence check and the rename are two steps.
    ``temporary_suffix`` ends the temporary file's name (for readers that go by the ending).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=temporary_suffix, dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        write(temporary_path)
        with open(temporary_path, "rb") as stream:
            os.fsync(stream.fileno())
        # mkstemp creates 0600 files; give the result the permissions a plain open() would (umask applied).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary_path, 0o666 & ~umask)
        if overwrite:
            os.replace(temporary_path, path)
        else:
            _publish_without_replacing(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return path


def _publish_without_replacing(temporary: Path, path: Path) -> None:
    try:
        os.link(temporary, path)  # atomic, and fails when path exists
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(temporary, path)
        return
    temporary.unlink()


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and an atomic rename."""
    return atomic_write(path, lambda temporary: torch.save(obj, temporary))


def read_safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty when it has none), without reading its tensors."""
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is not a readable safetensors file: {error}") from None


def save_safetensors_atomic(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
    return atomic_write(path, lambda temporary: save_file(contiguous, str(temporary), metadata=metadata))
