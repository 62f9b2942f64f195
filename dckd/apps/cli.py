"""The ``dckd`` command: train, test, infer, export, profile, compare, models, selfcheck, demo, train-codebook,
cache-teacher, check-data.

Every command is a thin layer over the engine and the evaluation functions. User errors (a bad option, a
missing file, a checkpoint that does not fit, a broken image) print one ``error: ...`` paragraph and exit
with status 2; ``dckd infer`` and ``dckd check-data`` exit with status 1 when they finished but some inputs
were bad (listed); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dckd.apps import export
from dckd.apps.compare import add_compare_arguments, run_compare
from dckd.apps.demo import add_demo_arguments, run_demo_command
from dckd.apps.inference import (
    add_infer_options,
    add_network_choice_options,
    add_network_options,
    evaluate_as_asked,
    load_chosen_network,
    network_for_inference,
    plan_test,
    run_infer,
)
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
from dckd.eval import profile, selfcheck
from dckd.eval.model_table import model_table
from dckd.eval.report import dataset_from_folder, write_results
from dckd.eval.restoration import evaluation_protocol
from dckd.files.paths import resolve_path

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


def _add_export(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="write a network as safetensors, ONNX or TorchScript, checked against PyTorch",
        description="Export weights to safetensors (with the network's description), ONNX (dynamic batch, "
        "height and width) or TorchScript. ONNX and TorchScript files are run on crops of a bundled photo at "
        "several sizes and compared with PyTorch; the file is written only when the largest difference is "
        f"within the tolerance ({export.TOLERANCE['float32']:.0e} float32, {export.TOLERANCE['float16']:.0e} "
        "with --half). ONNX needs `pip install 'dckd[export]'`.",
    )
    parser.add_argument("weights", help="weights file (dckd weights.pth, an official .pth, .safetensors)")
    parser.add_argument("out", help="file to write (.safetensors, .onnx, or .pt for TorchScript)")
    parser.add_argument("--format", choices=tuple(export.FORMATS), help="default: from OUT's ending")
    parser.add_argument("--half", action="store_true", help="float16 weights / graph (float16 input and output)")
    parser.add_argument(
        "--opset", type=int, help=f"ONNX opset (default {export.DEFAULT_OPSET['torchscript']}; dynamo: 18)"
    )
    parser.add_argument(
        "--exporter",
        choices=export.EXPORTERS,
        default="torchscript",
        help="ONNX exporter: torch.onnx.export's TorchScript-based one (default) or dynamo (needs onnxscript)",
    )
    parser.add_argument("--tolerance", type=float, help="largest accepted difference to PyTorch (default: above)")
    parser.add_argument(
        "--layout",
        choices=("dckd", "original"),
        default="dckd",
        help="safetensors key layout: dckd (BasicSR's, default) or original (the architecture's original code, "
        "which spandrel, chaiNNer and ComfyUI read; RCAN differs)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    add_network_choice_options(parser)


def _add_profile(commands) -> None:
    parser = commands.add_parser(
        "profile",
        help="student against teacher: parameters, multiply-adds, latency, peak memory, PSNR/SSIM",
        description="Measure networks side by side at one input size (batch 1): parameters, multiply-adds, "
        "median latency after warm-up, peak tensor memory of a forward pass, and PSNR/SSIM on --data. Prints "
        "a table; with --output writes profile.json, profile.md and profile.png (latency against quality).",
    )
    parser.add_argument("networks", nargs="+", metavar="WEIGHTS", help="weights files: the student, then teachers")
    parser.add_argument("--labels", help="comma-separated names for the table (default: from the file names)")
    parser.add_argument("--data", help="dataset for PSNR/SSIM (a folder as for `dckd test`, or bundled:test)")
    parser.add_argument("--task", choices=("sr", "deblur", "derain"), default="sr")
    parser.add_argument("--size", default="64x64", help="input HxW for latency, memory and multiply-adds")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's, printed in the table)")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes per network (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed forward passes before timing")
    parser.add_argument("--output", help="folder for profile.json, profile.md and profile.png")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files in --output")
    add_network_choice_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dckd", description="Dynamic Contrastive Knowledge Distillation toolkit")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_train(commands)
    _add_test(commands)
    _add_infer(commands)
    _add_export(commands)
    _add_profile(commands)
    add_compare_arguments(
        commands.add_parser(
            "compare", help="several runs of several methods on test sets: mean ± std, paired differences"
        )
    )
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
        result = evaluate_as_asked(
            loaded.network, dataset, scale, device, y_channel, crop_border, arguments, bool(arguments.save_images)
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
        result = evaluate_as_asked(
            network, dataset, options.scale, device, y_channel, crop_border, arguments, bool(arguments.save_images)
        )
        rows.append((dataset.name, result))
    write_results(rows, arguments, y_channel, crop_border, options.scale, plan)
    return 0


def _command_export(arguments) -> int:
    output = Path(arguments.out)
    if output.exists() and output.resolve() == resolve_path(arguments.weights).resolve():
        raise DckdError(f"{arguments.out} is the weights file being exported; write the export to another file")
    if arguments.tlc and export.format_for(output, arguments.format) == "safetensors":
        raise DckdError(
            "--tlc changes no weight: a safetensors file holds the plain network; pass --tlc to `dckd test` / "
            "`dckd infer` when loading it (ONNX and TorchScript exports build TLC into the graph)"
        )
    loaded = load_chosen_network(arguments.weights, arguments)
    export.export_network(
        loaded.network,
        output,
        arguments.format,
        record={"backbone": loaded.backbone, "options": loaded.options, "scale": loaded.scale},
        half=arguments.half,
        opset=arguments.opset,
        exporter=arguments.exporter,
        tolerance=arguments.tolerance,
        overwrite=arguments.overwrite,
        layout=arguments.layout,
    )
    return 0


def _size(text: str, option: str) -> tuple[int, int]:
    try:
        height, width = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise DckdError(f"{option} {text!r}: expected HxW, e.g. 64x64") from None
    if height < 1 or width < 1:
        raise DckdError(f"{option} {text!r}: height and width must be positive")
    return height, width


def _label(weights: str) -> str:
    """A short table name for a weights file: its stem, or its run folder's name for ``weights.pth``."""
    path = resolve_path(weights)
    return path.parent.name if path.stem == "weights" and path.parent.name else path.stem


def _command_profile(arguments) -> int:
    size = _size(arguments.size, "--size")
    labels = arguments.labels.split(",") if arguments.labels else [_label(path) for path in arguments.networks]
    if len(labels) != len(arguments.networks):
        raise DckdError(f"--labels names {len(labels)} networks, but {len(arguments.networks)} weights files are given")
    if arguments.output:
        existing = [name for name in profile.REPORT_FILES if (Path(arguments.output) / name).exists()]
        if existing and not arguments.overwrite:
            raise DckdError(f"{arguments.output} already holds {', '.join(existing)}; pass --overwrite to replace")
    if arguments.threads is not None:
        if arguments.threads < 1:
            raise DckdError(f"--threads {arguments.threads}: expected 1 or more")
        torch.set_num_threads(arguments.threads)
    device = resolve_device(arguments.device)
    loaded = [load_chosen_network(path, arguments) for path in arguments.networks]
    networks = [entry.network for entry in loaded]
    dataset = None
    if arguments.data:
        scales = {entry.scale for entry in loaded}
        if len(scales) != 1:
            raise DckdError(f"--data needs networks of one scale; these have scales {sorted(scales)}")
        dataset = dataset_from_folder(arguments.data, scales.pop(), arguments.task)
    report = profile.profile_networks(
        networks,
        labels,
        dataset,
        input_size=size,
        device=device,
        repeats=arguments.repeats,
        warmup=arguments.warmup,
        task=arguments.task,
    )
    print(profile.format_table(report))
    if arguments.output:
        for path in profile.write_profile(report, arguments.output, overwrite=arguments.overwrite):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _command_models(arguments) -> int:
    height, width = _size(arguments.input_size, "--input-size")
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
    "export": _command_export,
    "profile": _command_profile,
    "compare": run_compare,
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
