"""Teacher-output cache: run the frozen teacher once per training image and reuse the result.

The teacher's output on the clean input never changes during a run, so instead of running it on every
crop of every iteration, ``dckd cache-teacher CONFIG`` (or the first run with
``teacher_cache.enabled: true``) restores every WHOLE training image once, stores the result as
float16 ``.npy`` files, and the dataset crops and augments it together with the ground truth
(``RestorationDataset.teacher_outputs``). The batch then carries ``teacher_output`` and the methods
skip the teacher's forward pass on the clean input (DCKD*'s augmented pass still runs).

What this changes, compared with running the teacher on crops (documented in docs/speed.md, with the
measured effect): (1) the teacher sees whole images, so near the crop borders its output is the
whole-image output, not the output of a zero/reflection-padded crop; (2) values are stored in float16
(relative error <= 2^-11); (3) the cache is fixed at the teacher's weights, which never change anyway.

Staleness is impossible by construction: the folder name is a hash (the key) of the teacher
architecture and its checkpoint's SHA-256, the training files (paths, sizes, modification times),
the scale and the inference settings; a different key is a different folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from dckd.config.schema import Config
from dckd.engine.setup import build_network, network_record
from dckd.errors import ConfigError, DatasetError
from dckd.eval.restoration import restore
from dckd.files.paths import resolve_path
from dckd.files.weights import atomic_write, file_sha256
from dckd.models.averaging import freeze

CACHE_FORMAT = "dckd-teacher-cache"


def cache_key(
    teacher_record: dict,
    checkpoint: str | None,
    gt_paths: list[Path],
    lq_paths: list,
    scale: int,
    precision: str,
    tile_size: int,
) -> tuple[str, dict]:
    """(short key, the full description it hashes)."""
    files = []
    for path in [*gt_paths, *(p for p in lq_paths if p is not None)]:
        stat = Path(path).stat()
        files.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    description = {
        "format": CACHE_FORMAT,
        "teacher": teacher_record,
        "teacher_checkpoint_sha256": file_sha256(checkpoint) if checkpoint else None,
        "files": files,
        "scale": scale,
        "precision": precision,
        "tile_size": tile_size,
    }
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]
    return digest, description


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle, so np.save adds no ".npy" to the temporary name
        np.save(handle, array)


def _entry_name(gt_path: Path) -> str:
    return hashlib.sha1(str(Path(gt_path).resolve()).encode()).hexdigest() + ".npy"


class TeacherOutputs:
    """Reads cached outputs: ``load(gt_path) -> (3, H*scale, W*scale) float16 array``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        if not manifest.is_file():
            raise DatasetError(
                f"teacher-output cache {self.directory} is incomplete (no manifest.json); "
                "delete it and run `dckd cache-teacher CONFIG` again"
            )

    def load(self, gt_path: Path) -> np.ndarray:
        """The cached output for ``gt_path``; a missing, truncated or corrupt entry is a ``DatasetError`` that
        names the entry's file and the image it belongs to."""
        path = self.directory / _entry_name(gt_path)
        if not path.is_file():
            raise DatasetError(f"teacher-output cache {self.directory} has no entry for '{gt_path}'")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # numpy says "mmap length is greater than file size"
            raise DatasetError(
                f"teacher-output cache entry {path} (for '{gt_path}') is unreadable ({error}): truncated or "
                f"corrupt; delete the folder {self.directory} and run `dckd cache-teacher CONFIG` again"
            ) from None
        if array.dtype != np.float16 or array.ndim != 3 or array.shape[0] != 3:
            raise DatasetError(
                f"teacher-output cache entry {path} (for '{gt_path}') holds a {array.dtype} array of shape "
                f"{array.shape}, not a (3, H, W) float16 image; delete the folder {self.directory} and run "
                "`dckd cache-teacher CONFIG` again"
            )
        return array


def cache_directory(config: Config, dataset) -> tuple[Path, dict]:
    key, description = cache_key(
        network_record(config.teacher),
        config.teacher.checkpoint,
        dataset.gt_paths,
        dataset.lq_paths,
        config.data.scale,
        config.train.precision,
        config.evaluation.tile_size,
    )
    return resolve_path(config.teacher_cache.directory) / key, description


def build_cache(config: Config, dataset, device: torch.device, say=print) -> Path:
    """Restore every whole training image with the teacher and store it; returns the cache folder.

    Entries are written atomically and the manifest last, so an interrupted build is detected and
    resumed (finished entries are kept)."""
    directory, description = cache_directory(config, dataset)
    if (directory / "manifest.json").is_file():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    teacher = freeze(build_network(config.teacher, "teacher", scale=config.data.scale)).to(device)
    total = len(dataset)
    for index in range(total):
        target = directory / _entry_name(dataset.gt_paths[index])
        if target.is_file():
            continue
        lq, _ = dataset.load_pair(index)
        output = restore(
            teacher,
            lq.unsqueeze(0).to(device),
            config.data.scale,
            config.evaluation.tile_size,
            config.evaluation.tile_overlap,
            precision=config.train.precision,
        )[0]
        array = output.clamp(0, 1).cpu().numpy().astype(np.float16)
        atomic_write(target, lambda path, array=array: _save_array(path, array))
        say(f"teacher cache {index + 1}/{total}: {dataset.gt_paths[index].name}")
    description["entries"] = total
    atomic_write(directory / "manifest.json", lambda path: path.write_text(json.dumps(description, indent=1)))
    return directory


def check_applies(config: Config) -> None:
    """Raise ``ConfigError`` unless the teacher-output cache can serve this config's method and data."""
    needs = config.needs
    if not (needs.teacher and needs.teacher_cache):
        raise ConfigError(
            f"teacher_cache.enabled: method {config.method!r} does not take the teacher's output alone "
            "from the teacher (FAKD needs its intermediate features; scratch and mclir use no "
            "teacher); turn the cache off"
        )
    checkpoint = config.teacher.checkpoint if config.teacher is not None else None
    if checkpoint is None or checkpoint.startswith("<in memory"):
        raise ConfigError(
            "teacher_cache.enabled: the cache is made from the teacher's weights file and keyed by its hash; "
            "this teacher has none (random_init, or a network given in memory): turn the cache off"
        )
    if config.data.train is None or config.data.train.kind in ("synthetic", "python"):
        raise ConfigError(
            "teacher_cache.enabled: the cache needs the training images as files (synthetic datasets "
            "make a new input every sample, a Python dataset has no files); turn the cache off"
        )


def attach(config: Config, dataset, device: torch.device, say=print) -> Path:
    """Build the cache if needed and make ``dataset`` hand out ``teacher_output`` with every sample."""
    check_applies(config)
    directory = build_cache(config, dataset, device, say)
    dataset.teacher_outputs = TeacherOutputs(directory)
    return directory
