"""The training loop: seed, devices, data, networks, method, optimizer, resume, then the loop.

Run ``dckd train CONFIG`` on one process, or ``torchrun --nproc_per_node=N -m dckd train CONFIG`` on N
(DistributedDataParallel over the student only; frozen networks run locally on each rank).
"""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from dckd.config.loading import dump_yaml
from dckd.config.schema import Config
from dckd.data.sampler import TrainBatchSampler, seed_for
from dckd.data.validate import check_dataset
from dckd.engine import distributed
from dckd.engine.checkpoints import (
    latest_valid_checkpoint,
    load_checkpoint,
    remove_partial_writes,
    save_checkpoint,
    save_weights,
)
from dckd.engine.run_log import Progress, RunLog
from dckd.engine.schedules import learning_rate
from dckd.engine.setup import build_dataset, build_method, build_network, build_optimizer, build_vqgan, network_record
from dckd.engine.teacher_cache import attach, check_applies
from dckd.errors import CheckpointError, DatasetError, NonFiniteLossError
from dckd.eval.restoration import autocast_context, evaluate_dataset, evaluation_protocol
from dckd.models.averaging import freeze, frozen_copy, interpolate_, unwrap


class _StopRequest:
    """SIGTERM / Ctrl-C ask the loop to save a checkpoint and stop after the current iteration."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = {}

    def __enter__(self) -> _StopRequest:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (some test runners): no handler
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _stage(config: Config, iteration: int) -> tuple[int, int, int]:
    """(stage index, lq patch size, global batch) for 1-based ``iteration`` (Restormer's progressive training)."""
    index, patch, batch = 0, config.data.lq_patch_size, config.data.batch_size
    for number, stage in enumerate(config.data.progressive, start=1):
        if iteration > stage.start_iter:
            index, patch, batch = number, stage.lq_patch_size, stage.batch_size
    return index, patch, batch


def _stage_start(config: Config, stage: int) -> int:
    return 0 if stage == 0 else config.data.progressive[stage - 1].start_iter


def _loader(config, context, dataset, stage: int, patch: int, global_batch: int, first_iteration: int) -> DataLoader:
    """An endless loader for one stage, positioned at ``first_iteration`` (1-based) of the run."""
    if global_batch % context.world_size:
        raise ValueError(f"data.batch_size {global_batch} is not divisible by the {context.world_size} processes")
    dataset.lq_patch_size = patch
    sampler = TrainBatchSampler(
        len(dataset),
        global_batch // context.world_size,
        seed_for(config.train.seed, "data", stage),
        context.rank,
        context.world_size,
        start_iteration=first_iteration - 1 - _stage_start(config, stage),
    )
    workers = config.data.num_workers
    # Its own generator: creating the iterator draws a worker seed, which must not move the global RNG
    # (drop-path) differently in a resumed run than in an uninterrupted one.
    generator = torch.Generator().manual_seed(seed_for(config.train.seed, "loader", stage, context.rank))
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=context.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        generator=generator,
    )


def _check_data(config: Config, dataset, say, lq_patch_size: int | None = None):
    """Decode every file once before training (in parallel); stop, or skip bad files when asked.

    ``lq_patch_size``: the largest training patch of the run (progressive stages grow it)."""
    options = {"lq_patch_size": lq_patch_size} if lq_patch_size else {}
    dataset, report = check_dataset(
        dataset, workers=max(config.data.num_workers, 2), skip_bad=config.data.skip_bad_files, **options
    )
    if not report.ok:
        say(report.summary())
    return dataset


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    moved = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        moved[key] = value
    return moved


def train(
    config: Config,
    resume: str | None = None,
    networks: dict[str, nn.Module] | None = None,
    datasets: dict[str, Any] | None = None,
) -> Path:
    """Train as ``config`` says; returns the run folder. ``resume``: a checkpoint path (else auto-resume).

    ``networks`` (``student``, ``teacher``, ``vqgan``) and ``datasets`` (``train``, ``validation``: a list)
    replace what the config would build: the Python API (``dckd.distill``) passes the user's objects. The
    caller's global random state is left as it was.
    """
    context = distributed.initialise(config.train.device)
    devices = [context.device] if context.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            return _train(config, context, resume, networks or {}, datasets or {})
    finally:
        distributed.shutdown()


def _train(
    config: Config,
    context: distributed.Context,
    resume: str | None,
    networks: dict[str, nn.Module],
    datasets: dict[str, Any],
) -> Path:
    run_dir, device, options = config.run_dir, context.device, config.train
    progress = Progress(options.total_iters, stream=sys.stderr if context.is_main else io.StringIO())
    say = progress.message if context.is_main else (lambda text: None)

    # ---- seeds: networks are initialised identically on every process (seed); afterwards process r
    # draws from seed + r (drop-path). Data order and augmentations depend on the sample keys only.
    torch.manual_seed(options.seed)

    # ---- data (everything is checked before anything is written to the run folder)
    scale = config.data.scale
    missing_pairs = "report" if config.data.check_files else "error"
    train_set = datasets.get("train")
    if train_set is None:
        if config.data.train is None:
            raise DatasetError("data.train is not set: nothing to train on")
        train_set = build_dataset(
            config.data.train,
            scale,
            config.data.lq_patch_size,
            config.data.augment,
            options.seed,
            missing_pairs,
            alpha=config.data.alpha,
        )
    validation_sets = datasets.get("validation")
    if validation_sets is None:
        validation_sets = [
            build_dataset(spec, scale, None, False, missing_pairs=missing_pairs, alpha=config.data.alpha)
            for spec in config.data.validation
        ]
    if config.data.check_files and "train" not in datasets:
        if context.is_main:
            largest_patch = max(
                [config.data.lq_patch_size] + [stage.lq_patch_size for stage in config.data.progressive]
            )
            train_set = _check_data(config, train_set, say, largest_patch)
            validation_sets = [_check_data(config, dataset, say) for dataset in validation_sets]
        train_set, validation_sets = distributed.broadcast_object((train_set, validation_sets), context)

    if config.teacher_cache.enabled:
        check_applies(config)
        if context.is_main:
            say(f"teacher-output cache: {attach(config, train_set, device, say)}")
        distributed.barrier(context)
        if not context.is_main:
            attach(config, train_set, device, say)

    # ---- networks: the student trains; teacher, VQGAN (and EMA, history) are frozen and never wrapped.
    needs = config.needs
    student = networks["student"] if "student" in networks else build_network(config.student, "student")
    student = student.to(device).train()
    teacher = vqgan = None
    if needs.teacher:
        teacher = networks["teacher"] if "teacher" in networks else build_network(config.teacher, "teacher")
        teacher = freeze(teacher).to(device)
    if needs.vqgan:
        vqgan = freeze(networks["vqgan"] if "vqgan" in networks else build_vqgan(config.vqgan)).to(device)
    if options.channels_last:
        for network in (student, teacher, vqgan):
            if network is not None:
                network.to(memory_format=torch.channels_last)
    ema = frozen_copy(student) if options.ema_decay > 0 else None
    torch.manual_seed(options.seed + context.rank)
    trained = student
    if context.is_distributed:
        trained = torch.nn.parallel.DistributedDataParallel(
            student, device_ids=[device.index] if device.type == "cuda" else None
        )
    if options.compile:
        trained = torch.compile(trained)
        if teacher is not None:
            teacher = torch.compile(teacher)

    # ---- method, optimizer
    method = build_method(config, trained, teacher, vqgan, device, context.rank)
    optimizer = build_optimizer(config, student.parameters())
    scaler = torch.amp.GradScaler(device.type, enabled=options.precision == "float16")

    # ---- run folder: written only now that the config, data and networks are valid.
    run_log = None
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
        run_log = RunLog(run_dir, tensorboard=options.tensorboard)

    # ---- resume: an explicit checkpoint, or the newest valid one in the run folder.
    if context.is_main:
        for leftover in remove_partial_writes(run_dir):
            say(f"removed {leftover.name}, an unfinished checkpoint write of an interrupted run")
    start_iteration, nonfinite_streak = 0, 0
    found = (
        (Path(resume), load_checkpoint(Path(resume)))
        if resume
        else (latest_valid_checkpoint(run_dir, say) if options.auto_resume else None)
    )
    if found is not None:
        path, state = found
        try:
            student.load_state_dict(state["student"])
            if ema is not None:
                ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["student"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            method.load_state_dict(state["method"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(
                f"checkpoint {path} does not fit this run's configuration (another network, "
                f"method or optimizer?): {error}. Use another run name, or --resume a matching "
                "checkpoint"
            ) from None
        rng_states = state["rng"]
        if state["world_size"] == context.world_size:
            torch.set_rng_state(rng_states[context.rank]["torch"])
            if device.type == "cuda" and rng_states[context.rank].get("cuda") is not None:
                torch.cuda.set_rng_state(rng_states[context.rank]["cuda"], device)
        else:
            say(
                f"resuming with {context.world_size} processes instead of {state['world_size']}: per-process random "
                "streams (drop-path) restart from their seeds; data order and augmentations are unchanged"
            )
        start_iteration, nonfinite_streak = int(state["iteration"]), int(state.get("nonfinite_streak", 0))
        say(f"resumed from {path} at iteration {start_iteration}")
    progress = Progress(options.total_iters, start=start_iteration, stream=progress.stream)
    say = progress.message if context.is_main else (lambda text: None)

    def checkpoint_state(iteration: int) -> dict:
        rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        }
        return {
            "iteration": iteration,
            "student": unwrap(student).state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "method": method.state_dict(),
            "rng": distributed.gather_objects(rng, context),
            "world_size": context.world_size,
            "nonfinite_streak": nonfinite_streak,
            "network": network_record(config.student, config.data.scale),
            "config": dump_yaml(config),
        }

    def save(iteration: int) -> None:
        state = checkpoint_state(iteration)  # collective (gathers RNG states): every rank calls it
        if context.is_main:
            path = save_checkpoint(state, run_dir, iteration, options.keep_checkpoints)
            run_log.event(iteration, checkpoint=str(path))

    y_channel, crop_border = evaluation_protocol(
        config.data.task, scale, config.evaluation.y_channel, config.evaluation.crop_border
    )

    def validate(iteration: int) -> None:
        if context.is_main and validation_sets:
            network = ema if ema is not None else unwrap(student)
            results = {}
            for dataset in validation_sets:
                scores = evaluate_dataset(
                    network,
                    dataset,
                    scale,
                    device,
                    y_channel,
                    crop_border,
                    config.evaluation.tile_size,
                    config.evaluation.tile_overlap,
                    precision=options.precision,
                )
                results[dataset.name] = {"psnr": scores["psnr"], "ssim": scores["ssim"]}
            run_log.validation(iteration, results)
            say(
                f"validation @ {iteration}: "
                + ", ".join(f"{name} {value['psnr']:.3f} dB / {value['ssim']:.4f}" for name, value in results.items())
            )
        distributed.barrier(context)

    # ---- the loop
    stage, patch, batch_size = _stage(config, start_iteration + 1)
    batches = iter(_loader(config, context, train_set, stage, patch, batch_size, start_iteration + 1))
    sums: dict[str, float] = {}
    counted, interval_started = 0, time.monotonic()
    iteration = start_iteration
    with _StopRequest() as stop:
        for iteration in range(start_iteration + 1, options.total_iters + 1):
            new_stage, patch, batch_size = _stage(config, iteration)
            if new_stage != stage:
                stage = new_stage
                batches = iter(_loader(config, context, train_set, stage, patch, batch_size, iteration))
                say(f"iteration {iteration}: progressive stage {stage}, patch {patch}, batch {batch_size}")
            try:
                batch = _to_device(next(batches), device, options.channels_last)
            except DatasetError as error:  # a file that went bad after the check: keep the progress, name it
                if iteration - 1 > start_iteration:
                    save(iteration - 1)
                # A DataLoader worker's error arrives with the worker's traceback in its text; keep the message.
                message = str(error).strip().splitlines()[-1].split("Error: ", 1)[-1]
                raise DatasetError(
                    f"{message} (at iteration {iteration}; progress up to here is saved: fix or remove "
                    "the file and run the same command to resume)"
                ) from None
            lr = learning_rate(
                iteration - 1,
                config.optimizer.lr,
                config.schedule.name,
                options.total_iters,
                config.schedule.milestones_iters,
                config.schedule.gamma,
                config.schedule.periods_iters,
                config.schedule.restart_weights,
                config.schedule.eta_min,
                config.schedule.warmup_iters,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr

            with autocast_context(device, options.precision):
                result = method(batch)
            loss = result["loss"]

            # Non-finite loss: skip the step on every rank (DDP ranks must stay in step).
            if distributed.any_rank(not bool(torch.isfinite(loss.detach())), context):
                nonfinite_streak += 1
                optimizer.zero_grad(set_to_none=True)
                say(f"warning: non-finite loss at iteration {iteration} ({nonfinite_streak} in a row); step skipped")
                if nonfinite_streak >= options.max_consecutive_nonfinite:
                    save(iteration - 1)
                    raise NonFiniteLossError(
                        f"{nonfinite_streak} consecutive non-finite losses (train.max_consecutive_nonfinite); "
                        f"the last good state is saved in {run_dir / 'checkpoints'}"
                    )
                continue
            nonfinite_streak = 0
            scaler.scale(loss).backward()
            if options.grad_clip_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(student.parameters(), options.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                interpolate_(ema, student, options.ema_decay)
            events = method.after_step(iteration, student, ema)
            if events and context.is_main:
                run_log.event(iteration, **events)

            for name, value in result.items():
                if name != "output":
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
            counted += 1
            if iteration % options.log_every_iters == 0 or iteration == options.total_iters:
                values = distributed.all_reduce_mean({name: total / counted for name, total in sums.items()}, context)
                seconds = (time.monotonic() - interval_started) / counted
                extra = method.interval_values()
                if context.is_main:
                    run_log.training(iteration, {"lr": lr, **values, **extra, "seconds_per_iter": seconds})
                    progress.update(iteration, values, force=True)
                sums, counted, interval_started = {}, 0, time.monotonic()
            elif context.is_main:
                progress.update(iteration, {"loss": float(loss.detach())})

            if options.validate_every_iters and iteration % options.validate_every_iters == 0:
                validate(iteration)
            if iteration % options.checkpoint_every_iters == 0:
                save(iteration)
            if distributed.any_rank(stop.requested, context):
                save(iteration)
                say(f"stopped at iteration {iteration} on request; resume with the same command")
                progress.close()
                return run_dir

    # ---- the end: final checkpoint, weights, validation
    if iteration % options.checkpoint_every_iters:
        save(iteration)
    if not options.validate_every_iters or iteration % options.validate_every_iters:
        validate(iteration)
    if context.is_main:
        save_weights(
            run_dir / "weights.pth",
            unwrap(student).state_dict(),
            ema.state_dict() if ema is not None else None,
            network_record(config.student, config.data.scale),
        )
        run_log.close()
        progress.close()
        say(f"done: {run_dir / 'weights.pth'}")
    return run_dir
