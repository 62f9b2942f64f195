"""Training checkpoints: written atomically, verified by checksum, the last K kept, corrupt ones skipped.

Layout of a run folder::

    runs/<name>/config.yaml                  the resolved config
    runs/<name>/log.jsonl                    training and validation records
    runs/<name>/checkpoints/iter_00005000.pth       full training state (see ``training_state``)
    runs/<name>/checkpoints/iter_00005000.pth.sha256
    runs/<name>/weights.pth                  final weights: {"params": student, "params_ema": EMA, "network": spec}

A checkpoint file is written to a temporary name and renamed, so a kill leaves either the previous
file or the complete new one; the SHA-256 sidecar is written after it. On resume the newest checkpoint
whose checksum matches and which loads is used; a truncated or corrupt one is reported and skipped.
Everything in a checkpoint is tensors and plain Python values, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from dckd.config.loading import load_yaml_text
from dckd.errors import CheckpointError, ConfigError
from dckd.files.weights import atomic_write, file_sha256, read_checkpoint, read_safetensors_metadata

CHECKPOINT_FORMAT = "dckd-training-checkpoint"
WEIGHTS_FORMAT = "dckd-weights"
_NAME = re.compile(r"^iter_(\d{8,})\.pth$")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in the run folder, newest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir() if (match := _NAME.match(path.name))]
    return sorted(found, reverse=True)


class _RecordingWriter:
    """A file for ``torch.save`` that keeps the ``OSError`` of a failed write: torch reports it only as
    "unexpected pos ...", which says neither the file nor the reason (disk full, file size limit)."""

    def __init__(self, handle) -> None:
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.handle.flush()


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as handle:
        writer = _RecordingWriter(handle)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


def save_checkpoint(
    state: dict[str, Any], run_dir: Path, iteration: int, keep: int, protect: int | None = None
) -> Path:
    """Write ``state`` atomically with its checksum, then delete all but the newest ``keep`` checkpoints and
    the one of iteration ``protect`` (the newest known good one, kept until a newer one is known good).

    A failed write (disk full, read-only folder) raises ``OSError`` and leaves the previous checkpoints as
    they were."""
    path = checkpoint_dir(run_dir) / f"iter_{iteration:08d}.pth"
    atomic_write(path, lambda temporary: _torch_save({"format": CHECKPOINT_FORMAT, **state}, temporary))
    digest = file_sha256(path)
    atomic_write(path.with_name(path.name + ".sha256"), lambda temporary: temporary.write_text(digest + "\n"))
    for old_iteration, old in list_checkpoints(run_dir)[keep:]:
        if old_iteration != protect:
            remove_checkpoint(old)
    return path


def remove_checkpoint(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def run_identity(method: str, student: dict, teacher: dict | None, scale: int) -> dict[str, Any]:
    """What makes a checkpoint belong to a run: the method, the student's and teacher's architectures
    (``{"backbone", "options"}``) and the scale. Stored in every checkpoint, compared on resume."""

    def architecture(record: dict | None) -> dict | None:
        return None if record is None else {"backbone": record["backbone"], "options": record["options"]}

    return {"method": method, "student": architecture(student), "teacher": architecture(teacher), "scale": scale}


def _stored_identity(state: dict[str, Any]) -> dict[str, Any]:
    """The identity a checkpoint records; checkpoints of dckd 0.1 have none, and give what their saved config
    text and network record say (the method, the scale, the student)."""
    if isinstance(state.get("identity"), dict):
        return state["identity"]
    identity: dict[str, Any] = {}
    if isinstance(state.get("network"), dict):
        identity["student"] = {key: state["network"].get(key) for key in ("backbone", "options")}
    if isinstance(state.get("config"), str):
        try:
            config = load_yaml_text(state["config"], "the checkpoint's config")
        except ConfigError:
            config = None
        if isinstance(config, dict):
            if isinstance(config.get("method"), str):
                identity["method"] = config["method"]
            if isinstance(config.get("data"), dict) and isinstance(config["data"].get("scale"), int):
                identity["scale"] = config["data"]["scale"]
    return identity


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (a record read back from YAML has lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def check_identity(path: Path, state: dict[str, Any], identity: dict[str, Any]) -> None:
    """Raise ``CheckpointError`` when the checkpoint at ``path`` belongs to another run than ``identity``
    (another method, student, teacher or scale), naming both."""
    stored = _stored_identity(state)
    labels = {"method": "method", "student": "student", "teacher": "teacher", "scale": "scale"}
    for key, label in labels.items():
        if key in stored and _plain(stored[key]) != _plain(identity.get(key)):
            raise CheckpointError(
                f"checkpoint {path} does not fit this run's configuration: it was written with {label} "
                f"{_show(stored[key])}, this config has {label} {_show(identity.get(key))}. Resuming would mix "
                "two runs: give this run another name (--set name=...), or start from its weights with "
                f"student.checkpoint: {path}"
            )


def _show(value: Any) -> str:
    if isinstance(value, dict) and "backbone" in value:
        return f"{value['backbone']} {_plain(value.get('options'))}"
    return repr(value)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one training checkpoint, verifying its checksum when the sidecar exists."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().strip()
        if expected and file_sha256(path) != expected:
            raise CheckpointError(f"checkpoint {path} does not match its checksum (truncated or modified)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} cannot be read: {type(error).__name__}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a dckd training checkpoint (no format marker {CHECKPOINT_FORMAT!r})")
    return state


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete temporary files a killed process left behind (never a finished checkpoint)."""
    folder = checkpoint_dir(run_dir)
    leftovers = list(folder.glob(".iter_*.tmp")) if folder.is_dir() else []
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def latest_valid_checkpoint(run_dir: Path, warn=None) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies and loads; corrupt ones are skipped with a warning
    (``warn(text)``, default ``warnings.warn``)."""
    warn = warn or (lambda text: warnings.warn(text, stacklevel=3))
    for _, path in list_checkpoints(run_dir):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            warn(f"warning: skipping unusable checkpoint: {error}; trying the previous one")
    return None


def save_weights(path: Path, student: dict, ema: dict | None, network: dict[str, Any]) -> Path:
    """Final weights in BasicSR's wrapper (``params`` / ``params_ema``) plus the network spec to rebuild it."""
    payload = {"format": WEIGHTS_FORMAT, "params": student, "network": network}
    if ema is not None:
        payload["params_ema"] = ema
    return atomic_write(path, lambda temporary: _torch_save(payload, temporary))


def weights_metadata(network: dict[str, Any], scale: int, dtype: str, key_layout: str) -> dict[str, str]:
    """The metadata of a dckd ``.safetensors`` weights file (``dckd export``): strings, as safetensors requires.

    ``format`` "dckd-weights"; ``architecture`` the backbone name (``BACKBONES``); ``options`` its constructor
    options as JSON; ``scale``; ``dtype`` of the stored weights; ``key_layout`` the official code whose
    ``load_state_dict`` takes the tensors as they are (the caller adds ``dckd_version``).
    """
    return {
        "format": WEIGHTS_FORMAT,
        "architecture": str(network["backbone"]),
        "options": json.dumps(network["options"], sort_keys=True),
        "scale": str(int(scale)),
        "dtype": dtype,
        "key_layout": key_layout,
    }


def network_spec(path: str | Path) -> dict[str, Any] | None:
    """The network a dckd weights/checkpoint file describes, if any: ``{"backbone", "options"}`` from a ``.pth``'s
    ``network`` entry, ``{"backbone", "options", "scale"}`` from a ``.safetensors`` file's metadata
    (``weights_metadata``); None for files without one (official checkpoints)."""
    if Path(path).suffix.lower() == ".safetensors":
        return _safetensors_network(path, read_safetensors_metadata(path))
    content = read_checkpoint(path)
    return content.get("network") if isinstance(content, dict) else None


def _safetensors_network(path: str | Path, metadata: dict[str, str]) -> dict[str, Any] | None:
    if metadata.get("format") != WEIGHTS_FORMAT:
        return None  # a safetensors file from elsewhere: the architecture comes from --preset
    missing = [key for key in ("architecture", "options", "scale") if key not in metadata]
    if missing:
        raise CheckpointError(f"{path}: dckd weights metadata without {', '.join(missing)}")
    try:
        options = json.loads(metadata["options"])
        scale = int(metadata["scale"])
    except ValueError as error:
        raise CheckpointError(f"{path}: metadata 'options' / 'scale' do not parse ({error})") from None
    if not isinstance(options, dict):
        raise CheckpointError(f"{path}: metadata 'options' must be a JSON object, got {type(options).__name__}")
    return {"backbone": metadata["architecture"], "options": options, "scale": scale}
