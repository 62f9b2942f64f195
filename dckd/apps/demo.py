"""``dckd demo``: distill a compact student three ways on the bundled photographs and show the result.

No dataset, no downloaded weights, no GPU needed. The shipped demo teacher (an EDSR trained on the
bundled training photos, ``dckd/assets/weights/``) and the shipped demo codebook (a small VQGAN trained
by ``dckd train-codebook`` on the same photos) stand in for the official SwinIR-M and ImageNet VQGAN.
The same student is trained for the same iterations and seed with each method; then bicubic, the
teacher and every student are evaluated on the bundled test photos (PSNR/SSIM on Y, crop = scale) and a
report folder is written: ``table.md``, ``table.json``, ``curves.png``, ``crops/*.png``, ``index.html``.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dckd.config.schema import config_from_dict
from dckd.data.bundled import bundled_dataset
from dckd.data.imresize import imresize_tensor
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.run_log import read_log
from dckd.engine.setup import construct_network
from dckd.errors import DckdError
from dckd.eval.restoration import evaluate_dataset, score_image
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
    parser.add_argument("--seed", type=int, default=0, help="seed shared by every method's run")
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
):
    """The Config of one demo run (the same for every method but the method and its section)."""
    raw = {
        "name": method,
        "output_dir": str(run_root),
        "method": "dckd" if method == "dckd_star" else method,
        "student": {**DEMO_STUDENT, "options": {**DEMO_STUDENT["options"], "upscale": scale}},
        "data": {
            "train": {"kind": "bundled", "split": "train"},
            "validation": [],
            "scale": scale,
            "lq_patch_size": patch,
            "batch_size": batch_size,
            "num_workers": 0,
            "check_files": False,
        },
        "optimizer": {"name": "adam", "lr": 5e-4, "betas": [0.9, 0.99]},
        "schedule": {"name": "cosine", "eta_min": [1e-5]},
        # Short runs: no EMA (0.999 would average over more steps than the run has).
        "train": {
            "total_iters": iterations,
            "seed": seed,
            "ema_decay": 0.0,
            "log_every_iters": max(iterations // 40, 1),
            "validate_every_iters": 0,
            "checkpoint_every_iters": iterations,
            "keep_checkpoints": 1,
            "tensorboard": False,
            "device": device,
            "auto_resume": False,
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


def _crop_box(gt: torch.Tensor, size: int) -> tuple[int, int]:
    """The most textured (highest gradient energy) window: where methods differ visibly."""
    gray = gt.mean(0)
    energy = (gray[1:, :-1] - gray[:-1, :-1]).abs() + (gray[:-1, 1:] - gray[:-1, :-1]).abs()
    pooled = torch.nn.functional.avg_pool2d(energy[None, None], size, stride=max(size // 4, 1))[0, 0]
    index = int(pooled.argmax())
    row, column = divmod(index, pooled.shape[1])
    stride = max(size // 4, 1)
    return row * stride, column * stride


def _write_crops(
    report: Path, dataset, outputs: dict[str, list[torch.Tensor]], scale: int, size: int = 96
) -> list[dict]:
    """Side-by-side crops (LR, bicubic, methods, teacher, HR) with each crop's PSNR (Y), as PNG panels."""
    crops_dir = report / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in range(len(dataset)):
        item = dataset[index]
        gt = item["gt"]
        crop = min(size, gt.shape[-2] - 2 * scale, gt.shape[-1] - 2 * scale)
        crop -= crop % scale
        top, left = _crop_box(gt, crop)
        top, left = top - top % scale, left - left % scale
        window = (slice(top, top + crop), slice(left, left + crop))
        lq_window = (slice(top // scale, (top + crop) // scale), slice(left // scale, (left + crop) // scale))
        panels = [
            (
                "LR (nearest)",
                torch.nn.functional.interpolate(
                    item["lq"][None][(..., *lq_window)], scale_factor=scale, mode="nearest"
                )[0],
                None,
            )
        ]
        for label, images in outputs.items():
            patch = images[index][(..., *window)]
            panels.append((label, patch, score_image(patch, gt[(..., *window)], 0, True).psnr))
        panels.append(("HR", gt[(..., *window)], None))
        figure = Figure(figsize=(2.2 * len(panels), 2.6))
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(panels))
        for axis, (label, image, value) in zip(axes, panels):
            axis.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            axis.set_title(label + (f"\n{value:.2f} dB" if value is not None else "\n"), fontsize=9)
            axis.axis("off")
        figure.tight_layout()
        path = crops_dir / f"{Path(item['name']).stem}.png"
        figure.savefig(path, dpi=110)
        entries.append({"image": item["name"], "file": f"crops/{path.name}", "box": [top, left, crop]})
    return entries


def _plot_curves(report: Path, runs: dict[str, Path]) -> None:
    figure = Figure(figsize=(4.2 * len(runs), 3.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(runs), squeeze=False)
    for axis, (label, run_dir) in zip(axes[0], runs.items()):
        records = [record for record in read_log(run_dir / "log.jsonl") if "loss" in record]
        terms = [key for key in records[0] if key not in ("iter", "lr", "seconds_per_iter", "history_updates")]
        for term in terms:
            axis.plot([r["iter"] for r in records], [r[term] for r in records], label=term)
        axis.set_yscale("log")
        axis.set_title(label)
        axis.set_xlabel("iteration")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(report / "curves.png", dpi=110)


def _markdown_table(rows: list[dict], context: str) -> str:
    lines = [context, "", "| method | PSNR (dB, Y) | SSIM (Y) | training time (s) |", "|---|---|---|---|"]
    for row in rows:
        seconds = f"{row['train_seconds']:.0f}" if row.get("train_seconds") is not None else "-"
        lines.append(f"| {row['method']} | {row['psnr']:.3f} | {row['ssim']:.4f} | {seconds} |")
    return "\n".join(lines) + "\n"


def _html(report: Path, table_markdown: str, crops: list[dict]) -> None:
    rows = [line for line in table_markdown.splitlines() if line.startswith("|") and "---" not in line]
    cells = [
        "<tr>" + "".join(f"<td>{html.escape(cell.strip())}</td>" for cell in row.strip("|").split("|")) + "</tr>"
        for row in rows
    ]
    images = "\n".join(
        f'<h3>{html.escape(entry["image"])}</h3><img src="{entry["file"]}" style="max-width:100%">' for entry in crops
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dckd demo</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} td{{padding:2px 10px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>dckd demo</h1><p>{html.escape(table_markdown.splitlines()[0])}</p><table>{"".join(cells)}</table>
<h2>Training curves</h2><img src="curves.png" style="max-width:100%"><h2>Crops (PSNR of each crop, Y)</h2>
{images}</body></html>"""
    atomic_write(report / "index.html", lambda path: path.write_text(page, encoding="utf-8"))


def run_demo(
    iterations: int = 400,
    scale: int = 4,
    methods: tuple[str, ...] = ("scratch", "logits", "dckd"),
    seed: int = 0,
    report: str | Path = "reports/demo",
    batch_size: int = 8,
    patch: int = 24,
    device: str = "auto",
    teacher: str | None = None,
    codebook: str | None = None,
    overrides: list[str] | tuple = (),
) -> dict:
    """Train every method, evaluate everything, write the report; returns the table as a dict."""
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
    report = Path(report)
    report.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    test_set = bundled_dataset("test", scale, lq_patch_size=None, augment=False)

    runs, timings = {}, {}
    for number, method in enumerate(methods, start=1):
        print(
            f"[{number}/{len(methods)}] training {METHOD_LABELS[method]} for {iterations} iterations", file=sys.stderr
        )
        config = demo_config(
            method,
            scale,
            iterations,
            seed,
            report / "runs",
            batch_size,
            patch,
            device,
            teacher_file,
            codebook_file,
            overrides,
        )
        started = time.monotonic()
        runs[METHOD_LABELS[method]] = train(config)
        timings[METHOD_LABELS[method]] = time.monotonic() - started

    teacher_network = construct_network(DEMO_TEACHER["backbone"], {**DEMO_TEACHER["options"], "upscale": scale})
    load_network_weights(teacher_network, teacher_file, architecture="demo teacher")
    networks = {"Bicubic": _Upscaler(scale)}
    for label, run_dir in runs.items():
        student = construct_network(DEMO_STUDENT["backbone"], {**DEMO_STUDENT["options"], "upscale": scale})
        load_network_weights(student, run_dir / "weights.pth", key="params", architecture="demo student")
        networks[label] = student
    networks["Teacher"] = teacher_network

    print("evaluating on the bundled test photos", file=sys.stderr)
    rows, outputs = [], {}
    for label, network in networks.items():
        result = evaluate_dataset(
            network.to(torch_device),
            test_set,
            scale,
            torch_device,
            y_channel=True,
            crop_border=scale,
            keep_outputs=True,
        )
        outputs[label] = result["outputs"]
        parameters = sum(parameter.numel() for parameter in network.parameters())
        rows.append(
            {
                "method": label,
                "psnr": result["psnr"],
                "ssim": result["ssim"],
                "parameters": parameters,
                "train_seconds": timings.get(label),
                "images": [{"name": s.name, "psnr": s.psnr, "ssim": s.ssim} for s in result["images"]],
            }
        )

    context = (
        f"x{scale}, {iterations} iterations per student (batch {batch_size}, LR patch {patch}, seed {seed}), "
        f"{len(test_set)} bundled test photos, device {torch_device}"
        + (f", options {' '.join(overrides)}" if overrides else "")
    )
    table = _markdown_table(rows, context)
    print("\n" + table)
    document = {
        "context": context,
        "scale": scale,
        "iterations": iterations,
        "seed": seed,
        "rows": rows,
        "device": str(torch_device),
        "torch": torch.__version__,
    }
    atomic_write(report / "table.md", lambda path: path.write_text(table, encoding="utf-8"))
    atomic_write(report / "table.json", lambda path: path.write_text(json.dumps(document, indent=2), encoding="utf-8"))
    _plot_curves(report, runs)
    crops = _write_crops(report, test_set, outputs, scale)
    _html(report, table, crops)
    print(f"report: {report / 'index.html'}", file=sys.stderr)
    return document


def run_demo_command(arguments: argparse.Namespace) -> int:
    methods = tuple(name.strip() for name in arguments.methods.split(",") if name.strip())
    run_demo(
        arguments.iterations,
        arguments.scale,
        methods,
        arguments.seed,
        arguments.report,
        arguments.batch_size,
        arguments.patch,
        arguments.device,
        arguments.teacher,
        arguments.codebook,
        arguments.overrides,
    )
    return 0
