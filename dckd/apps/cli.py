"""The ``dckd`` command: train, test, infer, models, selfcheck, demo, train-codebook, cache-teacher, check-data.

Every command is a thin layer over the engine and the evaluation functions. User errors (a bad option, a
missing file, a checkpoint that does not fit, a broken image) print one ``error: ...`` paragraph and exit
with status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dckd.apps.demo import add_demo_arguments, run_demo_command
from dckd.apps.train_codebook import add_train_codebook_arguments, run_train_codebook_command
from dckd.config import dump_yaml, read_config
from dckd.config.reading import read_test_options
from dckd.data import list_images, read_image, write_image
from dckd.data.transforms import to_tensor
from dckd.data.validate import validate_dataset
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.setup import build_dataset, build_network, network_from_weights
from dckd.engine.teacher_cache import build_cache
from dckd.errors import DckdError, NonFiniteLossError
from dckd.eval import selfcheck
from dckd.eval.model_table import model_table
from dckd.eval.report import dataset_from_folder, write_results
from dckd.eval.restoration import evaluate_dataset, evaluation_protocol, restore
from dckd.models.backbones.nafnet import NAFNet, to_local

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
    _add_network_options(parser)
    parser.add_argument("--scale", type=int, default=None, help="SR scale (default: the network's)")
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
    parser = commands.add_parser("infer", help="restore a folder of images")
    parser.add_argument("weights")
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    _add_network_options(parser)


def _add_network_options(parser) -> None:
    parser.add_argument("--preset", help="architecture of an official checkpoint (see `dckd models`)")
    parser.add_argument("--checkpoint-key", help="entry of a wrapped checkpoint (default: params_ema, params, ...)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--tile", type=int, default=0, help="restore in tiles of this input size (0: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=32)
    parser.add_argument("--self-ensemble", action="store_true", help="x8 self-ensemble")
    parser.add_argument(
        "--tlc",
        type=int,
        default=0,
        metavar="TRAIN_SIZE",
        help="NAFNet: test-time local converter for this training crop size (e.g. 256)",
    )


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


def _network_for_inference(arguments):
    device = resolve_device(arguments.device)
    network = network_from_weights(arguments.weights, preset=arguments.preset, key=arguments.checkpoint_key)
    if arguments.tlc:
        if not isinstance(network, NAFNet):
            raise DckdError(f"--tlc is for NAFNet networks; {arguments.weights} holds a {type(network).__name__}")
        size = arguments.tlc
        network = to_local(network, train_size=(1, 3, size, size))
    return network.to(device).eval(), device


def _command_test(arguments) -> int:
    if Path(arguments.weights).suffix.lower() in OPTIONS_SUFFIXES:
        return _command_test_options(arguments)
    if not arguments.datasets:
        raise DckdError("dckd test WEIGHTS DATASET...: give at least one dataset folder (or 'bundled')")
    network, device = _network_for_inference(arguments)
    scale = arguments.scale or int(getattr(network, "scale", 1))
    y_choice = {"auto": None, "yes": True, "no": False}[arguments.y_channel]
    y_channel, crop_border = evaluation_protocol(arguments.task, scale, y_choice, arguments.crop_border)
    rows = []
    for folder in arguments.datasets:
        dataset = dataset_from_folder(folder, scale, arguments.task)
        result = evaluate_dataset(
            network,
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
    write_results(rows, arguments, y_channel, crop_border, scale)
    return 0


def _command_test_options(arguments) -> int:
    """``dckd test OPTIONS.yml``: a BasicSR test file names the network, its weights, the sets and the metrics."""
    given = [
        flag
        for flag, value in (
            ("datasets", arguments.datasets),
            ("--preset", arguments.preset),
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
    rows = []
    for spec in options.datasets:
        dataset = build_dataset(spec, options.scale, None, False)
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
    write_results(rows, arguments, y_channel, crop_border, options.scale)
    return 0


def _command_infer(arguments) -> int:
    network, device = _network_for_inference(arguments)
    scale = int(getattr(network, "scale", 1))
    output_dir = Path(arguments.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    images = list_images(arguments.input_dir)
    for number, path in enumerate(images, start=1):
        lq = to_tensor(read_image(path)).unsqueeze(0).to(device)
        restored = restore(
            network, lq, scale, arguments.tile, arguments.tile_overlap, arguments.self_ensemble, arguments.precision
        )[0].cpu()
        write_image(output_dir / (path.stem + ".png"), restored)
        print(f"[{number}/{len(images)}] {path.name} -> {output_dir / (path.stem + '.png')}", file=sys.stderr)
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
        dataset = build_dataset(spec, config.data.scale, patch, augment)
        report = validate_dataset(dataset, workers=max(config.data.num_workers, 2))
        print(report.summary())
        problems += len(report.problems)
    return 0 if problems == 0 else 1


def _command_cache_teacher(arguments) -> int:
    config = read_config(arguments.config, arguments.overrides)
    if config.teacher is None or config.data.train is None:
        raise DckdError(f"{arguments.config}: a teacher and data.train are needed to build a teacher-output cache")
    dataset = build_dataset(config.data.train, config.data.scale, None, False, config.train.seed)
    directory = build_cache(
        config, dataset, resolve_device(config.train.device), say=lambda text: print(text, file=sys.stderr)
    )
    print(directory)
    return 0


COMMANDS = {
    "train": _command_train,
    "test": _command_test,
    "infer": _command_infer,
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
