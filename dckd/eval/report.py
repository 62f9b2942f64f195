"""``dckd test`` helpers: datasets from folders, and the results table (console, JSON, CSV, images)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from dckd import data
from dckd.data.bundled import bundled_dataset
from dckd.data.image_io import image_encoder
from dckd.files.outputs import OutputPlan


def dataset_from_folder(folder: str, scale: int, task: str, alpha: str = "error"):
    """A whole-image evaluation dataset from a folder in one of the official layouts.

    ``bundled`` / ``bundled:test`` / ``bundled:val`` / ``bundled:train``: the photographs shipped with dckd. A folder with
    ``HR/``: the SR benchmark layout (Set5 ...). A folder with ``input/`` and ``target/``: deraining sets,
    flattened GoPro. A folder with ``test/`` holding GoPro sequences: GoPro test. ``alpha``: the policy for
    transparent pixels (``error`` or ``drop``).
    """
    options = dict(lq_patch_size=None, augment=False, alpha=alpha)
    if folder.startswith("bundled"):
        split = folder.split(":", 1)[1] if ":" in folder else "test"
        return bundled_dataset(split, scale, **options)
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if (root / "HR").is_dir():
        return data.sr_benchmark(root, scale, **options)
    if (root / "input").is_dir() and (root / "target").is_dir():
        return data.input_target(root, **options)
    if (root / "test").is_dir() and task == "deblur":
        return data.gopro(root, "test", **options)
    raise FileNotFoundError(
        f"{root}: not a known layout; expected HR/ (+ LR_bicubic/X{scale}/), input/ + target/, or GoPro's test/"
    )


def write_results(rows, arguments, y_channel: bool, crop_border: int, scale: int, plan: OutputPlan) -> None:
    """Print a table per dataset and the summary; write JSON / CSV / images when asked, to the paths ``plan``
    checked before the evaluation (``dckd.apps.inference.plan_test``)."""
    protocol = f"{'Y' if y_channel else 'RGB'}, crop_border {crop_border}, scale {scale}"
    summary = {}
    for name, result in rows:
        print(f"\n{name} ({len(result['images'])} images; {protocol})")
        print(f"  {'image':<28} {'PSNR':>8} {'SSIM':>7}")
        for score in result["images"]:
            print(f"  {score.name:<28} {score.psnr:>8.3f} {score.ssim:>7.4f}")
        print(f"  {'mean':<28} {result['psnr']:>8.3f} {result['ssim']:>7.4f}")
        summary[name] = {
            "psnr": result["psnr"],
            "ssim": result["ssim"],
            "images": [
                {"name": s.name, "psnr": s.psnr if math.isfinite(s.psnr) else None, "ssim": s.ssim}
                for s in result["images"]
            ],
        }
        if arguments.save_images:
            folder = Path(arguments.save_images) / name
            for score, image in zip(result["images"], result["outputs"]):
                path = folder / f"{score.name}.png"
                plan.write(path, image_encoder(path, image))
    print("\n" + " | ".join(f"{name} {value['psnr']:.2f}/{value['ssim']:.4f}" for name, value in summary.items()))
    document = {
        "weights": arguments.weights,
        "protocol": {
            "y_channel": y_channel,
            "crop_border": crop_border,
            "scale": scale,
            "self_ensemble": arguments.self_ensemble,
            "tile": arguments.tile,
        },
        "datasets": summary,
    }
    if arguments.json:
        plan.write(Path(arguments.json), lambda path: path.write_text(json.dumps(document, indent=2)))
    if arguments.csv:

        def write_csv(path: Path) -> None:
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["dataset", "image", "psnr", "ssim"])
                for name, value in summary.items():
                    for image in value["images"]:
                        writer.writerow([name, image["name"], image["psnr"], image["ssim"]])
                    writer.writerow([name, "mean", value["psnr"], value["ssim"]])

        plan.write(Path(arguments.csv), write_csv)
