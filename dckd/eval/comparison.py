"""Several runs of several methods on the same photos: mean and spread per method, paired differences.

Used by ``dckd demo`` (one run per method and seed) and ``dckd compare`` (any weights files). A method's runs
are paired with another method's by position (run i of each: the same seed), photos by name; the intervals
are ``dckd.eval.statistics``'s 95% Student-t intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dckd.eval.statistics import Difference, paired_difference, summarize


def method_statistics(per_seed: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """{label: {"psnr": {"mean", "std"}, "ssim": ..., "per_seed": [...], "photos": {name: mean PSNR}}} from
    ``per_seed[label]`` = one ``{"seed", "psnr", "ssim", "images": [{"name", "psnr", "ssim"}]}`` per seed."""
    statistics = {}
    for label, runs in per_seed.items():
        psnr, ssim = summarize([run["psnr"] for run in runs]), summarize([run["ssim"] for run in runs])
        names = [image["name"] for image in runs[0]["images"]]
        photos = {
            name: sum(run["images"][index]["psnr"] for run in runs) / len(runs) for index, name in enumerate(names)
        }
        statistics[label] = {
            "psnr": {"mean": psnr.mean, "std": psnr.std},
            "ssim": {"mean": ssim.mean, "std": ssim.std},
            "seeds": [run["seed"] for run in runs],
            "per_seed": runs,
            "photos": photos,
        }
    return statistics


def differences(statistics: dict[str, dict], students: Sequence[str], references: Sequence[str]) -> dict[str, dict]:
    """Paired PSNR differences of every student against every reference: over seeds (the seeds' mean PSNRs) and
    over photos (each photo's PSNR averaged over the seeds). ``over_seeds`` is None when the two methods have
    different numbers of runs."""
    result = {}
    for reference in references:
        if reference not in statistics:
            continue
        for student in students:
            if student == reference or student not in statistics:
                continue
            if student in references and list(references).index(student) < list(references).index(reference):
                continue  # Scratch - Logits is Logits - Scratch negated
            a, b = statistics[student], statistics[reference]
            # Runs pair by position (the same seed); with unequal numbers of runs there is no pairing.
            paired = len(a["per_seed"]) == len(b["per_seed"])
            over_seeds = (
                paired_difference([run["psnr"] for run in a["per_seed"]], [run["psnr"] for run in b["per_seed"]])
                if paired
                else None
            )
            names = list(a["photos"])
            over_photos = paired_difference(
                [a["photos"][name] for name in names], [b["photos"][name] for name in names]
            )
            result[f"{student} - {reference}"] = {
                "over_seeds": _difference(over_seeds) if over_seeds is not None else None,
                "over_photos": _difference(over_photos),
            }
    return result


def _difference(difference: Difference) -> dict[str, Any]:
    return {
        "mean": difference.mean,
        "std": difference.std,
        "count": difference.count,
        "low": difference.low,
        "high": difference.high,
        "exceeds_spread": difference.exceeds_spread,
        "text": str(difference),
    }


def markdown(title: str, photos: int, statistics: dict[str, dict], comparisons: dict[str, dict]) -> str:
    """One evaluation set as Markdown: mean +- std per method, the paired differences, the per-photo table."""
    lines = [f"### {title} ({photos} photos)", "", "| method | runs | PSNR (dB), mean ± std | SSIM, mean ± std |"]
    lines.append("|---|---|---|---|")
    for label, entry in statistics.items():
        runs = len(entry["per_seed"])
        psnr, ssim = entry["psnr"], entry["ssim"]
        psnr_spread = f" ± {psnr['std']:.3f}" if runs > 1 else ""
        ssim_spread = f" ± {ssim['std']:.4f}" if runs > 1 else ""
        lines.append(f"| {label} | {runs} | {psnr['mean']:.3f}{psnr_spread} | {ssim['mean']:.4f}{ssim_spread} |")
    if comparisons:
        lines += [
            "",
            "Paired PSNR differences (dB), mean [95% interval]; * where the interval excludes 0:",
            "",
            "| difference | over runs (run i with run i) | over photos (mean over runs) |",
            "|---|---|---|",
        ]
        for name, entry in comparisons.items():
            over_runs = entry["over_seeds"]["text"] if entry["over_seeds"] else "- (unequal numbers of runs)"
            lines.append(f"| {name} | {over_runs} | {entry['over_photos']['text']} |")
    labels = list(statistics)
    lines += ["", "Per photo (PSNR, dB, mean over runs):", "", "| photo | " + " | ".join(labels) + " |"]
    lines.append("|---" * (len(labels) + 1) + "|")
    for photo in statistics[labels[0]]["photos"]:
        lines.append(
            f"| {photo} | " + " | ".join(f"{statistics[label]['photos'][photo]:.2f}" for label in labels) + " |"
        )
    return "\n".join(lines) + "\n"
