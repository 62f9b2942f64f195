"""What the teacher-output cache changes: teacher outputs on crops vs crops of whole-image outputs, and the
student it trains.

    python benchmarks/teacher_cache_effect.py --teacher dckd/assets/weights/demo_teacher_x4.pth --out effect.json

Part 1 compares, for random training crops (LR patch ``--patch``), T(crop) with the same region of
T(whole image) as the cache stores it (float16): PSNR over the crop, over its interior (a margin of
``--margin`` LR pixels removed), and the largest difference.
Part 2 trains the demo's Logits student twice with the same seed and iterations, with and without the
cache, and evaluates both on the bundled test photos (PSNR/SSIM on Y, crop = scale).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

from dckd.apps.demo import DEMO_STUDENT, DEMO_TEACHER, demo_config
from dckd.data.bundled import bundled_dataset
from dckd.engine.loop import train
from dckd.engine.setup import construct_network
from dckd.eval.restoration import evaluate_dataset
from dckd.files.weights import load_network_weights


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def crop_comparison(teacher, scale: int, patch: int, margin: int, samples: int, seed: int) -> dict:
    dataset = bundled_dataset("train", scale, lq_patch_size=None, augment=False)
    generator = torch.Generator().manual_seed(seed)
    whole_outputs = {}
    full, interior, largest = [], [], 0.0
    with torch.no_grad():
        for _ in range(samples):
            index = int(torch.randint(len(dataset), (1,), generator=generator))
            lq, _ = dataset.load_pair(index)
            if index not in whole_outputs:  # what the cache stores: float16 of the whole-image output
                whole_outputs[index] = teacher(lq[None])[0].clamp(0, 1).half().float()
            top = int(torch.randint(lq.shape[-2] - patch + 1, (1,), generator=generator))
            left = int(torch.randint(lq.shape[-1] - patch + 1, (1,), generator=generator))
            on_crop = teacher(lq[None, :, top : top + patch, left : left + patch])[0].clamp(0, 1)
            cached = whole_outputs[index][:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale]
            full.append(psnr(on_crop, cached))
            inner = slice(margin * scale, (patch - margin) * scale)
            interior.append(psnr(on_crop[:, inner, inner], cached[:, inner, inner]))
            largest = max(largest, float((on_crop - cached).abs().max()))
    return {
        "samples": samples,
        "lq_patch": patch,
        "margin_lq_pixels": margin,
        "psnr_whole_crop_mean_db": sum(full) / len(full),
        "psnr_whole_crop_min_db": min(full),
        "psnr_interior_mean_db": sum(interior) / len(interior),
        "max_abs_difference": largest,
    }


def training_comparison(teacher_path: Path, scale: int, iterations: int, seed: int) -> dict:
    results = {}
    test_set = bundled_dataset("test", scale, lq_patch_size=None, augment=False)
    with tempfile.TemporaryDirectory() as folder:
        for label, enabled in (("teacher on crops", False), ("teacher-output cache", True)):
            config = demo_config(
                "logits",
                scale,
                iterations,
                seed,
                Path(folder) / label.replace(" ", "_"),
                8,
                32,
                "cpu",
                teacher_path,
                teacher_path,
            )
            config.teacher_cache.enabled = enabled
            config.teacher_cache.directory = str(Path(folder) / "cache")
            run_dir = train(config)
            student = construct_network(DEMO_STUDENT["backbone"], {**DEMO_STUDENT["options"], "upscale": scale})
            load_network_weights(student, run_dir / "weights.pth", key="params")
            scores = evaluate_dataset(student, test_set, scale, torch.device("cpu"), True, scale)
            results[label] = {"psnr": scores["psnr"], "ssim": scores["ssim"]}
    return {"iterations": iterations, "seed": seed, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="dckd/assets/weights/demo_teacher_x4.pth")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--margin", type=int, default=4)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=300, help="training comparison length (0 = skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    arguments = parser.parse_args(argv)

    teacher = construct_network(DEMO_TEACHER["backbone"], {**DEMO_TEACHER["options"], "upscale": arguments.scale})
    load_network_weights(teacher, arguments.teacher)
    teacher.eval()
    document = {
        "device": "cpu",
        "torch": torch.__version__,
        "teacher": arguments.teacher,
        "crops": crop_comparison(
            teacher, arguments.scale, arguments.patch, arguments.margin, arguments.samples, arguments.seed
        ),
    }
    print(json.dumps(document["crops"], indent=1))
    if arguments.iterations:
        document["training"] = training_comparison(
            Path(arguments.teacher), arguments.scale, arguments.iterations, arguments.seed
        )
        print(json.dumps(document["training"], indent=1))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
