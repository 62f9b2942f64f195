"""Cost of one training iteration of `dckd demo`'s students on this machine: Scratch, Logits and DCKD side by side.

    python benchmarks/demo_step.py --out benchmarks/results/<date>_cpu_demo_step.json

Builds each method exactly as ``dckd demo`` does (its config, the shipped demo teacher and codebook, the
bundled training photos, batch and patch of the demo), then times full iterations (next batch from the data
loader, forward, backward, optimizer step, the method's after_step) interleaved round-robin across the methods
so that a change in the machine's load hits every method alike; the median per method is reported, with the
ratios to Scratch. A per-part profile of the DCKD iteration times each part on its own (same inputs, same
calls as the method makes): teacher, student forward, history model on the negatives, frozen VQGAN pass,
anchor VQGAN pass, backward, optimizer step. Wall clock and process CPU time are both recorded.

``--revision-label`` names what was measured (e.g. a commit); the script runs against older layouts of the
package too, so "before" and "after" are measured by the same script.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path

import torch

try:  # the package layout since the redesign
    from dckd.apps.demo import codebook_path, demo_config, teacher_path
    from dckd.engine.setup import build_dataset, build_method, build_network, build_optimizer, build_vqgan
    from dckd.models.averaging import freeze
except ImportError:  # the flat layout before it (for "before" measurements at older commits)
    from dckd.averaging import freeze
    from dckd.build import build_dataset, build_method, build_network, build_optimizer, build_vqgan
    from dckd.demo import codebook_path, demo_config, teacher_path

from dckd.data.sampler import TrainBatchSampler

METHODS = ("scratch", "logits", "dckd")


def setting(method: str, arguments: argparse.Namespace):
    """The demo's config for ``method``, and everything a training iteration needs.

    The demo's DCKD leaves the contrastive term out for the first quarter of its run; here it is on from the
    first iteration, so that the timed iterations are the full DCKD iteration."""

    def config_with(overrides: list[str]):
        return demo_config(
            method,
            arguments.scale,
            arguments.iterations,
            0,
            Path("/tmp/demo_step_runs"),
            arguments.batch_size,
            arguments.patch,
            "cpu",
            teacher_path(arguments.scale),
            codebook_path(),
            overrides,
        )

    config = config_with(list(arguments.set))
    if method == "dckd" and getattr(config.dckd, "contrastive_start_iters", 0):  # absent before the option
        config = config_with([*arguments.set, "dckd.contrastive_start_iters=0"])
    if getattr(config.train, "keep_freed_host_memory", False):  # as engine/loop.py does
        from dckd.engine.host_memory import keep_freed_host_memory

        keep_freed_host_memory()
    torch.manual_seed(0)
    student = build_network(config.student, "student")
    needs_teacher = config.teacher is not None
    teacher = freeze(build_network(config.teacher, "teacher")) if needs_teacher else None
    vqgan = build_vqgan(config.vqgan) if config.vqgan is not None and method == "dckd" else None
    channels_last = getattr(config.train, "channels_last", False)  # as engine/loop.py does (absent in old layouts)
    if channels_last:
        for network in (student, teacher, vqgan):
            if network is not None:
                network.to(memory_format=torch.channels_last)
    method_object = build_method(config, student, teacher, vqgan, torch.device("cpu"))
    optimizer = build_optimizer(config, student.parameters())
    dataset = build_dataset(
        config.data.train, config.data.scale, config.data.lq_patch_size, config.data.augment, config.train.seed
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=TrainBatchSampler(len(dataset), config.data.batch_size, config.train.seed), num_workers=0
    )
    return {
        "config": config,
        "student": student,
        "teacher": teacher,
        "vqgan": vqgan,
        "method": method_object,
        "optimizer": optimizer,
        "batches": (_memory_format(batch, channels_last) for batch in loader),
        "iteration": 0,
    }


def _memory_format(batch: dict, channels_last: bool) -> dict:
    """The batch as the loop hands it to the method (engine/feed.py: 4-D tensors channels-last when asked)."""
    if not channels_last:
        return batch
    return {
        key: value.contiguous(memory_format=torch.channels_last)
        if torch.is_tensor(value) and value.dim() == 4
        else value
        for key, value in batch.items()
    }


def iteration(state: dict) -> None:
    """One training iteration as engine/loop.py runs it (float32, no EMA: the demo's setting)."""
    batch = next(state["batches"])
    result = state["method"](batch)
    result["loss"].backward()
    state["optimizer"].step()
    state["optimizer"].zero_grad(set_to_none=True)
    state["iteration"] += 1
    state["method"].after_step(state["iteration"], state["student"], None)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def timed(function, repeats: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of ``repeats`` calls after one warm-up call."""
    function()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = clock()
        function()
        wall_end, cpu_end = clock()
        walls.append(1000 * (wall_end - wall))
        cpus.append(1000 * (cpu_end - cpu))
    return statistics.median(walls), statistics.median(cpus)


def dckd_parts(state: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Each part of a DCKD iteration on its own, with the inputs and calls the method uses."""
    method, batch = state["method"], next(state["batches"])
    lq = batch["lq"]
    with torch.no_grad():
        teacher_output = method.teacher(lq)
        negatives_input = method.negatives(lq)
        negatives = method.history.network(negatives_input)
    frozen = torch.cat([teacher_output, negatives])
    full = method.codebook_weight > 0

    def frozen_vqgan() -> None:
        with torch.no_grad():
            method.vqgan.features_and_code_logits(frozen) if full else method.vqgan.features(frozen)

    def student_forward() -> None:
        with torch.no_grad():
            method.student(lq)

    def anchor_forward_backward() -> None:
        output = method.student(lq)
        features = method.vqgan.features_and_code_logits(output) if full else (method.vqgan.features(output), None)
        (sum(feature.mean() for feature in features[0]) + (features[1].mean() if full else 0)).backward()
        state["optimizer"].zero_grad(set_to_none=True)

    def student_forward_backward() -> None:
        method.student(lq).mean().backward()
        state["optimizer"].zero_grad(set_to_none=True)

    def optimizer_step() -> None:
        for parameter in method.student.parameters():
            parameter.grad = torch.zeros_like(parameter)
        state["optimizer"].step()

    parts = {
        "teacher forward (no_grad)": lambda: torch.no_grad()(method.teacher)(lq),
        "negative inputs": lambda: method.negatives(lq),
        "history model on the negatives (no_grad)": lambda: torch.no_grad()(method.history.network)(negatives_input),
        "VQGAN frozen pass on [T(x), negatives] (no_grad)": frozen_vqgan,
        "student forward (no_grad)": student_forward,
        "student forward + backward": student_forward_backward,
        "student + anchor VQGAN forward + backward": anchor_forward_backward,
        "optimizer step": optimizer_step,
    }
    return {name: dict(zip(("wall_ms", "cpu_ms"), timed(part, repeats))) for name, part in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=400, help="the demo setting's run length (history schedule)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15, help="timed iterations per method (interleaved)")
    parser.add_argument("--part-repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--revision-label", default="", help="what was measured (e.g. a commit)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an option of the runs")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)

    states = {method: setting(method, arguments) for method in METHODS}
    for state in states.values():
        for _ in range(arguments.warmup):
            iteration(state)
    times: dict[str, list[tuple[float, float]]] = {method: [] for method in METHODS}
    for _ in range(arguments.rounds):
        for method, state in states.items():
            wall, cpu = clock()
            iteration(state)
            wall_end, cpu_end = clock()
            times[method].append((1000 * (wall_end - wall), 1000 * (cpu_end - cpu)))
    summary = {
        method: {"wall_ms": statistics.median(w for w, _ in values), "cpu_ms": statistics.median(c for _, c in values)}
        for method, values in times.items()
    }
    for method in METHODS:
        for unit in ("wall_ms", "cpu_ms"):
            summary[method][f"{unit}_ratio_to_scratch"] = summary[method][unit] / summary["scratch"][unit]
    parts = dckd_parts(states["dckd"], arguments.part_repeats)

    document = {
        "benchmark": "benchmarks/demo_step.py",
        "date": datetime.date.today().isoformat(),
        "revision": arguments.revision_label,
        "device": {
            "cpu": platform.processor() or platform.machine(),
            "model": _cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "setting": {
            "scale": arguments.scale,
            "batch_size": arguments.batch_size,
            "lq_patch": arguments.patch,
            "run_iterations": arguments.iterations,
            "rounds": arguments.rounds,
            "overrides": list(arguments.set),
        },
        "iteration": summary,
        "dckd_parts": parts,
    }
    print(f"{document['device']['model']}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for method, values in summary.items():
        print(
            f"{method:<8} {values['wall_ms']:8.1f} ms wall ({values['wall_ms_ratio_to_scratch']:.2f}x scratch)  "
            f"{values['cpu_ms']:8.1f} ms CPU ({values['cpu_ms_ratio_to_scratch']:.2f}x)"
        )
    print("DCKD parts (each on its own):")
    for name, values in parts.items():
        print(f"  {name:<50} {values['wall_ms']:8.1f} ms wall {values['cpu_ms']:8.1f} ms CPU")
    if arguments.out:
        Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.out).write_text(json.dumps(document, indent=2) + "\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
