"""``dckd test`` and ``dckd infer``: the network a user names, where results go, and ``infer``'s batch.

The network: a dckd ``weights.pth`` says which of dckd's backbones it holds; anything else is named by the
user (``--preset``, or ``--backbone package.module:Class --options '{...}' --scale N`` for their own class).
Its scale is checked against every output (``dckd.eval.restoration.check_output_size``).

Results: every output path is planned and checked before any work (``dckd.files.outputs.OutputPlan``): no
input, weights file or existing file is replaced unless ``--overwrite`` is given, and two inputs never share
one output name. ``infer`` writes every image it can, lists each one it could not restore with the reason,
and exits with status 1 when there was any.

Colour and depth of ``infer``'s results: networks see RGB; ``--color auto`` (default) writes a grayscale
result for a grayscale input (the mean of the network's three channels) and RGB otherwise; ``--bit-depth
auto`` (default) writes 16-bit PNG for a 16-bit input and 8-bit otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dckd.data import list_images
from dckd.data.image_io import decode_image, image_encoder
from dckd.engine.distributed import resolve_device
from dckd.engine.setup import LoadedNetwork, load_weights_network
from dckd.errors import ConfigError, ImageReadError
from dckd.eval.restoration import evaluate_dataset, restore
from dckd.files.outputs import OutputPlan
from dckd.models.backbones.nafnet import NAFNet, to_local


def add_network_choice_options(parser: argparse.ArgumentParser) -> None:
    """Which network a weights file holds: the options of every command that loads one (test, infer, export,
    profile)."""
    parser.add_argument("--preset", help="architecture of an official checkpoint (see `dckd models`)")
    parser.add_argument(
        "--backbone",
        help="architecture of a plain state_dict: a dckd backbone (swinir, rcan, edsr, nafnet, restormer) or your "
        "own class as package.module:Class (importable: installed, on PYTHONPATH, or run `python -m dckd`)",
    )
    parser.add_argument(
        "--options",
        type=_json_object,
        help="constructor arguments as a JSON object, e.g. '{\"num_feat\": 64}' (with --backbone or --preset)",
    )
    parser.add_argument("--scale", type=_positive_int, help="output size / input size (checked on every output)")
    parser.add_argument("--checkpoint-key", help="entry of a wrapped checkpoint (default: params_ema, params, ...)")
    parser.add_argument(
        "--tlc",
        type=_non_negative_int,
        default=0,
        metavar="TRAIN_SIZE",
        help="NAFNet: test-time local converter for this training crop size (e.g. 256)",
    )


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``dckd test`` and ``dckd infer``: which network, how to run it, how to treat inputs."""
    add_network_choice_options(parser)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument(
        "--tile", type=_non_negative_int, default=0, help="restore in tiles of this input size (0: off)"
    )
    parser.add_argument("--tile-overlap", type=_non_negative_int, default=32)
    parser.add_argument("--self-ensemble", action="store_true", help="x8 self-ensemble")
    parser.add_argument(
        "--alpha",
        choices=("error", "drop"),
        default="error",
        help="images with transparent pixels: error (default) or drop the alpha channel",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing result files")


def add_infer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=("auto", "rgb", "gray"),
        default="auto",
        help="auto (default): grayscale results for grayscale inputs, RGB otherwise",
    )
    parser.add_argument(
        "--bit-depth",
        choices=("auto", "8", "16"),
        default="auto",
        help="auto (default): 16-bit PNG for 16-bit inputs, 8-bit otherwise",
    )


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}); e.g. '{{\"num_feat\": 64}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object of constructor arguments, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def load_chosen_network(weights: str, arguments) -> LoadedNetwork:
    """The network in ``weights`` as the network choice options say (``add_network_choice_options``), in eval
    mode; ``--tlc`` applied."""
    loaded = load_weights_network(
        weights,
        preset=arguments.preset,
        backbone=arguments.backbone,
        options=arguments.options,
        key=arguments.checkpoint_key,
        scale=arguments.scale,
    )
    network = loaded.network
    if arguments.tlc:
        if not isinstance(network, NAFNet):
            raise ConfigError(f"--tlc is for NAFNet networks; {weights} holds a {type(network).__name__}")
        size = arguments.tlc
        network = to_local(network, train_size=(1, 3, size, size))
    loaded.network = network.eval()
    return loaded


def network_for_inference(arguments) -> tuple[LoadedNetwork, torch.device]:
    """The network the arguments name, in eval mode on its device; option combinations checked first."""
    if arguments.tile and arguments.tile_overlap >= arguments.tile:
        raise ConfigError(f"--tile-overlap {arguments.tile_overlap} must be smaller than --tile {arguments.tile}")
    device = resolve_device(arguments.device)
    loaded = load_chosen_network(arguments.weights, arguments)
    loaded.network = loaded.network.to(device)
    return loaded, device


def evaluate_as_asked(
    network, dataset, scale: int, device, y_channel: bool, crop_border: int, arguments, keep_outputs=False
):
    """``evaluate_dataset`` with the run options of ``add_network_options`` (tiles, self-ensemble, precision)."""
    return evaluate_dataset(
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
        keep_outputs=keep_outputs,
    )


def plan_infer(arguments) -> tuple[OutputPlan, list[tuple[Path, Path]]]:
    """(plan, [(input image, result path)]): the results of ``dckd infer``, checked before any work."""
    images = list_images(arguments.input_dir)
    output_dir = Path(arguments.output_dir)
    plan = OutputPlan(overwrite=arguments.overwrite)
    plan.protect([arguments.weights], "the weights file")
    plan.protect(images, "the input image")
    plan.folder(output_dir, inputs=arguments.input_dir)
    jobs = [(image, plan.file(output_dir / f"{image.stem}.png", image.name, root=output_dir)) for image in images]
    plan.check()
    return plan, jobs


def run_infer(arguments) -> int:
    """``dckd infer``: see the module docstring. Returns 0, or 1 when some images could not be restored."""
    plan, jobs = plan_infer(arguments)
    loaded, device = network_for_inference(arguments)
    failures: list[tuple[Path, str]] = []
    for number, (image_path, result_path) in enumerate(jobs, start=1):
        try:
            decoded = decode_image(image_path, alpha=arguments.alpha)
        except ImageReadError as error:
            failures.append((image_path, error.reason or str(error)))
            print(f"[{number}/{len(jobs)}] {image_path.name}: skipped ({error.reason or error})", file=sys.stderr)
            continue
        scale = float(2**decoded.bit_depth - 1)
        lq = torch.from_numpy(decoded.pixels.astype("float32") / scale).permute(2, 0, 1).unsqueeze(0).to(device)
        restored = restore(
            loaded.network,
            lq,
            loaded.scale,
            arguments.tile,
            arguments.tile_overlap,
            arguments.self_ensemble,
            arguments.precision,
        )[0].cpu()
        gray = arguments.color == "gray" or (arguments.color == "auto" and decoded.grayscale)
        if gray and restored.shape[0] == 3:
            restored = restored.mean(dim=0, keepdim=True)
        elif not gray and restored.shape[0] == 1:
            restored = restored.expand(3, -1, -1)
        bit_depth = decoded.bit_depth if arguments.bit_depth == "auto" else int(arguments.bit_depth)
        plan.write(result_path, image_encoder(result_path, restored, bit_depth))
        print(f"[{number}/{len(jobs)}] {image_path.name} -> {result_path}", file=sys.stderr)
    if failures:
        listed = "\n  ".join(f"{path}: {reason}" for path, reason in failures)
        print(
            f"error: {len(failures)} of {len(jobs)} images could not be restored (the other results were "
            f"written):\n  {listed}",
            file=sys.stderr,
        )
        return 1
    return 0


def plan_test(arguments, datasets) -> OutputPlan:
    """The files ``dckd test`` will write (``--json``, ``--csv``, ``--save-images``), checked before any work."""
    plan = OutputPlan(overwrite=arguments.overwrite)
    plan.protect([arguments.weights], "the weights file")
    for dataset in datasets:
        plan.protect([path for path in [*dataset.gt_paths, *dataset.lq_paths] if path is not None], "an input image")
    for option in ("json", "csv"):
        value = getattr(arguments, option)
        if value:
            plan.file(Path(value), f"--{option}")
    if arguments.save_images:
        root = plan.folder(arguments.save_images)
        for dataset in datasets:
            for name in dataset.sample_names:
                plan.file(root / dataset.name / f"{name}.png", f"{dataset.name}/{name}", root=root)
    plan.check()
    return plan


__all__ = [
    "add_infer_options",
    "add_network_options",
    "evaluate_as_asked",
    "network_for_inference",
    "plan_test",
    "run_infer",
]
