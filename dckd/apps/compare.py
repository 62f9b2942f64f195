"""``dckd compare``: several runs of several methods on the same test sets, with statistics.

    dckd compare bundled:test --runs Scratch=runs/s0/weights.pth,runs/s1/weights.pth \\
                              --runs DCKD=runs/d0/weights.pth,runs/d1/weights.pth

Every weights file is evaluated exactly as ``dckd test`` evaluates it (the same network loading, protocol and
options). Per method: mean +- std over its runs; for every pair of methods (a later ``--runs`` against an
earlier one): the paired PSNR difference over runs (run i of one method with run i of the other, so list
the runs of every method in the same seed order) and over photos, each with its 95% interval, marked where the
interval excludes 0 (``dckd.eval.comparison``). It prints the tables; ``--json`` / ``--markdown`` write them
(never over an existing file without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dckd.apps.inference import add_network_options, evaluate_as_asked, load_chosen_network
from dckd.engine.distributed import resolve_device
from dckd.errors import ConfigError
from dckd.eval import comparison
from dckd.eval.report import dataset_from_folder
from dckd.eval.restoration import evaluation_protocol
from dckd.files.outputs import OutputPlan
from dckd.files.paths import resolve_path


def parse_group(text: str) -> tuple[str, list[str]]:
    """``LABEL=W1,W2,...`` -> (label, [weights files])."""
    label, separator, files = text.partition("=")
    label = label.strip()
    paths = [path.strip() for path in files.split(",")] if separator else []
    if not separator or not label or not paths or any(not path for path in paths):
        raise argparse.ArgumentTypeError(f"expected LABEL=WEIGHTS[,WEIGHTS...], got {text!r}")
    return label, paths


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("datasets", nargs="+", help="dataset folders as for `dckd test`, or bundled[:test|val]")
    parser.add_argument(
        "--runs",
        type=parse_group,
        action="append",
        required=True,
        metavar="LABEL=WEIGHTS[,WEIGHTS...]",
        help="one method and its runs (one weights file per seed, in the same seed order for every method); "
        "repeat for every method; later methods are compared with earlier ones",
    )
    add_network_options(parser)
    parser.add_argument("--task", choices=("sr", "deblur", "derain"), default="sr")
    parser.add_argument("--y-channel", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--crop-border", type=int, default=None, help="default: the scale for SR, 0 otherwise")
    parser.add_argument("--json", help="write the statistics as JSON here")
    parser.add_argument("--markdown", help="write the tables as Markdown here")


def _check_groups(groups: list[tuple[str, list[str]]]) -> None:
    labels = [label for label, _ in groups]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"--runs: the label(s) {repeated} are given more than once; one --runs per method")
    seen: dict[Path, str] = {}
    for label, paths in groups:
        for path in paths:
            resolved = resolve_path(path).resolve()
            if resolved in seen:
                raise ConfigError(
                    f"--runs: {path} is listed twice ({seen[resolved]} and {label}); a run is counted once"
                )
            seen[resolved] = label


def run_compare(arguments) -> int:
    groups = arguments.runs
    _check_groups(groups)
    if arguments.tile and arguments.tile_overlap >= arguments.tile:
        raise ConfigError(f"--tile-overlap {arguments.tile_overlap} must be smaller than --tile {arguments.tile}")
    device = resolve_device(arguments.device)
    # Every file is loaded (and checked) before any evaluation; the networks move to the device one at a time.
    networks = {label: [(path, load_chosen_network(path, arguments)) for path in paths] for label, paths in groups}
    scales = {(path, loaded.scale) for runs in networks.values() for path, loaded in runs}
    if len({scale for _, scale in scales}) != 1:
        listed = ", ".join(f"{path}: x{scale}" for path, scale in sorted(scales))
        raise ConfigError(f"--runs: the networks do not share one scale ({listed}); compare networks of one task")
    scale = next(iter(scales))[1]
    y_choice = {"auto": None, "yes": True, "no": False}[arguments.y_channel]
    y_channel, crop_border = evaluation_protocol(arguments.task, scale, y_choice, arguments.crop_border)
    datasets = [dataset_from_folder(folder, scale, arguments.task, arguments.alpha) for folder in arguments.datasets]

    plan = OutputPlan(overwrite=arguments.overwrite)
    plan.protect([path for _, paths in groups for path in paths], "a weights file")
    for dataset in datasets:
        plan.protect([path for path in [*dataset.gt_paths, *dataset.lq_paths] if path is not None], "an input image")
    for option in ("json", "markdown"):
        if getattr(arguments, option):
            plan.file(Path(getattr(arguments, option)), f"--{option}")
    plan.check()

    evaluations, text = {}, []
    for dataset in datasets:
        per_run: dict[str, list[dict]] = {}
        for label, runs in networks.items():
            for path, loaded in runs:
                network = loaded.network.to(device)
                result = evaluate_as_asked(network, dataset, scale, device, y_channel, crop_border, arguments)
                loaded.network = network.cpu()
                images = [{"name": score.name, "psnr": score.psnr, "ssim": score.ssim} for score in result["images"]]
                per_run.setdefault(label, []).append(
                    {"seed": path, "psnr": result["psnr"], "ssim": result["ssim"], "images": images}
                )
        statistics = comparison.method_statistics(per_run)
        labels = list(statistics)
        differences = comparison.differences(statistics, labels, labels)
        evaluations[dataset.name] = {"photos": len(dataset), "methods": statistics, "differences": differences}
        text.append(comparison.markdown(dataset.name, len(dataset), statistics, differences))
    protocol = f"PSNR/SSIM on {'Y' if y_channel else 'RGB'}, border {crop_border}, x{scale}"
    tables = f"{protocol}\n\n" + "\n".join(text)
    print(tables)
    document = {
        "protocol": {"y_channel": y_channel, "crop_border": crop_border, "scale": scale},
        "runs": dict(groups),
        "evaluations": evaluations,
    }
    if arguments.json:
        plan.write(Path(arguments.json), lambda path: path.write_text(json.dumps(document, indent=2)))
    if arguments.markdown:
        plan.write(Path(arguments.markdown), lambda path: path.write_text(tables))
    return 0
