"""What every generated preset shares: the Preset record, its rendering (header + YAML body), the official
file names and the option builders. Used by tools/make_configs.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
PAPER = (
    'Zhou et al., "Dynamic Contrastive Knowledge Distillation for Efficient Image Restoration", '
    "AAAI 2025 (arXiv 2412.08939)"
)

# --------------------------------------------------------------------------------------------------
# Official file names (defaults of the path options; override with --set)
# --------------------------------------------------------------------------------------------------
VQGAN_CHECKPOINT = "pretrained/vqgan_imagenet_f16_1024/ckpts/last.ckpt"
SWINIR_M_CHECKPOINT = "pretrained/001_classicalSR_DIV2K_s48w8_SwinIR-M_x{scale}.pth"
RCAN_CHECKPOINT = "pretrained/RCAN_BIX{scale}.pt"
NAFNET_CHECKPOINT = "pretrained/NAFNet-GoPro-width32.pth"
RESTORMER_DEBLUR_CHECKPOINT = "pretrained/motion_deblurring.pth"
RESTORMER_DERAIN_CHECKPOINT = "pretrained/deraining.pth"
SR_BENCHMARKS = ("Set5", "Set14", "Urban100")  # validated during training, as the released configs
DERAIN_TESTS = ("Test100", "Rain100H", "Rain100L", "Test2800", "Test1200")
# Files shipped inside the package: ``dckd:`` names resolve wherever dckd is installed (docs/configs.md).
SMOKE_TEACHER = "dckd:weights/demo_teacher_x4.pth"
SMOKE_CODEBOOK = "dckd:weights/demo_codebook.pth"

NEEDS_DIV2K = (
    "datasets/DIV2K/DIV2K_train_HR/0001.png ... 0800.png and "
    "datasets/DIV2K/DIV2K_train_LR_bicubic/X{scale}/0001x{scale}.png ... (DIV2K, 800 training pairs)"
)
NEEDS_BENCHMARKS = (
    "datasets/{{Set5,Set14,Urban100}}/HR/*.png (+ LR_bicubic/X{scale}/*x{scale}.png; made by MATLAB "
    "bicubic when absent); add datasets/BSD100 for the final `dckd test`"
)
NEEDS_VQGAN = (
    f'{VQGAN_CHECKPOINT} (taming-transformers "VQGAN ImageNet (f=16), 1024"; encoder, quant_conv and '
    "codebook are used, loaded strictly)"
)
NEEDS_TEACHER = {
    "swinir": SWINIR_M_CHECKPOINT + " (SwinIR's GitHub release v0.0; key params)",
    "rcan": RCAN_CHECKPOINT + " (official RCAN release, EDSR-PyTorch key names; converted on load)",
}


# --------------------------------------------------------------------------------------------------
# A preset: options plus the header facts
# --------------------------------------------------------------------------------------------------
@dataclass
class Preset:
    path: str
    """Path relative to the repository root, e.g. ``configs/sr/swinir_x4_dckd.yaml``."""
    title: str
    """What this preset trains (networks, task, scale)."""
    method: str
    """The method and its loss, in words."""
    evaluate: str
    """The command that evaluates the trained weights on the paper's test sets."""
    paper_row: str
    """Which table / row of the paper it reproduces (or that it is not a paper setting)."""
    options: dict[str, Any]
    """The YAML body (validated against dckd.config.schema.Config by the tests)."""
    hardware: list[str]
    """Hardware and length the paper used."""
    needs: list[str]
    """Data and checkpoints to bring, with their official file names."""
    results: list[str]
    """The paper's numbers for this row; empty = not reported in the paper."""
    results_protocol: str = ""
    """How the numbers are measured (Y channel, crop border, ...)."""
    notes: list[str] = field(default_factory=list)
    """Recipe notes: released code vs paper, how to switch, equal rows."""
    multi_gpu: bool = True
    """Whether the header shows the torchrun form (smoke presets run on one CPU process)."""


def _wrap(text: str, prefix: str, width: int = 110) -> list[str]:
    """Greedy word wrap of ``text`` into comment lines: the first is ``prefix + " " + text``, the others are
    indented under the text (``prefix`` is "#", "#  " or "#   -")."""
    first = prefix + " "
    indent = "#" + " " * (len(first) - 1) if prefix != "#" else "#   "
    lines, line = [], first
    for word in text.split():
        if len(line) + len(word) > width and line not in (first, indent):
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    lines.append(line.rstrip())
    return lines


def _wrap_results(text: str, width: int = 110) -> list[str]:
    """A results line broken only between "set value" items, so a set's name stays with its numbers."""
    lines, line = [], "#   "
    for index, item in enumerate(text.split(", ")):
        piece = item if index == 0 else ", " + item
        if len(line) + len(piece) > width and line.strip() != "#":
            lines.append(line + ",")
            line, piece = "#     ", item
        line += piece
    lines.append(line)
    return lines


def header(preset: Preset) -> str:
    lines = _wrap(preset.title, "#")
    if preset.paper_row.startswith("not"):
        lines += _wrap(f"Paper: {preset.paper_row} (of {PAPER}).", "#")
    else:
        lines += _wrap(f"Paper: {preset.paper_row} of {PAPER}.", "#")
    lines += _wrap(f"Method: {preset.method}", "#")
    lines += ["#", "# Command:", f"#   dckd train {preset.path}"]
    if preset.multi_gpu:
        lines.append(f"#   torchrun --nproc_per_node=4 -m dckd train {preset.path}")
    lines.append(f"#   dckd train {preset.path} --dry-run   # print the resolved options")
    lines.append("#   (change any option with --set KEY=VALUE, e.g. --set train.total_iters=1000)")
    lines.append(f"#   {preset.evaluate}   # evaluate the trained student")
    lines += ["#", "# Hardware and length:"]
    for item in preset.hardware:
        lines += _wrap(item, "#  ")
    if preset.notes:
        lines += ["#", "# Recipe:"]
        for item in preset.notes:
            lines += _wrap(item, "#   -")
    lines += ["#", "# Needs (official file names; every path is an option):"]
    for item in preset.needs:
        lines += _wrap(item, "#   -")
    lines += ["#"]
    if preset.results:
        protocol = f", {preset.results_protocol}" if preset.results_protocol else ""
        lines += _wrap(f"Paper's numbers for this row (PSNR/SSIM{protocol}):", "#")
        for item in preset.results:
            lines += _wrap_results(item)
    else:
        lines.append("# Paper's numbers for this row: not reported in the paper.")
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block mappings; lists of scalars inline (``[0.9, 0.99]``); no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, (list, dict)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def render(preset: Preset) -> str:
    body = yaml.dump(preset.options, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    lines = []
    for line in body.splitlines():
        if lines and line.endswith(":") and not line.startswith((" ", "-")):
            lines.append("")  # a blank line between top-level sections
        lines.append(line)
    return header(preset) + "\n" + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Building blocks of the options
# --------------------------------------------------------------------------------------------------
def paper_numbers(sets: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {value}" for name, value in zip(sets, values))


def sr_data(scale: int, patch: int = 48, batch: int = 64) -> dict:
    return {
        "task": "sr",
        "scale": scale,
        "train": {
            "kind": "paired",
            "name": "DIV2K",
            "gt_dir": "datasets/DIV2K/DIV2K_train_HR",
            "lq_dir": f"datasets/DIV2K/DIV2K_train_LR_bicubic/X{scale}",
            "filename_template": f"{{}}x{scale}",
        },
        "validation": [{"kind": "benchmark", "name": name, "root": f"datasets/{name}"} for name in SR_BENCHMARKS],
        "lq_patch_size": patch,
        "batch_size": batch,
        "augment": True,
        "num_workers": 4,
    }


def train_section(total: int, validate_every: int, checkpoint_every: int, ema: float = 0.999) -> dict:
    return {
        "total_iters": total,
        "seed": 0,
        "ema_decay": ema,
        "log_every_iters": 100,
        "validate_every_iters": validate_every,
        "checkpoint_every_iters": checkpoint_every,
    }


def history_section(initial: int = 1000, growth: int | None = None) -> dict:
    return {
        "decay": 0.1,
        "source": "ema",
        "initial_interval_iters": initial,
        "interval_growth_iters": initial if growth is None else growth,
        "interval_growth_every_iters": 100000,
    }


def dckd_section(
    contrastive: float = 0.1,
    codebook: float = 0.001,
    negatives: int = 5,
    degradations: tuple = ("noise",),
    history_step: int = 1000,
    lcr: float = 0.0,
) -> dict:
    section: dict[str, Any] = {
        "reconstruction_loss": "l1",
        "reconstruction_weight": 1.0,
        "kd_weight": 1.0,
        "contrastive_weight": contrastive,
    }
    if contrastive > 0:
        applied = {"blur", "resize", "noise"} if "mix" in degradations else set(degradations)
        section.update(
            {
                "layer_weights": [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0],
                "num_negatives": negatives,
                "include_clean_negative": True,
                "degradations": list(degradations),
                # As the released code (and its files: blur 0, resize 0, noise 1, gray 0.5): each kind applied
                # to a copy with its probability, parameters drawn once per copy for the whole batch.
                "negative_sampling": "released",
                **{f"{kind}_probability": 1.0 if kind in applied else 0.0 for kind in ("blur", "resize", "noise")},
                "gray_noise_probability": 0.5,
                "history": history_section(history_step),
            }
        )
    section["codebook_weight"] = codebook
    if codebook > 0:
        section["codebook_formula"] = "released"
    if contrastive > 0 or codebook > 0:
        section["vqgan_input_range"] = "zero_one"
    section["lcr_weight"] = lcr
    if lcr > 0:
        section.update({"lcr_side": "teacher", "lcr_probability": 0.5})
    return section


FAKD_AFFINITY_WEIGHT = 10 / 255
"""The official 10 x SA (images in [0, 255]) in our [0, 1] units: its pixel L1 terms are 255 x ours."""


def fakd_section(student_layers: list[str] | None = None, teacher_layers: list[str] | None = None) -> dict:
    """FAKD's official recipe (alpha 0.5, 10*SA summed over the feature pairs) in [0, 1] units; empty layer lists
    take the recipe's three points of each backbone (fakd.default_layers: fakd)."""
    return {
        "reconstruction_loss": "l1",
        "reconstruction_weight": 0.5,
        "kd_weight": 0.5,
        "affinity_weight": FAKD_AFFINITY_WEIGHT,
        "affinity_reduction": "sum",
        "default_layers": "fakd",
        "student_layers": list(student_layers or []),
        "teacher_layers": list(teacher_layers or []),
    }


def method_section(method: str, **dckd_options) -> tuple[str, dict]:
    """(config method name, its section) for a table method name (dckd_star = dckd with the LCR term)."""
    if method == "scratch":
        return "scratch", {"reconstruction_loss": "l1", "reconstruction_weight": 1.0}
    if method == "logits":
        return "logits", {"reconstruction_loss": "l1", "reconstruction_weight": 1.0, "kd_weight": 1.0}
    if method == "fakd":
        return "fakd", fakd_section()
    if method == "dckd":
        return "dckd", dckd_section(**dckd_options)
    if method == "dckd_star":
        return "dckd", dckd_section(lcr=1.0, **dckd_options)
    if method == "mclir":
        return "mclir", {
            "reconstruction_loss": "l1",
            "reconstruction_weight": 1.0,
            "contrast_weight": 0.1,
            "feature_space": "vqgan",
            "layer_weights": [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0],
            "vqgan_input_range": "zero_one",
            "history": history_section(),
        }
    raise ValueError(f"unknown table method {method!r}")


def uses_vqgan(method: str, section: dict) -> bool:
    if method == "mclir":
        return True
    return method == "dckd" and (section["contrastive_weight"] > 0 or section["codebook_weight"] > 0)


def assemble(
    name: str,
    output_dir: str,
    method: str,
    student: dict,
    teacher: dict | None,
    data: dict,
    optimizer: dict,
    schedule: dict,
    train: dict,
    evaluation: dict,
    **dckd_options,
) -> dict:
    config_method, section = method_section(method, **dckd_options)
    options: dict[str, Any] = {"name": name, "output_dir": output_dir, "method": config_method, "student": student}
    if config_method in ("logits", "fakd", "dckd"):
        options["teacher"] = teacher
    if uses_vqgan(config_method, section):
        options["vqgan"] = {"checkpoint": VQGAN_CHECKPOINT}
    options.update(
        {
            "data": data,
            "optimizer": optimizer,
            "schedule": schedule,
            "train": train,
            "evaluation": evaluation,
            config_method: section,
        }
    )
    return options


METHOD_NAMES = {
    "scratch": "Scratch",
    "logits": "Logits",
    "fakd": "FAKD",
    "dckd": "DCKD",
    "dckd_star": "DCKD*",
    "mclir": "MCLIR",
}
METHOD_TITLES = {
    "scratch": "Scratch (student alone, L1 to ground truth)",
    "logits": "Logits KD (L1 to ground truth + L1 to the teacher output)",
    "fakd": "FAKD, official recipe (0.5 L1 to ground truth + 0.5 L1 to the teacher output + 10/255 x the "
    "spatial-affinity L1 summed over the feature pairs)",
    "dckd": "DCKD (L_rec + L_kd + 0.1 L_dcl + 0.001 L_ce)",
    "dckd_star": "DCKD* (DCKD + the released code's teacher-side label-consistency term)",
    "mclir": "MCLIR-style model contrast (history-model negatives, no teacher)",
}
TEACHER_NEEDS_VQGAN = ("dckd", "dckd_star", "mclir")


def loss_formula(section: dict) -> str:
    """The DCKD loss a section trains, e.g. ``L = L_rec + L_kd + 0.1 L_dcl + 0.001 L_ce``."""
    terms = ["L_rec", "L_kd"]
    for key, term in (("contrastive_weight", "L_dcl"), ("codebook_weight", "L_ce"), ("lcr_weight", "L_lcr")):
        weight = section.get(key, 0.0)
        if weight:
            terms.append(f"{weight:g} {term}" if weight != 1 else term)
    return "L = " + " + ".join(terms)


def method_notes(method: str, task: str = "sr") -> list[str]:
    if method == "dckd":
        star = (
            "the *_dckd_star.yaml file"
            if task == "sr"
            else "--set dckd.lcr_weight=1.0; the paper reports no DCKD* row for this task"
        )
        return [
            "DCKD as the paper writes it (no label-consistency term). The released code (SwinIR SR only) adds "
            f"the teacher-side LCR term in all its configs, i.e. they are DCKD* ({star}).",
            "Negatives: history model on the clean input + 4 noisy copies (noise probability 1, gray 0.5, drawn "
            "per copy as the released code: negative_sampling released); history model = EMA student "
            "(source ema, alpha 0.1) updated every 1000/2000/3000... iterations; codebook CE in the released "
            "formula (--set dckd.codebook_formula=paper for Eq. 9); VQGAN fed [0, 1] images as the released "
            "code (--set dckd.vqgan_input_range=minus_one_one for the range it was trained on).",
        ]
    if method == "dckd_star":
        return [
            "DCKD* = DCKD + L_lcr = mean|S(x) - A^-1(T(A(x)))| with weight 1 (invert, vflip, hflip, transpose, "
            "each per sample with p 0.5), as every released config; DUKD's student-side form: "
            "--set dckd.lcr_side=student --set dckd.lcr_probability=0.3."
        ]
    if method == "fakd":
        return [
            "FAKD as its official code trains it (He et al., ICIP 2020; Vincent-Hoo/Knowledge-Distillation-for-"
            "Super-resolution, scripts/train_rcan_SA_x*.sh: --alpha 0.5 --feature_distilation_type 10*SA): "
            "L = 0.5 |S - y| + 0.5 |S - T| + w * sum_k mean|A(F_S,k) - A(F_T,k)| (spatial affinity, pairs SUMMED). "
            "Units: its images are in [0, 255], so its two pixel L1 terms are 255 x ours in [0, 1] while the "
            "affinity term does not depend on the range; its w = 10 is therefore w = 10/255 = 0.0392 per pair "
            "here (the same balance of the terms; Adam is nearly invariant to the overall factor 255).",
            "Layers (fakd.student_layers / teacher_layers, forward hooks, ':input' = the module's input): "
            "RCAN, the official features [1,2,3]: the outputs of residual groups 3 and 7 (body.2, body.6) and "
            "the body output with the global skip, i.e. the upsampler's input (x3: the official script uses "
            "[2,3], without body.2); SwinIR (FAKD never used it; our reading): the RSTB outputs after 1/3 and "
            "2/3 of the body (teacher layers.1/layers.3, student layers.0/layers.2) and the input of the "
            "reconstruction head (conv_before_upsample). The DCKD paper gives neither layers nor weights.",
        ]
    return []
