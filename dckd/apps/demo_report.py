"""The demo's report: tables with statistics over seeds, curves, crops, one HTML page.

``dckd.apps.demo`` trains and evaluates; this module only turns its results into files in the report folder:
``table.md`` / ``table.json`` (mean +- std over seeds, paired differences with 95% intervals over seeds and
over test photos, the per-photo table), ``curves.png`` (every loss term of each method, first seed),
``psnr_curve.png`` (validation PSNR against iterations, mean and range over seeds), ``crops/*.png`` and
``index.html``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dckd.engine.run_log import read_log
from dckd.eval.restoration import score_image
from dckd.files.weights import atomic_write


# ------------------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------------------
def markdown(document: dict) -> str:
    """The report's tables as Markdown (also printed by the command)."""
    lines = [document["context"], ""]
    for name, evaluation in document["evaluations"].items():
        statistics = evaluation["methods"]
        seeds = len(document["seeds"])
        lines += [f"### {name} ({evaluation['photos']} photos; PSNR/SSIM on Y, border {document['scale']})", ""]
        spread = " (mean ± std over seeds)" if seeds > 1 else ""
        lines += [
            f"| method | PSNR (dB){spread} | SSIM{spread} | training time (s) | parameters |",
            "|---|---|---|---|---|",
        ]
        for label, entry in statistics.items():
            psnr, ssim = entry["psnr"], entry["ssim"]
            seconds = entry.get("train_seconds")
            time_text = f"{sum(seconds) / len(seconds):.0f}" if seconds else "-"
            spread_psnr = f" ± {psnr['std']:.3f}" if seeds > 1 and entry.get("trained") else ""
            spread_ssim = f" ± {ssim['std']:.4f}" if seeds > 1 and entry.get("trained") else ""
            lines.append(
                f"| {label} | {psnr['mean']:.3f}{spread_psnr} | {ssim['mean']:.4f}{spread_ssim} | {time_text} "
                f"| {entry.get('parameters', 0) / 1000:.1f}k |"
            )
        if evaluation["differences"]:
            lines += [
                "",
                "Paired PSNR differences (dB), mean [95% interval]; * where the interval excludes 0:",
                "",
                "| difference | over seeds | over photos (mean over seeds) |",
                "|---|---|---|",
            ]
            for comparison, entry in evaluation["differences"].items():
                lines.append(f"| {comparison} | {entry['over_seeds']['text']} | {entry['over_photos']['text']} |")
        labels = list(statistics)
        lines += [
            "",
            "Per photo (PSNR, dB, mean over seeds):",
            "",
            "| photo | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 1) + "|",
        ]
        for photo in statistics[labels[0]]["photos"]:
            values = " | ".join(f"{statistics[label]['photos'][photo]:.2f}" for label in labels)
            lines.append(f"| {photo} | {values} |")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------------------------
def logged_terms(records: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """{term: (iterations, values)} for every loss term any training record has, in the order the terms first
    appear, each where it was logged (a term that starts later, e.g. a delayed contrastive term, included)."""
    terms = dict.fromkeys(key for record in records for key in record if key not in ("iter", "lr", "seconds_per_iter"))
    return {
        term: ([r["iter"] for r in records if term in r], [r[term] for r in records if term in r]) for term in terms
    }


def plot_loss_curves(path: Path, runs: dict[str, Path]) -> None:
    """Every logged loss term of each method's run (log scale)."""
    figure = Figure(figsize=(4.2 * len(runs), 3.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(runs), squeeze=False)
    for axis, (label, run_dir) in zip(axes[0], runs.items()):
        records = [record for record in read_log(run_dir / "log.jsonl") if "loss" in record]
        for term, (iterations, values) in logged_terms(records).items():
            axis.plot(iterations, values, label=term)
        axis.set_yscale("log")
        axis.set_title(label)
        axis.set_xlabel("iteration")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def validation_curves(runs: dict[str, list[Path]]) -> dict[str, dict[str, list[float]]]:
    """{label: {"iterations", "mean", "low", "high"}}: validation PSNR (mean over the validation sets) per
    logged iteration, mean and range over the seeds' runs."""
    curves = {}
    for label, run_dirs in runs.items():
        per_run = []
        for run_dir in run_dirs:
            records = [record for record in read_log(run_dir / "log.jsonl") if "validation" in record]
            per_run.append(
                {
                    record["iter"]: sum(value["psnr"] for value in record["validation"].values())
                    / len(record["validation"])
                    for record in records
                }
            )
        iterations = sorted(set.intersection(*(set(values) for values in per_run))) if per_run else []
        if not iterations:
            continue
        values = [[run[iteration] for run in per_run] for iteration in iterations]
        curves[label] = {
            "iterations": iterations,
            "mean": [sum(v) / len(v) for v in values],
            "low": [min(v) for v in values],
            "high": [max(v) for v in values],
        }
    return curves


def plot_validation_curves(path: Path, curves: dict[str, dict[str, list[float]]]) -> None:
    """Validation PSNR against iterations per method (line: mean over seeds, band: range over seeds)."""
    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    for label, curve in curves.items():
        line = axis.plot(curve["iterations"], curve["mean"], marker="o", markersize=3, label=label)[0]
        axis.fill_between(curve["iterations"], curve["low"], curve["high"], color=line.get_color(), alpha=0.2)
    axis.set_xlabel("iteration")
    axis.set_ylabel("validation PSNR (dB, Y)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _crop_box(gt: torch.Tensor, size: int) -> tuple[int, int]:
    """The most textured (highest gradient energy) window: where methods differ visibly."""
    gray = gt.mean(0)
    energy = (gray[1:, :-1] - gray[:-1, :-1]).abs() + (gray[:-1, 1:] - gray[:-1, :-1]).abs()
    stride = max(size // 4, 1)
    pooled = torch.nn.functional.avg_pool2d(energy[None, None], size, stride=stride)[0, 0]
    row, column = divmod(int(pooled.argmax()), pooled.shape[1])
    return row * stride, column * stride


def write_crops(
    folder: Path, dataset, outputs: dict[str, list[torch.Tensor]], scale: int, size: int = 96
) -> list[dict]:
    """Side-by-side crops (LR, each network's output, HR) of every image with each crop's PSNR (Y), as PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
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
        low = torch.nn.functional.interpolate(item["lq"][None][(..., *lq_window)], scale_factor=scale, mode="nearest")
        panels = [("LR (nearest)", low[0], None)]
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
        path = folder / f"{Path(item['name']).stem}.png"
        figure.savefig(path, dpi=110)
        entries.append({"image": item["name"], "file": f"{folder.name}/{path.name}", "box": [top, left, crop]})
    return entries


# ------------------------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------------------------
def _html_tables(text: str) -> str:
    """Markdown tables and paragraphs of ``markdown()`` as simple HTML."""
    parts, table = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if "---" not in line:
                cells = "".join(f"<td>{html.escape(cell.strip())}</td>" for cell in line.strip("|").split("|"))
                table.append(f"<tr>{cells}</tr>")
            continue
        if table:
            parts.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("### "):
            parts.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(parts)


def write_html(report: Path, tables: str, crops: list[dict], figures: Sequence[tuple[str, str]]) -> None:
    images = "\n".join(
        f'<h3>{html.escape(entry["image"])}</h3><img src="{entry["file"]}" style="max-width:100%">' for entry in crops
    )
    pictures = "\n".join(
        f'<h2>{html.escape(title)}</h2><img src="{file}" style="max-width:100%">' for title, file in figures
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dckd demo</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} td{{padding:2px 10px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>dckd demo</h1>{_html_tables(tables)}
{pictures}<h2>Crops (first seed; PSNR of each crop, Y)</h2>
{images}</body></html>"""
    atomic_write(report / "index.html", lambda path: path.write_text(page, encoding="utf-8"))
