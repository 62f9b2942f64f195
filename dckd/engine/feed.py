"""Feeding the loop: progressive stages, the resumable data loader, the data check, batches on the device."""

from __future__ import annotations

import re

import torch
from torch.utils.data import DataLoader

from dckd.config.schema import Config
from dckd.data.sampler import TrainBatchSampler, seed_for
from dckd.data.validate import check_dataset
from dckd.engine import distributed
from dckd.errors import DatasetError


def stage_at(config: Config, iteration: int) -> tuple[int, int, int]:
    """(stage index, lq patch size, global batch) for 1-based ``iteration`` (Restormer's progressive training)."""
    index, patch, batch = 0, config.data.lq_patch_size, config.data.batch_size
    for number, stage in enumerate(config.data.progressive, start=1):
        if iteration > stage.start_iter:
            index, patch, batch = number, stage.lq_patch_size, stage.batch_size
    return index, patch, batch


def stage_start(config: Config, stage: int) -> int:
    return 0 if stage == 0 else config.data.progressive[stage - 1].start_iter


def batches(
    config: Config,
    context: distributed.Context,
    dataset,
    stage: int,
    patch: int,
    global_batch: int,
    first_iteration: int,
):
    """An endless iterator of batches for one stage, positioned at ``first_iteration`` (1-based) of the run."""
    if global_batch % context.world_size:
        raise ValueError(f"data.batch_size {global_batch} is not divisible by the {context.world_size} processes")
    dataset.lq_patch_size = patch
    sampler = TrainBatchSampler(
        len(dataset),
        global_batch // context.world_size,
        seed_for(config.train.seed, "data", stage),
        context.rank,
        context.world_size,
        start_iteration=first_iteration - 1 - stage_start(config, stage),
    )
    workers = config.data.num_workers
    # Its own generator: creating the iterator draws a worker seed, which must not move the global RNG
    # (drop-path) differently in a resumed run than in an uninterrupted one.
    generator = torch.Generator().manual_seed(seed_for(config.train.seed, "loader", stage, context.rank))
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=context.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        generator=generator,
    )
    return iter(loader)


def checked(config: Config, dataset, say, lq_patch_size: int | None = None):
    """Decode every file once before training (in parallel); stop, or skip bad files when asked.

    ``lq_patch_size``: the largest training patch of the run (progressive stages grow it)."""
    options = {"lq_patch_size": lq_patch_size} if lq_patch_size else {}
    dataset, report = check_dataset(
        dataset, workers=max(config.data.num_workers, 2), skip_bad=config.data.skip_bad_files, **options
    )
    if not report.ok:
        say(report.summary())
    return dataset


def on_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    moved = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        moved[key] = value
    return moved


def data_stop_message(error: BaseException) -> str:
    """The one line of a data error; a DataLoader worker's error arrives with the worker's traceback in its text."""
    if isinstance(error, OSError) and not isinstance(error, DatasetError) and error.filename:
        return f"cannot read {error.filename}: {error.strerror or error}"
    last = str(error).strip().splitlines()[-1]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", last)
