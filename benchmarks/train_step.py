"""Time one training iteration and its peak memory: Scratch, Logits, DCKD, DCKD*, each optimisation on/off.

    python benchmarks/train_step.py --size full --device cuda --out results.json   # the paper's x4 setting
    python benchmarks/train_step.py --size tiny --device cpu                        # seconds; used by the tests

Full size is the paper's x4 setting: LR 48x48, batch 16; SwinIR (teacher SwinIR-M, student embed 60
4x6) and RCAN (teacher 10x20, student 10x6); the taming VQGAN f16/1024 encoder. Weights are random
(timing does not depend on them). Each variant builds fresh networks, runs ``--warmup`` iterations,
then times ``--iterations`` (CUDA-synchronised wall clock per iteration; the median is reported).

``published`` is a plain float32 replay of the released code's step: teacher on [x, A(x)], the history
model on 5 separate batches, seven separate VQGAN partial passes (anchor, positive, 5 negatives) and two
full passes (student, teacher), double-softmax CE. The other variants run dckd's own methods
(``dckd.methods``), exactly as ``dckd train`` does.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dckd.config.schema import config_from_dict
from dckd.engine.setup import build_method, construct_network
from dckd.eval.restoration import autocast_context
from dckd.losses.codebook import codebook_cross_entropy
from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.losses.pixel import l1_loss
from dckd.methods.dckd.invertible import InvertibleAugmentation
from dckd.methods.dckd.negatives import make_negative_inputs
from dckd.models.averaging import freeze, frozen_copy, interpolate_
from dckd.models.backbones import resolve
from dckd.models.vqgan import VQGANEncoder, latent_rows, negative_squared_distance_logits, taming_f16_1024_config

SETTINGS = {
    "swinir_x4": {"teacher": "swinir_m_x4", "student": "swinir_s_x4"},
    "rcan_x4": {"teacher": "rcan_x4", "student": "rcan_student_x4"},
}
# CPU-test sizes: same code paths, toy widths.
TINY_OPTIONS = {
    "swinir": {"embed_dim": 12, "depths": [1], "num_heads": [2], "img_size": 8, "window_size": 4},
    "rcan": {"num_feat": 8, "num_group": 1, "num_block": 1, "squeeze_factor": 4},
}
TINY_VQGAN = {
    "embed_dim": 8,
    "n_embed": 16,
    "ddconfig": {
        "in_channels": 3,
        "out_ch": 3,
        "resolution": 64,
        "ch": 32,
        "ch_mult": [1, 1, 1, 1, 2],
        "num_res_blocks": 1,
        "attn_resolutions": [2],
        "dropout": 0.0,
        "double_z": False,
        "z_channels": 8,
    },
}


@dataclass(frozen=True)
class Variant:
    method: str  # published | scratch | logits | dckd | dckd_star
    precision: str = "float32"
    channels_last: bool = False
    teacher_cache: bool = False
    compile: bool = False

    @property
    def label(self) -> str:
        parts = [self.method, {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[self.precision]]
        if self.channels_last:
            parts.append("channels_last")
        if self.teacher_cache:
            parts.append("teacher_cache")
        if self.compile:
            parts.append("compile")
        return " ".join(parts)

    @property
    def optimisations(self) -> tuple:
        return (self.precision, self.channels_last, self.compile)


FAST = dict(precision="bfloat16", channels_last=True)


def default_variants(setting: str) -> list[Variant]:
    """Each optimisation switched on one at a time, then together (SwinIR); the essential ones for RCAN."""
    if setting != "swinir_x4":
        return [
            Variant("published"),
            Variant("scratch"),
            Variant("scratch", **FAST),
            Variant("logits", **FAST),
            Variant("dckd_star"),
            Variant("dckd_star", **FAST),
            Variant("dckd", **FAST),
            Variant("dckd_star", teacher_cache=True, **FAST),
        ]
    variants = [Variant("published"), Variant("published", "bfloat16")]
    for method in ("scratch", "logits", "dckd", "dckd_star"):
        variants.append(Variant(method))
        variants.append(Variant(method, "bfloat16"))
        variants.append(Variant(method, **FAST))
    variants.append(Variant("dckd_star", teacher_cache=True, **FAST))
    variants.append(Variant("dckd", teacher_cache=True, **FAST))
    return variants


COMPILE_VARIANTS = [Variant("scratch", compile=True, **FAST), Variant("dckd_star", compile=True, **FAST)]


_BUILT: dict = {}


def networks(setting: str, size: str, device: torch.device):
    """(fresh student, teacher, VQGAN, student spec); teacher and VQGAN are built once per setting and reused."""
    key = (setting, size, str(device))
    if key not in _BUILT:
        _BUILT.clear()  # keep one setting's networks in memory at a time
        _BUILT[key] = _build(setting, size, device)
    student_template, teacher, vqgan, spec = _BUILT[key]
    student = copy.deepcopy(student_template)
    for network in (teacher, vqgan):
        network.to(memory_format=torch.contiguous_format)
    return student, teacher, vqgan, spec


def _build(setting: str, size: str, device: torch.device):
    teacher_backbone, teacher_options = resolve(SETTINGS[setting]["teacher"], None)
    student_backbone, student_options = resolve(SETTINGS[setting]["student"], None)
    if size == "tiny":
        teacher_options = (
            {**teacher_options, **TINY_OPTIONS[teacher_backbone], "num_feat": 12}
            if teacher_backbone == "rcan"
            else {**teacher_options, **TINY_OPTIONS[teacher_backbone], "embed_dim": 16}
        )
        student_options = {**student_options, **TINY_OPTIONS[student_backbone]}
        vqgan_spec = TINY_VQGAN
    else:
        vqgan_spec = taming_f16_1024_config()
    torch.manual_seed(0)
    teacher = freeze(construct_network(teacher_backbone, teacher_options)).to(device)
    student = construct_network(student_backbone, student_options).to(device)
    vqgan = freeze(VQGANEncoder(**vqgan_spec)).to(device)
    return student, teacher, vqgan, (student_backbone, student_options)


BATCH_SIZE: dict[str, int] = {"full": 16, "tiny": 2}


def make_batch(size: str, device: torch.device, seed: int = 0) -> dict:
    batch, patch, scale = BATCH_SIZE[size], (48 if size == "full" else 8), 4
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(batch, 3, patch * scale, patch * scale, generator=generator)
    lq = torch.nn.functional.avg_pool2d(gt, scale)
    return {"lq": lq.to(device), "gt": gt.to(device)}


# ------------------------------------------------------------------------------------------ published replay
class PublishedStep:
    """The released DCKD step, op for op, float32: no batching of frozen passes, no shared VQGAN pass."""

    def __init__(self, student, teacher, vqgan, history, seed: int = 0) -> None:
        self.student, self.teacher, self.vqgan, self.history = student, teacher, vqgan, history
        self.augmentation = InvertibleAugmentation(
            ["invert", "vflip", "hflip", "transpose"], 0.5, torch.Generator().manual_seed(seed)
        )
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.layer_weights = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]

    def __call__(self, batch: dict) -> dict:
        lq, gt = batch["lq"], batch["gt"]
        size = lq.shape[0]
        plan = self.augmentation.draw(size)
        augmented = self.augmentation.apply(lq, plan)
        with torch.no_grad():
            teacher_all = self.teacher(torch.cat([lq, augmented]))
        teacher_clean, teacher_augmented = teacher_all[:size], self.augmentation.invert(teacher_all[size:], plan)
        output = self.student(lq)
        losses = {
            "reconstruction": l1_loss(output, gt),
            "kd": l1_loss(output, teacher_clean),
            "lcr": l1_loss(output, teacher_augmented),
        }
        with torch.no_grad():
            negatives = [self.history(lq)] + [
                self.history(make_negative_inputs(lq, self.generator, 1, ["noise"], "per_sample")) for _ in range(4)
            ]
        anchor = self.vqgan.features(output)
        with torch.no_grad():
            positive = self.vqgan.features(teacher_clean)
            negative_features = [self.vqgan.features(negative) for negative in negatives]
        stacked = [torch.cat([features[level] for features in negative_features]) for level in range(5)]
        losses["contrastive"] = 0.1 * contrastive_ratio_loss(anchor, positive, stacked, self.layer_weights)
        student_latent = self.vqgan.encode(output)
        with torch.no_grad():
            teacher_latent = self.vqgan.encode(teacher_clean)
        student_logits = negative_squared_distance_logits(latent_rows(student_latent), self.vqgan.codebook)
        teacher_logits = negative_squared_distance_logits(latent_rows(teacher_latent), self.vqgan.codebook)
        losses["codebook"] = 0.001 * codebook_cross_entropy(
            torch.log_softmax(student_logits, -1), torch.softmax(teacher_logits, -1), "released"
        )
        return {"loss": sum(losses.values()), "output": output, **losses}


# ------------------------------------------------------------------------------------------ ours
def our_method(variant: Variant, student, teacher, vqgan, backbone_spec):
    method = "dckd" if variant.method == "dckd_star" else variant.method
    raw = {
        "method": method,
        "student": {"backbone": backbone_spec[0], "options": backbone_spec[1]},
        "data": {"scale": 4},
        "train": {"precision": variant.precision},
    }
    if method != "scratch":
        # The networks are passed to build_method; the config only names them (random_init: no checkpoint to load).
        raw["teacher"] = {"backbone": backbone_spec[0], "options": backbone_spec[1], "random_init": True}
    if method == "dckd":
        raw["vqgan"] = {"checkpoint": "unused"}
        raw["dckd"] = {"lcr_weight": 1.0 if variant.method == "dckd_star" else 0.0}
    return build_method(config_from_dict(raw), student, teacher, vqgan, next(student.parameters()).device)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_variant(setting: str, variant: Variant, size: str, device: torch.device, iterations: int, warmup: int) -> dict:
    student, teacher, vqgan, spec = networks(setting, size, device)
    if variant.channels_last:
        for network in (student, teacher, vqgan):
            network.to(memory_format=torch.channels_last)
    ema = frozen_copy(student)
    if variant.method == "published":
        step = PublishedStep(student, teacher, vqgan, frozen_copy(student))
    else:
        if variant.compile:
            student_call, teacher = torch.compile(student), torch.compile(teacher)
        else:
            student_call = student
        step = our_method(variant, student_call, teacher, vqgan, spec)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-4, betas=(0.9, 0.99))
    batch = make_batch(size, device)
    if variant.channels_last:
        batch = {key: value.contiguous(memory_format=torch.channels_last) for key, value in batch.items()}
    if variant.teacher_cache:
        with torch.no_grad(), autocast_context(device, variant.precision):
            batch["teacher_output"] = teacher(batch["lq"]).float()  # what the cache would hand over
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    precision = "float32" if variant.method == "published" and variant.precision == "float32" else variant.precision
    times = []
    for iteration in range(1, warmup + iterations + 1):
        synchronise(device)
        started = time.perf_counter()
        with autocast_context(device, precision):
            result = step(batch)
        result["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        interpolate_(ema, student, 0.999)
        if variant.method != "published":
            step.after_step(iteration, student, ema)
        synchronise(device)
        if iteration > warmup:
            times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    milliseconds = sorted(1000 * t for t in times)
    return {
        "setting": setting,
        "variant": variant.label,
        **asdict(variant),
        "ms_median": statistics.median(milliseconds),
        "ms_min": milliseconds[0],
        "ms_max": milliseconds[-1],
        "peak_gib": peak,
        "terms": sorted(key for key in result if key not in ("loss", "output")),
    }


def loss_agreement(setting: str, size: str, device: torch.device, precision: str, channels_last: bool) -> dict:
    """Relative difference of every DCKD* loss term between the fast path and float32, same inputs and weights."""
    values = {}
    for label, (use_precision, use_channels_last) in {
        "float32": ("float32", False),
        "fast": (precision, channels_last),
    }.items():
        student, teacher, vqgan, spec = networks(setting, size, device)
        if use_channels_last:
            for network in (student, teacher, vqgan):
                network.to(memory_format=torch.channels_last)
        method = our_method(Variant("dckd_star", use_precision, use_channels_last), student, teacher, vqgan, spec)
        batch = make_batch(size, device, seed=1)
        with torch.no_grad(), autocast_context(device, use_precision):
            result = method(batch)
        values[label] = {key: float(value) for key, value in result.items() if key != "output"}
    return {
        key: abs(values["fast"][key] - values["float32"][key]) / abs(values["float32"][key])
        for key in values["float32"]
    }


def breakdown(setting: str, size: str, device: torch.device, precision: str, channels_last: bool) -> dict:
    """Time the frozen parts of a DCKD* step in isolation (no grad), to explain where the time goes."""
    student, teacher, vqgan, _ = networks(setting, size, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for network in (student, teacher, vqgan):
        network.to(memory_format=memory_format)
    batch = make_batch(size, device)
    lq = batch["lq"].contiguous(memory_format=memory_format)
    parts = {
        "teacher on 2B": lambda: teacher(torch.cat([lq, lq])),
        "history on 5B": lambda: student(torch.cat([lq] * 5)),
        "VQGAN full pass on 6B (positive + negatives)": lambda: vqgan.features_and_latent(
            torch.cat([batch["gt"]] * 6).contiguous(memory_format=memory_format)
        ),
        "student forward (no grad)": lambda: student(lq),
    }
    gradient_parts = {
        "student forward + backward": lambda: student(lq).mean().backward(),
        "VQGAN full pass on B with grad to the input, forward + backward": lambda: _anchor_pass(vqgan, student, lq),
    }
    timings = {}
    for name, function in list(parts.items()) + list(gradient_parts.items()):
        with torch.set_grad_enabled(name in gradient_parts), autocast_context(device, precision):
            for _ in range(2):
                function()
            synchronise(device)
            started = time.perf_counter()
            for _ in range(5):
                function()
            synchronise(device)
        timings[name] = 1000 * (time.perf_counter() - started) / 5
    return timings


def _anchor_pass(vqgan, student, lq) -> None:
    features, latent = vqgan.features_and_latent(student(lq))
    (sum(feature.float().mean() for feature in features) + latent.float().mean()).backward()


def print_table(rows: list[dict], device_name: str) -> None:
    print(
        f"\ndevice: {device_name} | torch {torch.__version__} | {datetime.date.today()} | "
        f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}"
    )
    header = f"{'setting':<10} {'variant':<42} {'ms/iter':>8} {'x scratch':>9} {'x published':>11} {'peak GiB':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        scratch = next(
            (
                r
                for r in rows
                if r["setting"] == row["setting"]
                and r["method"] == "scratch"
                and (r["precision"], r["channels_last"], r["compile"])
                == (row["precision"], row["channels_last"], row["compile"])
            ),
            None,
        )
        published = next(
            (
                r
                for r in rows
                if r["setting"] == row["setting"] and r["method"] == "published" and r["precision"] == "float32"
            ),
            None,
        )
        versus_scratch = f"{row['ms_median'] / scratch['ms_median']:.2f}" if scratch else "-"
        versus_published = f"{published['ms_median'] / row['ms_median']:.2f}x" if published else "-"
        print(
            f"{row['setting']:<10} {row['variant']:<42} {row['ms_median']:>8.1f} {versus_scratch:>9} "
            f"{versus_published:>11} {row['peak_gib']:>8.2f}"
        )
    print(
        "x scratch: this variant's time / Scratch's with the same precision and layout; "
        "x published: how many times faster than the float32 published step"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--settings", default="swinir_x4,rcan_x4")
    parser.add_argument("--batch-size", type=int, default=0, help="override the batch (default 16 full, 2 tiny)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile variants (slow to build)")
    parser.add_argument("--methods", default="", help="only these methods (comma-separated), e.g. scratch,dckd_star")
    parser.add_argument("--no-extras", action="store_true", help="skip the loss-agreement and per-part timings")
    parser.add_argument(
        "--loss-agreement-only",
        action="store_true",
        help="only compare every DCKD* loss term, bf16 autocast vs float32 (no timing): a CPU can run it "
        "at full size with a small --batch-size",
    )
    parser.add_argument("--time-limit", type=float, default=0, help="skip remaining variants after this many seconds")
    parser.add_argument("--out", help="write all rows as JSON here (rewritten after every variant)")
    arguments = parser.parse_args(argv)

    device = torch.device(arguments.device)
    if arguments.batch_size:
        BATCH_SIZE[arguments.size] = arguments.batch_size
    # PyTorch's defaults are kept (cuDNN convolutions may use TF32, matmuls do not), as a user's run would.
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    started = time.monotonic()
    rows, skipped, extras = [], [], {}
    wanted = set(arguments.methods.split(",")) if arguments.methods else None
    settings = arguments.settings.split(",")
    plan = [(setting, variant) for setting in settings for variant in default_variants(setting)]
    if arguments.compile:  # last: building compiled graphs takes a while
        plan += [(settings[0], variant) for variant in COMPILE_VARIANTS]
    if wanted:
        plan = [(setting, variant) for setting, variant in plan if variant.method in wanted]

    def save() -> None:
        if arguments.out:
            Path(arguments.out).write_text(
                json.dumps(
                    {
                        "device": device_name,
                        "torch": torch.__version__,
                        "date": str(datetime.date.today()),
                        "size": arguments.size,
                        "rows": rows,
                        "extras": extras,
                        "skipped": skipped,
                    },
                    indent=2,
                )
            )

    if arguments.loss_agreement_only:
        for setting in settings:
            differences = loss_agreement(setting, arguments.size, device, "bfloat16", False)
            extras[setting] = {"loss_relative_difference_bf16": differences}
            save()
            print(
                f"{setting} loss relative difference, bf16 vs float32: "
                + ", ".join(f"{key} {value:.3g}" for key, value in differences.items())
            )
        return 0

    for setting, variant in plan:
        if arguments.time_limit and time.monotonic() - started > arguments.time_limit:
            skipped.append(f"{setting} {variant.label}")
            continue
        try:
            row = run_variant(setting, variant, arguments.size, device, arguments.iterations, arguments.warmup)
        except Exception as error:  # report and go on: one failing variant must not lose the others
            print(f"FAILED {setting} {variant.label}: {type(error).__name__}: {error}", file=sys.stderr)
            continue
        rows.append(row)
        save()
        print(
            f"{setting:<10} {row['variant']:<42} {row['ms_median']:8.1f} ms  peak {row['peak_gib']:.2f} GiB",
            file=sys.stderr,
            flush=True,
        )
        last_of_setting = all(other != setting for other, _ in plan[plan.index((setting, variant)) + 1 :])
        if last_of_setting and not arguments.no_extras and setting not in extras:
            extras[setting] = {
                "loss_relative_difference_bf16_channels_last": loss_agreement(
                    setting, arguments.size, device, "bfloat16", True
                ),
                "parts_ms_bf16_channels_last": breakdown(setting, arguments.size, device, "bfloat16", True),
                "parts_ms_float32": breakdown(setting, arguments.size, device, "float32", False),
            }
            save()
    print_table(rows, device_name)
    for setting, extra in extras.items():
        for name, values in extra.items():
            print(f"{setting} {name}: " + ", ".join(f"{key} {value:.3g}" for key, value in values.items()))
    if skipped:
        print(f"skipped (time limit): {', '.join(skipped)}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
