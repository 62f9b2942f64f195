"""The one rule for path options, and the absolute form a run folder records.

Every path option (``data.*.root``, ``gt_dir``, ``lq_dir``, ``meta_info_file``, ``student``/``teacher``/``vqgan``
``.checkpoint``, ``teacher_cache.directory``, ``output_dir``) is read the way a shell reads a path: relative
to the working directory (as BasicSR's option files assume: run them from the folder they were written
for). A path that starts with ``dckd:`` names a file shipped inside the dckd package
(``dckd:weights/demo_teacher_x4.pth``, ``dckd:bundled/train/HR``; ``dckd.files.paths.resolve_path``), so
the shipped configs work from any folder and any installation.

The config a run writes (``config.yaml`` in the run folder and the copy in every checkpoint) records every
relative path made absolute (``absolute_paths``), so ``dckd train RUN/config.yaml`` reruns from any folder;
``dckd:`` names are kept as they are (they do not depend on the working directory).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dckd.config.schema import Config, DatasetConfig, NetworkConfig
from dckd.files.paths import ASSET_PREFIX


def absolute_path(text: str | None, working_directory: str | os.PathLike | None = None) -> str | None:
    """``text`` relative to ``working_directory`` (default: the current one), normalised; ``dckd:`` names,
    absolute paths and None unchanged."""
    if text is None or text.startswith(ASSET_PREFIX) or os.path.isabs(text):
        return text
    return os.path.normpath(os.path.join(working_directory or os.getcwd(), text))


def absolute_paths(config: Config, working_directory: str | os.PathLike | None = None) -> Config:
    """A copy of ``config`` whose relative path options are absolute (see the module docstring)."""
    base = Path(working_directory) if working_directory is not None else Path.cwd()

    def network(spec: NetworkConfig | None) -> NetworkConfig | None:
        if spec is None:
            return None
        return dataclasses.replace(spec, checkpoint=absolute_path(spec.checkpoint, base))

    def dataset(spec: DatasetConfig | None) -> DatasetConfig | None:
        if spec is None:
            return None
        return dataclasses.replace(
            spec,
            **{
                name: absolute_path(getattr(spec, name), base)
                for name in ("root", "gt_dir", "lq_dir", "meta_info_file")
            },
        )

    data = dataclasses.replace(
        config.data,
        train=dataset(config.data.train),
        validation=tuple(dataset(spec) for spec in config.data.validation),
    )
    return dataclasses.replace(
        config,
        output_dir=absolute_path(config.output_dir, base),
        student=network(config.student),
        teacher=network(config.teacher),
        vqgan=None
        if config.vqgan is None
        else dataclasses.replace(config.vqgan, checkpoint=absolute_path(config.vqgan.checkpoint, base)),
        data=data,
        teacher_cache=dataclasses.replace(
            config.teacher_cache, directory=absolute_path(config.teacher_cache.directory, base)
        ),
    )
