"""``dckd demo``: distill a compact student several ways on the bundled photographs, with statistics.

No dataset, no downloaded weights, no GPU needed. The shipped demo teacher (an EDSR trained on the bundled
training photos, ``dckd/assets/weights/``) and the shipped demo codebook (a small VQGAN trained by ``dckd
train-codebook``) stand in for the official SwinIR-M and ImageNet VQGAN. The same student is trained with
each method for the same iterations, once per seed (``--seeds``, three by default); every run validates on
the bundled validation photos as it trains (the PSNR-vs-iterations curve). Then bicubic, the teacher and every
student are evaluated on the bundled test photos (and on ``--eval-data`` folders), and the report folder gets
the tables with mean +- std over seeds and the paired differences against Scratch and Logits
(``dckd/apps/demo_report.py``), the curves, crops and ``index.html``. Settings are chosen on the training
and validation photos, never on the test photos.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from dckd.apps import demo_report
from dckd.config.schema import config_from_dict
from dckd.data import hr_folder
from dckd.data.bundled import bundled_dataset
from dckd.data.imresize import imresize_tensor
from dckd.engine import host_memory
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.setup import construct_network
from dckd.errors import DckdError
from dckd.eval import comparison
from dckd.eval.profile import markdown_table, profile_networks, report_dict
from dckd.eval.restoration import evaluate_dataset
from dckd.files.weights import atomic_write, load_network_weights
from dckd.methods import METHODS

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "weights"
DEMO_TEACHER = {"backbone": "edsr", "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 32, "num_block": 6}}
DEMO_STUDENT = {"backbone": "edsr", "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2}}
METHOD_LABELS = {
    "scratch": "Scratch",
    "logits": "Logits",
    "fakd": "FAKD",
    "dckd": "DCKD",
    "dckd_star": "DCKD*",
    "mclir": "MCLIR",
}


def teacher_path(scale: int) -> Path:
    return ASSETS / f"demo_teacher_x{scale}.pth"


def codebook_path() -> Path:
    return ASSETS / "demo_codebook.pth"


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=400, help="training iterations per method (default 400)")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="SR scale (default 4)")
    parser.add_argument(
        "--methods",
        default="scratch,logits,dckd",
        help=f"comma-separated, from {','.join(METHOD_LABELS)} (default scratch,logits,dckd)",
    )
    parser.add_argument("--seeds", default="0,1,2", help="every method is trained once per seed (default 0,1,2)")
    parser.add_argument("--seed", type=int, default=None, help="one seed only (instead of --seeds)")
    parser.add_argument(
        "--eval-data",
        action="append",
        default=[],
        metavar="FOLDER",
        help="also evaluate every student and the teacher on this folder of HR images (LR by "
        "MATLAB bicubic; repeatable)",
    )
    parser.add_argument(
        "--validate-every",
        type=int,
        default=None,
        metavar="ITERATIONS",
        help="validation interval on the bundled validation photos (default: iterations / 8)",
    )
    parser.add_argument("--report", default="reports/demo", help="report folder (default reports/demo)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=24, help="LR patch size (default 24)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--teacher", help="teacher weights (default: the shipped demo teacher for --scale)")
    parser.add_argument("--codebook", help="VQGAN codebook (default: the shipped demo codebook)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option of the runs, e.g. --set dckd.contrastive_weight=0.01 (a method's "
        "section applies to that method only; repeatable)",
    )


def demo_config(
    method: str,
    scale: int,
    iterations: int,
    seed: int,
    run_root: Path,
    batch_size: int,
    patch: int,
    device: str,
    teacher: Path,
    codebook: Path,
    overrides: list[str] | tuple = (),
    validate_every: int = 0,
):
    """The Config of one demo run (the same for every method but the method and its section)."""
    raw = {
        "name": method,
        "output_dir": str(run_root),
        "method": "dckd" if method == "dckd_star" else method,
        "student": {**DEMO_STUDENT, "options": {**DEMO_STUDENT["options"], "upscale": scale}},
        "data": {
            "train": {"kind": "bundled", "split": "train"},
            "validation": [{"kind": "bundled", "split": "val"}] if validate_every else [],
            "scale": scale,
            "lq_patch_size": patch,
            "batch_size": batch_size,
            "num_workers": 0,
            "check_files": False,
        },
        # Chosen on the validation photos (docs/demo.md): Scratch after 400 iterations at lr 5e-4, 1e-3, 2e-3,
        # 4e-3, 8e-3 gave 27.57, 27.81, 28.00, 28.12, 28.05 dB (bicubic 27.66).
        "optimizer": {"name": "adam", "lr": 4e-3, "betas": [0.9, 0.99]},
        "schedule": {"name": "cosine", "eta_min": [1e-5]},
        # Short runs: no EMA (0.999 would average over more steps than the run has).
        "train": {
            "total_iters": iterations,
            "seed": seed,
            "ema_decay": 0.0,
            "log_every_iters": max(iterations // 40, 1),
            "validate_every_iters": validate_every,
            "checkpoint_every_iters": iterations,
            "keep_checkpoints": 1,
            "tensorboard": False,
            "device": device,
            "auto_resume": False,
            "channels_last": True,  # measured faster for every network here on a CPU (benchmarks/demo_step.py)
            # Said explicitly where it can work (Linux with glibc); elsewhere the run goes without it.
            "keep_freed_host_memory": host_memory.available(),
        },
    }
    raw["teacher"] = {
        **DEMO_TEACHER,
        "options": {**DEMO_TEACHER["options"], "upscale": scale},
        "checkpoint": str(teacher),
    }
    raw["vqgan"] = {"checkpoint": str(codebook)}
    # The published schedule scaled to the run: 1000 of 250k iterations would never fire here. A quarter of the
    # run keeps the negatives clearly worse than the anchor (the paper's Fig. 8: too small a step destabilises).
    history = {
        "initial_interval_iters": max(iterations // 4, 1),
        "interval_growth_iters": 0,
        "interval_growth_every_iters": max(iterations, 1),
        "source": "student",
    }
    if method in ("dckd", "dckd_star"):
        raw["dckd"] = {
            "vqgan_input_range": "minus_one_one",
            "history": history,
            "lcr_weight": 1.0 if method == "dckd_star" else 0.0,
            # Beyond the paper: no contrastive term for the first quarter of the run. Chosen on the validation
            # photos (docs/demo.md): from the first iteration the term pushes a random student away from its
            # own copy; 400 iterations, seed 0, shipped codebook: 27.97 dB with the paper's schedule, 28.15 with this.
            "contrastive_start_iters": iterations // 4,
        }
    if method == "mclir":
        raw["mclir"] = {"vqgan_input_range": "minus_one_one", "history": history}
    section = raw["method"]
    applicable = [
        text for text in overrides if text.split(".", 1)[0] not in METHODS or text.split(".", 1)[0] == section
    ]
    config = config_from_dict(raw, applicable, source=f"demo {method}")
    # Only the networks the method uses stay in its config (and in its run folder's config.yaml).
    needs = config.needs
    keep = {"teacher": needs.teacher, "vqgan": needs.vqgan}
    return config_from_dict(
        {**raw, **{name: None for name, used in keep.items() if not used}}, applicable, source=f"demo {method}"
    )


def _bicubic(lq: torch.Tensor, scale: int) -> torch.Tensor:
    return imresize_tensor(lq.double(), scale).float().clamp(0, 1)


class _Upscaler(torch.nn.Module):
    """MATLAB bicubic as a 'network', so it is evaluated by exactly the same code as the others."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _bicubic(x, self.scale)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise DckdError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise DckdError(f"--seeds {text!r}: expected distinct seeds, e.g. 0,1,2")
    return seeds


def _evaluate(network: torch.nn.Module, dataset, scale: int, device: torch.device, keep: bool) -> dict:
    result = evaluate_dataset(
        network.to(device), dataset, scale, device, y_channel=True, crop_border=scale, keep_outputs=keep
    )
    images = [{"name": score.name, "psnr": score.psnr, "ssim": score.ssim} for score in result["images"]]
    return {"psnr": result["psnr"], "ssim": result["ssim"], "images": images, "outputs": result.get("outputs")}


def run_demo(
    iterations: int = 400,
    scale: int = 4,
    methods: tuple[str, ...] = ("scratch", "logits", "dckd"),
    seeds: tuple[int, ...] = (0, 1, 2),
    report: str | Path = "reports/demo",
    batch_size: int = 8,
    patch: int = 24,
    device: str = "auto",
    teacher: str | None = None,
    codebook: str | None = None,
    overrides: list[str] | tuple = (),
    eval_data: tuple[str, ...] = (),
    validate_every: int | None = None,
) -> dict:
    """Train every method once per seed, evaluate everything, write the report; returns the report's document."""
    started_command = time.monotonic()
    unknown = [method for method in methods if method not in METHOD_LABELS]
    if unknown:
        raise DckdError(f"--methods: unknown {unknown}; choose from {', '.join(METHOD_LABELS)}")
    teacher_file = Path(teacher) if teacher else teacher_path(scale)
    codebook_file = Path(codebook) if codebook else codebook_path()
    for label, path in (("teacher", teacher_file), ("codebook", codebook_file)):
        if not path.is_file():
            raise DckdError(
                f"demo {label} {path} not found (shipped teachers: x4, see docs/demo.md; pass --{label} for another)"
            )
    validate_every = max(iterations // 8, 1) if validate_every is None else validate_every
    evaluation_sets = {"bundled test photos": bundled_dataset("test", scale, lq_patch_size=None, augment=False)}
    for folder in eval_data:
        dataset = hr_folder(folder, scale, lq_patch_size=None, augment=False)
        evaluation_sets[f"{dataset.name} (--eval-data)"] = dataset
    report = Path(report)
    report.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)

    # ---- training: every method once per seed
    runs: dict[str, list[Path]] = {}
    timings: dict[str, list[float]] = {}
    beyond_paper: list[str] = []  # what the report says about settings the paper does not have
    total = len(seeds) * len(methods)
    for seed_number, seed in enumerate(seeds):
        for method_number, method in enumerate(methods):
            label = METHOD_LABELS[method]
            number = seed_number * len(methods) + method_number + 1
            print(f"[{number}/{total}] training {label} (seed {seed}) for {iterations} iterations", file=sys.stderr)
            config = demo_config(
                method,
                scale,
                iterations,
                seed,
                report / "runs" / f"seed{seed}",
                batch_size,
                patch,
                device,
                teacher_file,
                codebook_file,
                overrides,
                validate_every,
            )
            if method in ("dckd", "dckd_star") and config.dckd.contrastive_start_iters and seed_number == 0:
                beyond_paper.append(
                    f"{label}: the paper's loss weights, its contrastive term from iteration "
                    f"{config.dckd.contrastive_start_iters} on (dckd.contrastive_start_iters, beyond the paper: "
                    "docs/demo.md)"
                )
            started = time.monotonic()
            runs.setdefault(label, []).append(train(config))
            timings.setdefault(label, []).append(time.monotonic() - started)

    # ---- evaluation: bicubic and the teacher once, every student of every seed
    print("evaluating", file=sys.stderr)
    teacher_network = construct_network(DEMO_TEACHER["backbone"], {**DEMO_TEACHER["options"], "upscale": scale})
    load_network_weights(teacher_network, teacher_file, architecture="demo teacher")
    evaluations, crop_outputs = {}, {}
    for set_number, (set_name, dataset) in enumerate(evaluation_sets.items()):
        keep = set_number == 0
        per_seed: dict[str, list[dict]] = {}
        bicubic = _evaluate(_Upscaler(scale), dataset, scale, torch_device, keep)
        per_seed["Bicubic"] = [{**bicubic, "seed": None}]
        for label, run_dirs in runs.items():
            for seed, run_dir in zip(seeds, run_dirs):
                student = construct_network(DEMO_STUDENT["backbone"], {**DEMO_STUDENT["options"], "upscale": scale})
                load_network_weights(student, run_dir / "weights.pth", key="params", architecture="demo student")
                result = _evaluate(student, dataset, scale, torch_device, keep and seed == seeds[0])
                per_seed.setdefault(label, []).append({**result, "seed": seed})
        per_seed["Teacher"] = [{**_evaluate(teacher_network, dataset, scale, torch_device, keep), "seed": None}]
        if keep:
            crop_outputs = {label: entries[0]["outputs"] for label, entries in per_seed.items()}
        for entries in per_seed.values():
            for entry in entries:
                entry.pop("outputs", None)
        statistics = comparison.method_statistics(per_seed)
        for label, entry in statistics.items():
            entry["trained"] = label in runs
            entry["train_seconds"] = timings.get(label)
        statistics["Bicubic"]["parameters"] = 0
        statistics["Teacher"]["parameters"] = sum(p.numel() for p in teacher_network.parameters())
        student_parameters = sum(
            p.numel()
            for p in construct_network(
                DEMO_STUDENT["backbone"], {**DEMO_STUDENT["options"], "upscale": scale}
            ).parameters()
        )
        for label in runs:
            statistics[label]["parameters"] = student_parameters
        references = [label for label in ("Scratch", "Logits") if label in runs]
        evaluations[set_name] = {
            "photos": len(dataset),
            "methods": statistics,
            "differences": comparison.differences(statistics, list(runs), references),
        }

    # ---- the student against the teacher: size, speed, memory (every student shares one architecture)
    first_student = construct_network(DEMO_STUDENT["backbone"], {**DEMO_STUDENT["options"], "upscale": scale})
    load_network_weights(
        first_student, next(iter(runs.values()))[0] / "weights.pth", key="params", architecture="demo student"
    )
    profile_report = profile_networks(
        [first_student, teacher_network],
        ["Student (any method)", "Teacher"],
        input_size=(64, 64),
        device=torch_device,
        repeats=20,
        warmup=3,
    )

    # ---- the report
    command_seconds = time.monotonic() - started_command
    seed_text = f"seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"seed {seeds[0]}"
    context = (
        f"x{scale}, {iterations} iterations per student (batch {batch_size}, LR patch {patch}, {seed_text}), "
        f"validation every {validate_every} iterations on the bundled validation photos, device {torch_device}, "
        f"whole command {command_seconds / 60:.1f} min" + (f", options {' '.join(overrides)}" if overrides else "")
    ) + "".join(f". {text}" for text in beyond_paper)
    main_set = next(iter(evaluations))
    document = {
        "context": context,
        "scale": scale,
        "iterations": iterations,
        "seeds": list(seeds),
        "device": str(torch_device),
        "torch": torch.__version__,
        "date": datetime.date.today().isoformat(),
        "command_seconds": command_seconds,
        "evaluations": evaluations,
        "rows": [
            {
                "method": label,
                "psnr": entry["psnr"]["mean"],
                "ssim": entry["ssim"]["mean"],
                "psnr_std": entry["psnr"]["std"],
                "parameters": entry["parameters"],
                "train_seconds": sum(entry["train_seconds"]) / len(entry["train_seconds"])
                if entry["train_seconds"]
                else None,
                "images": [{"name": name, "psnr": value} for name, value in entry["photos"].items()],
            }
            for label, entry in evaluations[main_set]["methods"].items()
        ],
        "validation_curves": demo_report.validation_curves(runs),
    }
    document["profile"] = report_dict(profile_report)
    tables = (
        demo_report.markdown(document) + "\n### The student against the teacher\n\n" + markdown_table(profile_report)
    )
    print("\n" + tables)
    atomic_write(report / "table.md", lambda path: path.write_text(tables, encoding="utf-8"))
    atomic_write(report / "table.json", lambda path: path.write_text(json.dumps(document, indent=2), encoding="utf-8"))
    demo_report.plot_loss_curves(report / "curves.png", {label: run_dirs[0] for label, run_dirs in runs.items()})
    demo_report.plot_validation_curves(report / "psnr_curve.png", document["validation_curves"])
    crops = demo_report.write_crops(report / "crops", evaluation_sets[main_set], crop_outputs, scale)
    figures = [
        ("Validation PSNR during training (mean over seeds; band: range)", "psnr_curve.png"),
        ("Training loss terms (first seed)", "curves.png"),
    ]
    demo_report.write_html(report, tables, crops, figures)
    print(f"report: {report / 'index.html'}", file=sys.stderr)
    return document


def run_demo_command(arguments: argparse.Namespace) -> int:
    methods = tuple(name.strip() for name in arguments.methods.split(",") if name.strip())
    seeds = (arguments.seed,) if arguments.seed is not None else _seeds(arguments.seeds)
    run_demo(
        arguments.iterations,
        arguments.scale,
        methods,
        seeds,
        arguments.report,
        arguments.batch_size,
        arguments.patch,
        arguments.device,
        arguments.teacher,
        arguments.codebook,
        arguments.overrides,
        tuple(arguments.eval_data),
        arguments.validate_every,
    )
    return 0
