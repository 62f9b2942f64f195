"""The training loop: seed, devices, data, networks, method, optimizer, resume, then the loop.

Run ``dckd train CONFIG`` on one process, or ``torchrun --nproc_per_node=N -m dckd train CONFIG`` on N
(DistributedDataParallel over the student only; frozen networks run locally on each rank). Every check that
can fail on the user's files runs before anything is written to the run folder; the folder is locked for the
run (``run_folder.py``); which checkpoints are good is ``keeper.py``'s business; feeding the batches is
``feed.py``'s.
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

from dckd.config.loading import dump_yaml
from dckd.config.paths import absolute_paths
from dckd.config.schema import Config
from dckd.data.sampler import seed_for
from dckd.engine import distributed, feed, host_memory
from dckd.engine.checkpoints import (
    check_identity,
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_partial_writes,
    run_identity,
    save_weights,
)
from dckd.engine.keeper import CheckpointKeeper
from dckd.engine.preflight import check_finite_weights, check_on_sample
from dckd.engine.run_folder import RunFolderLock, check_writable, write_error
from dckd.engine.run_log import Progress, RunLog
from dckd.engine.schedules import learning_rate
from dckd.engine.setup import (
    build_dataset,
    build_method,
    build_network,
    build_optimizer,
    build_vqgan,
    network_record,
    resolve_network_sources,
)
from dckd.engine.teacher_cache import attach, check_applies
from dckd.errors import CheckpointError, DatasetError, NonFiniteLossError, RunFolderBusyError
from dckd.eval.restoration import autocast_context, evaluate_dataset, evaluation_protocol
from dckd.models.averaging import freeze, frozen_copy, interpolate_, unwrap
from dckd.models.spandrel_network import SpandrelNetwork


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


def _lock(lock: RunFolderLock, context: distributed.Context, say) -> None:
    """Rank 0 takes the run folder's lock; every rank learns the outcome (none waits in a collective)."""
    refusal = None
    if context.is_main:
        try:
            note = lock.acquire()
        except RunFolderBusyError as error:
            refusal = str(error)
        else:
            if note:
                say(note)
    refusal = distributed.broadcast_object(refusal, context)
    if refusal:
        raise RunFolderBusyError(refusal if context.is_main else f"rank 0 stopped: {refusal}")


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
    # Relative path options are read from the working directory; the run records them absolute (config.yaml,
    # checkpoints), so that `dckd train RUN/config.yaml` reruns from any folder.
    config = absolute_paths(config)
    # A network given only by its checkpoint: the file's dckd record names it, or spandrel detects a teacher.
    config = resolve_network_sources(config)
    context = distributed.initialise(config.train.device)
    devices = [context.device] if context.device.type == "cuda" else []
    lock = RunFolderLock(config.run_dir)
    try:
        with torch.random.fork_rng(devices=devices):
            return _train(config, context, resume, networks or {}, datasets or {}, lock)
    finally:
        lock.release()
        distributed.shutdown()


def _datasets(config: Config, context: distributed.Context, given: dict[str, Any], say) -> tuple[Any, list]:
    """The training set and the validation sets, every file checked (before anything is written)."""
    scale, options = config.data.scale, config.train
    missing_pairs = "report" if config.data.check_files else "error"
    train_set = given.get("train")
    if train_set is None:
        if config.data.train is None:
            raise DatasetError("data.train is not set: nothing to train on")
        train_set = build_dataset(
            config.data.train, scale, config.data.lq_patch_size, config.data.augment, options.seed, missing_pairs,
            alpha=config.data.alpha,
        )  # fmt: skip
    validation_sets = given.get("validation")
    if validation_sets is None:
        validation_sets = [
            build_dataset(spec, scale, None, False, missing_pairs=missing_pairs, alpha=config.data.alpha)
            for spec in config.data.validation
        ]
    if config.data.check_files and "train" not in given:
        if context.is_main:
            patches = [config.data.lq_patch_size] + [stage.lq_patch_size for stage in config.data.progressive]
            train_set = feed.checked(config, train_set, say, max(patches))
            validation_sets = [feed.checked(config, dataset, say) for dataset in validation_sets]
        train_set, validation_sets = distributed.broadcast_object((train_set, validation_sets), context)
    if len(train_set) == 0:
        raise DatasetError("the training set is empty: nothing to train on")
    return train_set, validation_sets


def _networks(config: Config, given: dict[str, nn.Module], device: torch.device, train_set, say):
    """(student, teacher, vqgan): the student trains; teacher and VQGAN are frozen (None when not needed).
    Finite weights and outputs and the right scale are checked on one training sample."""
    needs, scale = config.needs, config.data.scale
    student = given["student"] if "student" in given else build_network(config.student, "student")
    student = student.to(device).train()
    teacher = vqgan = None
    if needs.teacher:
        teacher = given["teacher"] if "teacher" in given else build_network(config.teacher, "teacher", scale=scale)
        if isinstance(teacher, SpandrelNetwork):
            say(f"teacher: {teacher.summary(config.train.precision)}")
        teacher = freeze(teacher).to(device)
    if needs.vqgan:
        vqgan = freeze(given["vqgan"] if "vqgan" in given else build_vqgan(config.vqgan)).to(device)
    sources = {
        "student": config.student.checkpoint,
        "teacher": config.teacher.checkpoint if teacher is not None else None,
        "VQGAN": config.vqgan.checkpoint if vqgan is not None else None,
    }
    built = {"student": student, "teacher": teacher, "VQGAN": vqgan}
    for role, network in built.items():
        if network is not None:
            check_finite_weights(network, role, sources[role])
    check_on_sample(
        train_set[(0, seed_for(config.train.seed, "preflight"))],
        scale,
        device,
        {role: (built[role], sources[role]) for role in ("student", "teacher") if built[role] is not None},
        (vqgan, sources["VQGAN"]) if vqgan is not None else None,
    )
    return student, teacher, vqgan


def _train(
    config: Config,
    context: distributed.Context,
    resume: str | None,
    networks: dict[str, nn.Module],
    datasets: dict[str, Any],
    lock: RunFolderLock,
) -> Path:
    run_dir, device, options, scale = config.run_dir, context.device, config.train, config.data.scale
    progress = Progress(options.total_iters, stream=sys.stderr if context.is_main else io.StringIO())
    say = progress.message if context.is_main else (lambda text: None)

    # ---- one run per folder: a folder in use stops this run now; a new folder is locked when it is made.
    if context.is_main:
        check_writable(run_dir)
    if distributed.broadcast_object(run_dir.is_dir(), context):  # rank 0's view decides (one collective)
        _lock(lock, context, say)

    if options.keep_freed_host_memory:
        host_memory.keep_freed_host_memory()

    # ---- seeds: networks are initialised identically on every process (seed); afterwards process r
    # draws from seed + r (drop-path). Data order and augmentations depend on the sample keys only.
    torch.manual_seed(options.seed)

    # ---- data and networks (everything is checked before anything is written to the run folder)
    train_set, validation_sets = _datasets(config, context, datasets, say)
    student, teacher, vqgan = _networks(config, networks, device, train_set, say)
    if config.teacher_cache.enabled:
        check_applies(config)
        if context.is_main:
            say(f"teacher-output cache: {attach(config, train_set, device, say)}")
        distributed.barrier(context)
        if not context.is_main:
            attach(config, train_set, device, say)
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

    # ---- resume (before the run folder is written): an explicit checkpoint, or the newest valid one in the
    # run folder (locked when it exists); it must be this run's.
    teacher_record = network_record(config.teacher) if config.needs.teacher else None
    identity = run_identity(config.method, network_record(config.student), teacher_record, scale)
    start_iteration, nonfinite_streak = 0, 0
    found = (
        (Path(resume), load_checkpoint(Path(resume)))
        if resume
        else (latest_valid_checkpoint(run_dir, say) if options.auto_resume else None)
    )
    if found is not None:
        path, state = found
        check_identity(path, state, identity)
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

    # ---- run folder: written only now that the config, data and networks are valid; locked before the first write.
    run_log = None
    if context.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(error, run_dir) from None
    appeared = context.is_main and not lock.acquired and bool(list_checkpoints(run_dir))
    _lock(lock, context, say)
    if distributed.broadcast_object(appeared, context):  # another run made the folder while this one started
        raise RunFolderBusyError(f"run folder {run_dir} was filled by another run while this one was starting")
    if context.is_main:
        try:
            (run_dir / "config.yaml").write_text(dump_yaml(config), encoding="utf-8")
            run_log = RunLog(run_dir, tensorboard=options.tensorboard)
            for leftover in remove_partial_writes(run_dir):
                say(f"removed {leftover.name}, an unfinished checkpoint write of an interrupted run")
        except OSError as error:
            raise write_error(error, run_dir / "config.yaml") from None
    progress = Progress(options.total_iters, start=start_iteration, stream=progress.stream)
    say = progress.message if context.is_main else (lambda text: None)
    keeper = CheckpointKeeper(
        run_dir, options.keep_checkpoints, context.is_main, run_log, say, start_iteration,
        found[0] if found is not None else None,
    )  # fmt: skip

    def checkpoint(iteration: int) -> dict:
        """The full training state (a collective: it gathers every rank's random state)."""
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
            "identity": identity,
            "config": dump_yaml(config),
        }

    y_channel, crop_border = evaluation_protocol(
        config.data.task, scale, config.evaluation.y_channel, config.evaluation.crop_border
    )

    def validate(iteration: int) -> None:
        """Evaluate on rank 0; a validation file that went bad saves the progress on every rank, then stops."""
        failure = None
        if context.is_main and validation_sets:
            try:
                network = ema if ema is not None else unwrap(student)
                results = {}
                for dataset in validation_sets:
                    scores = evaluate_dataset(
                        network, dataset, scale, device, y_channel, crop_border, config.evaluation.tile_size,
                        config.evaluation.tile_overlap, precision=options.precision,
                    )  # fmt: skip
                    results[dataset.name] = {"psnr": scores["psnr"], "ssim": scores["ssim"]}
                run_log.validation(iteration, results)
                say(f"validation @ {iteration}: " + ", ".join(
                    f"{name} {value['psnr']:.3f} dB / {value['ssim']:.4f}" for name, value in results.items()
                ))  # fmt: skip
            except (DatasetError, OSError) as error:
                failure = feed.data_stop_message(error)
        failure = distributed.broadcast_object(failure, context)
        if failure is not None:
            saved = keeper.save_progress(iteration, nonfinite_streak, checkpoint)
            raise DatasetError(
                f"validation at iteration {iteration}: {failure} ({saved}: fix or remove the file and run the "
                "same command to resume)"
            )

    # ---- the loop
    stage, patch, batch_size = feed.stage_at(config, start_iteration + 1)
    batches = feed.batches(config, context, train_set, stage, patch, batch_size, start_iteration + 1)
    sums: dict[str, float] = {}
    counted, steps_taken, interval_started = 0, 0, time.monotonic()
    iteration = start_iteration
    with _StopRequest() as stop:
        for iteration in range(start_iteration + 1, options.total_iters + 1):
            new_stage, patch, batch_size = feed.stage_at(config, iteration)
            if new_stage != stage:
                stage = new_stage
                batches = feed.batches(config, context, train_set, stage, patch, batch_size, iteration)
                say(f"iteration {iteration}: progressive stage {stage}, patch {patch}, batch {batch_size}")
            try:
                batch, failure = feed.on_device(next(batches), device, options.channels_last), None
            except (DatasetError, OSError) as error:  # a file that went bad after the check
                failure = feed.data_stop_message(error)
            if distributed.any_rank(failure is not None, context):  # every rank saves (a collective), then stops
                saved = keeper.save_progress(iteration - 1, nonfinite_streak, checkpoint)
                raise DatasetError(
                    f"{failure or 'another process could not read its batch'} (at iteration {iteration}; {saved}: "
                    "fix or remove the file and run the same command to resume)"
                )
            schedule = config.schedule
            lr = learning_rate(
                iteration - 1, config.optimizer.lr, schedule.name, options.total_iters, schedule.milestones_iters,
                schedule.gamma, schedule.periods_iters, schedule.restart_weights, schedule.eta_min,
                schedule.warmup_iters,
            )  # fmt: skip
            for group in optimizer.param_groups:
                group["lr"] = lr

            with autocast_context(device, options.precision):
                result = method(batch)
            loss = result["loss"]

            # Non-finite loss: skip the step on every rank (DDP ranks must stay in step); too many in a row stop
            # the run with the last good checkpoint kept and the diverged ones removed.
            if distributed.any_rank(not bool(torch.isfinite(loss.detach())), context):
                nonfinite_streak += 1
                optimizer.zero_grad(set_to_none=True)
                say(f"warning: non-finite loss at iteration {iteration} ({nonfinite_streak} in a row); step skipped")
                if nonfinite_streak >= options.max_consecutive_nonfinite:
                    raise NonFiniteLossError(keeper.diverged(nonfinite_streak))
                continue
            nonfinite_streak, steps_taken = 0, steps_taken + 1
            scaler.scale(loss).backward()
            if options.grad_clip_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(student.parameters(), options.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                interpolate_(ema, student, options.ema_decay)
            keeper.finite_step(iteration)
            events = method.after_step(iteration, student, ema)
            if events and context.is_main:
                run_log.event(iteration, **events)

            # ---- logging, validation, checkpoints
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
                keeper.save(iteration, checkpoint(iteration))
            if distributed.any_rank(stop.requested, context):
                keeper.save(iteration, checkpoint(iteration))
                say(f"stopped at iteration {iteration} on request; resume with the same command")
                progress.close()
                return run_dir

    # ---- the end: final checkpoint, weights, validation (never "done" when no step was taken at all)
    if start_iteration == 0 and steps_taken == 0:
        raise NonFiniteLossError(
            f"every one of the {iteration} losses was non-finite: nothing was learned and no weights are written; "
            "check the teacher, the data and optimizer.lr"
        )
    if iteration % options.checkpoint_every_iters:
        keeper.save(iteration, checkpoint(iteration))
    if not options.validate_every_iters or iteration % options.validate_every_iters:
        validate(iteration)
    if context.is_main:
        try:
            save_weights(
                run_dir / "weights.pth",
                unwrap(student).state_dict(),
                ema.state_dict() if ema is not None else None,
                network_record(config.student, config.data.scale),
            )
        except OSError as error:
            raise write_error(error, run_dir / "weights.pth") from None
        run_log.close()
        progress.close()
        say(f"done: {run_dir / 'weights.pth'}")
    return run_dir
