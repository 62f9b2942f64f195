"""The ``dckd`` command: train, test, infer, models, selfcheck, demo, train-codebook, cache-teacher, check-data.

Every command is a thin layer over the engine and the evaluation functions. User errors (a bad option, a
missing file, a checkpoint that does not fit, a broken image) print one ``error: ...`` paragraph and exit
with status 2; ``dckd infer`` and ``dckd check-data`` exit with status 1 when they finished but some inputs
were bad (listed); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dckd.apps.demo import add_demo_arguments, run_demo_command
from dckd.apps.inference import add_infer_options, add_network_options, network_for_inference, plan_test, run_infer
from dckd.apps.train_codebook import add_train_codebook_arguments, run_train_codebook_command
from dckd.config import dump_yaml, read_config
from dckd.config.loading import read_yaml
from dckd.config.published import is_published_test_options
from dckd.config.reading import read_test_options
from dckd.data.validate import validate_dataset
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.setup import build_dataset, build_network, resolve_network_sources
from dckd.engine.teacher_cache import build_cache
from dckd.errors import DckdError, NonFiniteLossError
from dckd.eval import selfcheck
from dckd.eval.model_table import model_table
from dckd.eval.report import dataset_from_folder, write_results
from dckd.eval.restoration import evaluate_dataset, evaluation_protocol

OPTIONS_SUFFIXES = (".yml", ".yaml")
"""``dckd test FILE`` with one of these suffixes reads a BasicSR test options file."""


def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train a network (any method) from a YAML config",
        description="Train from a dckd YAML config or a published DCKD/BasicSR options file.",
    )
    parser.add_argument("config", help="YAML config (configs/...) or a BasicSR options file of the published code")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, e.g. --set dckd.contrastive_weight=0.1 (repeatable)",
    )
    parser.add_argument("--resume", help="resume from this checkpoint (default: newest valid one in the run folder)")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the resolved config, then stop")


def _add_test(commands) -> None:
    parser = commands.add_parser("test", help="evaluate weights on benchmark folders (PSNR/SSIM table)")
    parser.add_argument(
        "weights",
        help="weights file (dckd weights.pth, an official .pth, .safetensors), or a BasicSR test options file "
        "(.yml, e.g. the published test_SwinIR.yml: network, weights and test sets from the file)",
    )
    parser.add_argument(
        "datasets",
        nargs="*",
        help="dataset folders (Set5 layout HR/ + LR_bicubic/X4, or input/ + "
        "target/), or 'bundled' for the photographs shipped with dckd",
    )
    add_network_options(parser)
    parser.add_argument("--task", choices=("sr", "deblur", "derain"), default="sr")
    parser.add_argument(
        "--y-channel",
        choices=("auto", "yes", "no"),
        default="auto",
        help="metrics on Y (default: SR and deraining) or RGB (deblurring)",
    )
    parser.add_argument("--crop-border", type=int, default=None, help="default: the scale for SR, 0 otherwise")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--csv", help="write the results as CSV here")
    parser.add_argument("--save-images", help="write the restored images under this folder")


def _add_infer(commands) -> None:
    parser = commands.add_parser(
        "infer",
        help="restore a folder of images",
        description="Restore every image of INPUT_DIR into OUTPUT_DIR/<name>.png. Existing files are kept unless "
        "--overwrite; an image that cannot be read is listed at the end (exit status 1), the others are written.",
    )
    parser.add_argument("weights")
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    add_network_options(parser)
    add_infer_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dckd", description="Dynamic Contrastive Knowledge Distillation toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_test(commands)
    _add_infer(commands)
    models = commands.add_parser("models", help="list the network presets with parameters and multiply-adds")
    models.add_argument("--input-size", default="64x64", help="input HxW for the multiply-add count (default 64x64)")
    check = commands.add_parser("selfcheck", help="compare this implementation with official reference vectors")
    check.add_argument("directories", nargs="*", help="reference directories (default: the shipped set)")
    add_demo_arguments(
        commands.add_parser("demo", help="distill a student three ways on bundled photos, write a report")
    )
    add_train_codebook_arguments(commands.add_parser("train-codebook", help="train a VQGAN-style codebook on images"))
    cache = commands.add_parser("cache-teacher", help="precompute the teacher's outputs for a config's training set")
    cache.add_argument("config")
    cache.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    data_check = commands.add_parser("check-data", help="decode and check every file of a config's datasets")
    data_check.add_argument("config")
    data_check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def _command_train(arguments) -> int:
    config = read_config(arguments.config, arguments.overrides, check_files=not arguments.dry_run)
    if arguments.dry_run:
        print(dump_yaml(config), end="")
        return 0
    train(config, resume=arguments.resume)
    return 0


def _command_test(arguments) -> int:
    if Path(arguments.weights).suffix.lower() in OPTIONS_SUFFIXES:
        return _command_test_options(arguments)
    if not arguments.datasets:
        raise DckdError("dckd test WEIGHTS DATASET...: give at least one dataset folder (or 'bundled')")
    loaded, device = network_for_inference(arguments)
    scale = loaded.scale
    y_choice = {"auto": None, "yes": True, "no": False}[arguments.y_channel]
    y_channel, crop_border = evaluation_protocol(arguments.task, scale, y_choice, arguments.crop_border)
    datasets = [dataset_from_folder(folder, scale, arguments.task, arguments.alpha) for folder in arguments.datasets]
    plan = plan_test(arguments, datasets)
    rows = []
    for dataset in datasets:
        result = evaluate_dataset(
            loaded.network,
            dataset,
            scale,
            device,
            y_channel,
            crop_border,
            arguments.tile,
            arguments.tile_overlap,
            arguments.self_ensemble,
            arguments.precision,
            keep_outputs=bool(arguments.save_images),
        )
        rows.append((dataset.name, result))
    write_results(rows, arguments, y_channel, crop_border, scale, plan)
    return 0


def _command_test_options(arguments) -> int:
    """``dckd test OPTIONS.yml``: a BasicSR test file names the network, its weights, the sets and the metrics."""
    if not is_published_test_options(read_yaml(arguments.weights)):
        raise DckdError(
            f"{arguments.weights}: unsupported extension for a weights file (.pth, .pt, .ckpt, .safetensors, .bin), "
            "and it is not a BasicSR test options file (train with `dckd train` a config or a training options file)"
        )
    given = [
        flag
        for flag, value in (
            ("datasets", arguments.datasets),
            ("--preset", arguments.preset),
            ("--backbone", arguments.backbone),
            ("--options", arguments.options),
            ("--checkpoint-key", arguments.checkpoint_key),
            ("--scale", arguments.scale),
            ("--crop-border", arguments.crop_border),
            ("--y-channel", arguments.y_channel != "auto"),
        )
        if value
    ]
    if given:
        raise DckdError(
            f"{arguments.weights} names the network, weights, test sets and metrics; drop {', '.join(given)}"
        )
    options = read_test_options(arguments.weights)
    device = resolve_device(arguments.device)
    network = build_network(options.network, f"network of {arguments.weights}").to(device).eval()
    if int(getattr(network, "scale", options.scale)) != options.scale:
        raise DckdError(f"{arguments.weights}: scale {options.scale} but network_g upscales by {network.scale}")
    y_channel, crop_border = evaluation_protocol(options.task, options.scale, options.y_channel, options.crop_border)
    datasets = [build_dataset(spec, options.scale, None, False) for spec in options.datasets]
    plan = plan_test(arguments, datasets)
    rows = []
    for dataset in datasets:
        result = evaluate_dataset(
            network,
            dataset,
            options.scale,
            device,
            y_channel,
            crop_border,
            arguments.tile,
            arguments.tile_overlap,
            arguments.self_ensemble,
            arguments.precision,
            keep_outputs=bool(arguments.save_images),
        )
        rows.append((dataset.name, result))
    write_results(rows, arguments, y_channel, crop_border, options.scale, plan)
    return 0
    return 0


def _command_models(arguments) -> int:
    try:
        height, width = (int(value) for value in arguments.input_size.lower().split("x"))
    except ValueError:
        raise DckdError(f"--input-size {arguments.input_size!r}: expected HxW, e.g. 64x64") from None
    print(model_table(height, width))
    return 0


def _command_check_data(arguments) -> int:
    config = read_config(arguments.config, arguments.overrides)
    specs = ([(config.data.train, config.data.lq_patch_size, True)] if config.data.train else []) + [
        (spec, None, False) for spec in config.data.validation
    ]
    problems = 0
    for spec, patch, augment in specs:
        dataset = build_dataset(spec, config.data.scale, patch, augment, alpha=config.data.alpha)
        report = validate_dataset(dataset, workers=max(config.data.num_workers, 2))
        print(report.summary())
        problems += len(report.problems)
    return 0 if problems == 0 else 1


def _command_cache_teacher(arguments) -> int:
    config = read_config(arguments.config, arguments.overrides)
    if config.teacher is None or config.data.train is None:
        raise DckdError(f"{arguments.config}: a teacher and data.train are needed to build a teacher-output cache")
    config = resolve_network_sources(config)
    dataset = build_dataset(
        config.data.train, config.data.scale, None, False, config.train.seed, alpha=config.data.alpha
    )
    directory = build_cache(
        config, dataset, resolve_device(config.train.device), say=lambda text: print(text, file=sys.stderr)
    )
    print(directory)
    return 0


COMMANDS = {
    "train": _command_train,
    "test": _command_test,
    "infer": run_infer,
    "models": _command_models,
    "selfcheck": lambda arguments: selfcheck.main(arguments.directories),
    "demo": run_demo_command,
    "train-codebook": run_train_codebook_command,
    "cache-teacher": _command_cache_teacher,
    "check-data": _command_check_data,
}


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return COMMANDS[arguments.command](arguments)
    except NonFiniteLossError as error:
        print(f"stopped: {error}", file=sys.stderr)
        return 3
    except (DckdError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
