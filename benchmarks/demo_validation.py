"""One demo training run scored on the bundled *validation* photos: how the demo's settings were chosen.

    python benchmarks/demo_validation.py --method dckd --name dckd_start100 \\
        --set dckd.contrastive_start_iters=100 --out benchmarks/results/<date>_cpu_demo_validation.jsonl

Trains exactly as ``dckd demo`` does (its config; ``--set`` overrides; ``--codebook`` another codebook file),
validating on the bundled validation photos four times per run, never on the test photos. Appends one JSON
record to ``--out``: the validation PSNR curve, and the mean training L1 to the ground truth (the
``reconstruction`` term, as logged every ``iterations / 40``) over iterations 51-100, 101-200 and 301-400
(scaled to ``--iterations``), the early-phase measure of docs/demo.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

from dckd.apps.demo import codebook_path, demo_config, teacher_path
from dckd.engine.loop import train
from dckd.engine.run_log import read_log


def training_l1(records: list[dict], first: int, last: int) -> float | None:
    """Mean of the logged ``reconstruction`` values with first < iteration <= last."""
    values = [record["reconstruction"] for record in records if first < record["iter"] <= last]
    return sum(values) / len(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="scratch", help="scratch, logits, dckd, ...")
    parser.add_argument("--name", required=True, help="the run's name (its folder under --runs)")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--codebook", help="codebook file (default: the shipped one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: two runs side by side)")
    parser.add_argument("--runs", default="runs/demo_validation", help="folder for the run folders")
    parser.add_argument("--out", required=True, help="JSON-lines file the record is appended to")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    iterations = arguments.iterations
    config = demo_config(
        arguments.method,
        4,
        iterations,
        arguments.seed,
        Path(arguments.runs) / arguments.name,
        arguments.batch_size,
        arguments.patch,
        "cpu",
        teacher_path(4),
        Path(arguments.codebook) if arguments.codebook else codebook_path(),
        arguments.set,
        validate_every=max(iterations // 4, 1),
    )
    start = time.monotonic()
    run = train(config)
    seconds = time.monotonic() - start
    records = read_log(run / "log.jsonl")
    training = [record for record in records if "reconstruction" in record]
    curve = [
        (record["iter"], round(next(iter(record["validation"].values()))["psnr"], 3))
        for record in records
        if "validation" in record
    ]
    scale = iterations / 400
    windows = {"51-100": (50, 100), "101-200": (100, 200), "301-400": (300, 400)}
    record = {
        "name": arguments.name,
        "method": arguments.method,
        "seed": arguments.seed,
        "iterations": iterations,
        "set": arguments.set,
        "codebook": arguments.codebook or "shipped",
        "date": datetime.date.today().isoformat(),
        "seconds": round(seconds, 1),
        "val_curve": curve,
        "val_final": curve[-1][1],
        "train_l1": {
            label: training_l1(training, round(first * scale), round(last * scale))
            for label, (first, last) in windows.items()
        },
    }
    print(json.dumps(record))
    with open(arguments.out, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
