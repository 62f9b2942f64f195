"""The presets of the paper's settings (configs/sr, deblur, derain, ablations, mclir), with the paper's numbers
copied from ../shared/spec/paper-results.md. Used by tools/make_configs.py."""

from __future__ import annotations

from dataclasses import dataclass

from preset_common import (
    DERAIN_TESTS,
    METHOD_NAMES,
    METHOD_TITLES,
    NAFNET_CHECKPOINT,
    NEEDS_BENCHMARKS,
    NEEDS_DIV2K,
    NEEDS_TEACHER,
    NEEDS_VQGAN,
    RCAN_CHECKPOINT,
    RESTORMER_DEBLUR_CHECKPOINT,
    RESTORMER_DERAIN_CHECKPOINT,
    SWINIR_M_CHECKPOINT,
    TEACHER_NEEDS_VQGAN,
    Preset,
    assemble,
    fakd_section,
    loss_formula,
    method_notes,
    paper_numbers,
    sr_data,
    train_section,
    uses_vqgan,
)

# --------------------------------------------------------------------------------------------------
# The paper's numbers (PSNR/SSIM), copied from ../shared/spec/paper-results.md
# --------------------------------------------------------------------------------------------------
SR_SETS = ("Set5", "Set14", "BSD100", "Urban100")
TABLE_2: dict[tuple[str, int, str], tuple[str, ...]] = {  # (backbone, scale, method) -> Set5, Set14, BSD100, Urban100
    ("swinir", 2, "teacher"): ("38.36/0.9620", "34.14/0.9227", "32.45/0.9030", "33.40/0.9394"),
    ("swinir", 2, "scratch"): ("38.00/0.9607", "33.56/0.9178", "32.19/0.9000", "32.05/0.9279"),
    ("swinir", 2, "logits"): ("38.04/0.9608", "33.61/0.9184", "32.22/0.9003", "32.09/0.9282"),
    ("swinir", 2, "fakd"): ("38.03/0.9608", "33.63/0.9182", "32.21/0.9001", "32.06/0.9279"),
    ("swinir", 2, "dckd"): ("38.17/0.9613", "33.85/0.9205", "32.31/0.9017", "32.59/0.9330"),
    ("swinir", 3, "teacher"): ("34.89/0.9312", "30.77/0.8503", "29.37/0.8124", "29.29/0.8744"),
    ("swinir", 3, "scratch"): ("34.41/0.9273", "30.43/0.8437", "29.12/0.8062", "28.20/0.8537"),
    ("swinir", 3, "logits"): ("34.44/0.9275", "30.45/0.8443", "29.14/0.8066", "28.23/0.8545"),
    ("swinir", 3, "fakd"): ("34.42/0.9273", "30.42/0.8437", "29.12/0.8062", "28.18/0.8533"),
    ("swinir", 3, "dckd"): ("34.59/0.9291", "30.57/0.8475", "29.22/0.8093", "28.63/0.8633"),
    ("swinir", 4, "teacher"): ("32.72/0.9021", "28.94/0.7914", "27.83/0.7459", "27.07/0.8164"),
    ("swinir", 4, "scratch"): ("32.31/0.8955", "28.67/0.7833", "27.61/0.7379", "26.15/0.7884"),
    ("swinir", 4, "logits"): ("32.27/0.8954", "28.67/0.7833", "27.62/0.7380", "26.15/0.7887"),
    ("swinir", 4, "fakd"): ("32.22/0.8950", "28.65/0.7831", "27.61/0.7380", "26.09/0.7870"),
    ("swinir", 4, "dckd"): ("32.49/0.8991", "28.82/0.7877", "27.72/0.7422", "26.53/0.8007"),
    ("swinir", 4, "dckd_star"): ("32.51/0.8992", "28.88/0.7890", "27.74/0.7430", "26.62/0.8032"),
    ("rcan", 2, "teacher"): ("38.27/0.9614", "34.13/0.9216", "32.41/0.9027", "33.34/0.9384"),
    ("rcan", 2, "scratch"): ("38.13/0.9610", "33.78/0.9194", "32.26/0.9007", "32.63/0.9327"),
    ("rcan", 2, "logits"): ("38.17/0.9611", "33.83/0.9197", "32.29/0.9010", "32.67/0.9329"),
    ("rcan", 2, "fakd"): ("38.17/0.9612", "33.83/0.9199", "32.29/0.9011", "32.65/0.9330"),
    ("rcan", 2, "dckd"): ("38.25/0.9615", "34.01/0.9213", "32.35/0.9019", "32.92/0.9351"),
    ("rcan", 3, "teacher"): ("34.74/0.9299", "30.65/0.8482", "29.32/0.8111", "29.09/0.8702"),
    ("rcan", 3, "scratch"): ("34.61/0.9288", "30.45/0.8444", "29.18/0.8074", "28.59/0.8610"),
    ("rcan", 3, "logits"): ("34.61/0.9291", "30.47/0.8447", "29.21/0.8080", "28.62/0.8612"),
    ("rcan", 3, "fakd"): ("34.63/0.9290", "30.51/0.8453", "29.21/0.8079", "28.62/0.8612"),
    ("rcan", 3, "dckd"): ("34.74/0.9299", "30.60/0.8472", "29.29/0.8099", "28.87/0.8662"),
    ("rcan", 4, "teacher"): ("32.63/0.9002", "28.87/0.7889", "27.77/0.7436", "26.82/0.8087"),
    ("rcan", 4, "scratch"): ("32.38/0.8971", "28.69/0.7842", "27.63/0.7379", "26.36/0.7947"),
    ("rcan", 4, "logits"): ("32.45/0.8980", "28.76/0.7860", "27.67/0.7400", "26.49/0.7982"),
    ("rcan", 4, "fakd"): ("32.46/0.8980", "28.77/0.7860", "27.68/0.7400", "26.50/0.7980"),
    ("rcan", 4, "dckd"): ("32.56/0.8995", "28.82/0.7877", "27.73/0.7423", "26.69/0.8041"),
    ("rcan", 4, "dckd_star"): ("32.58/0.8996", "28.86/0.7885", "27.74/0.7425", "26.74/0.8054"),
}
TABLE_3 = {  # GoPro, RGB: (backbone, method) -> PSNR/SSIM
    ("nafnet", "teacher"): "32.87/0.9606",
    ("nafnet", "scratch"): "31.17/0.9457",
    ("nafnet", "logits"): "31.26/0.9464",
    ("nafnet", "dckd"): "31.43/0.9487",
    ("restormer", "teacher"): "32.92/0.9610",
    ("restormer", "scratch"): "31.57/0.9497",
    ("restormer", "logits"): "31.61/0.9501",
    ("restormer", "dckd"): "31.78/0.9521",
}
TABLE_4 = {  # Restormer deraining, Y channel: method -> Test100, Rain100H, Rain100L, Test2800, Test1200
    "teacher": ("32.02/0.9237", "31.48/0.9054", "39.08/0.9785", "34.21/0.9449", "33.22/0.9270"),
    "scratch": ("31.01/0.9122", "30.51/0.8932", "37.47/0.9714", "33.78/0.9396", "33.67/0.9295"),
    "logits": ("31.04/0.9143", "30.48/0.8915", "37.17/0.9712", "33.81/0.9399", "33.78/0.9310"),
    "dckd": ("31.08/0.9167", "30.54/0.8969", "38.02/0.9762", "33.91/0.9411", "33.95/0.9326"),
}
TABLE_8_SETS = ("Set14", "BSD100", "Urban100", "Manga109")
TABLE_8 = {  # SwinIR-light x4: method -> Set14, BSD100, Urban100, Manga109
    "official": ("28.77/0.7858", "27.69/0.7406", "26.47/0.7980", "30.92/0.9151"),
    "mclir": ("28.85/0.7874", "27.72/0.7414", "26.57/0.8010", "31.04/0.9158"),
    "dckd": ("28.88/0.7891", "27.75/0.7432", "26.64/0.8039", "31.20/0.9180"),
}


# --------------------------------------------------------------------------------------------------
# configs/sr: Table 2
# --------------------------------------------------------------------------------------------------
SR_HARDWARE = ["4 GPUs (model not stated in the paper), 250k iterations; training time not reported in the paper."]


def _sr_recipe_notes() -> list[str]:
    return [
        "Released code (the default here): batch 16 per GPU x 4 GPUs = data.batch_size 64 (global), LR patch 48, "
        "flips/rotations, Adam (0.9, 0.99), lr 1e-4 held constant (multistep, one milestone at 250k), "
        "student EMA 0.999 (validation and weights.pth use the EMA student), validation on Set5/Set14/Urban100 "
        "and a checkpoint every 5k.",
        "The paper's stated recipe instead: --set data.batch_size=16 --set "
        "'schedule.milestones_iters=[100000,200000]' --set schedule.gamma=0.1",
    ]


# FAKD's feature pairs (official code: features [1,2,3] of RCAN = body.2, body.6 and the upsampler's input; its
# x3 script uses [2,3]). SwinIR: our reading, the RSTB outputs after 1/3 and 2/3 of the body and the input of the
# reconstruction head (tests/test_configs.py checks these against dckd.models.backbones.FAKD_FEATURES).
FAKD_LAYERS = {
    "rcan": (["body.2", "body.6", "upsample:input"], ["body.2", "body.6", "upsample:input"]),
    "swinir": (
        ["layers.0", "layers.2", "conv_before_upsample:input"],
        ["layers.1", "layers.3", "conv_before_upsample:input"],
    ),
}


def fakd_layers(backbone: str, scale: int) -> tuple[list[str], list[str]]:
    """(student layers, teacher layers) of the FAKD preset; the official RCAN x3 script drops feature 1."""
    student, teacher = FAKD_LAYERS[backbone]
    if backbone == "rcan" and scale == 3:
        return student[1:], teacher[1:]
    return list(student), list(teacher)


def sr_options(backbone: str, scale: int, method: str, name: str, output_dir: str = "runs/sr", **dckd_options) -> dict:
    student = {"preset": f"swinir_s_x{scale}" if backbone == "swinir" else f"rcan_student_x{scale}"}
    teacher = {
        "preset": f"swinir_m_x{scale}" if backbone == "swinir" else f"rcan_x{scale}",
        "checkpoint": (SWINIR_M_CHECKPOINT if backbone == "swinir" else RCAN_CHECKPOINT).format(scale=scale),
    }
    options = assemble(
        name,
        output_dir,
        method,
        student,
        teacher,
        sr_data(scale),
        {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
        {"name": "multistep", "milestones_iters": [250000], "gamma": 0.5},
        train_section(250000, 5000, 5000),
        {"y_channel": True, "crop_border": scale},
        **dckd_options,
    )
    if method == "fakd":
        options["fakd"] = fakd_section(*fakd_layers(backbone, scale))
    return options


def sr_needs(backbone: str, scale: int, method: str) -> list[str]:
    needs = [NEEDS_DIV2K.format(scale=scale), NEEDS_BENCHMARKS.format(scale=scale)]
    if method != "scratch":
        needs.append(NEEDS_TEACHER[backbone].format(scale=scale))
    if method in TEACHER_NEEDS_VQGAN:
        needs.append(NEEDS_VQGAN)
    return needs


def sr_presets() -> list[Preset]:
    presets = []
    names = {
        "swinir": ("SwinIR", "SwinIR-M (11.9M)", "SwinIR student (1.2M: embed 60, 4x6 blocks)"),
        "rcan": ("RCAN", "RCAN (15.6M: 10 groups x 20 RCAB)", "RCAN student (5.2M: 10 groups x 6 RCAB)"),
    }
    for backbone in ("swinir", "rcan"):
        label, teacher_name, student_name = names[backbone]
        for scale in (2, 3, 4):
            for method in ("scratch", "logits", "fakd", "dckd", "dckd_star"):
                name = f"{backbone}_x{scale}_{method}"
                row = TABLE_2.get((backbone, scale, method))
                results = [paper_numbers(SR_SETS, row)] if row else []
                if results and method != "scratch":
                    results.append(
                        "teacher (official checkpoint, same table): "
                        + paper_numbers(SR_SETS, TABLE_2[(backbone, scale, "teacher")])
                    )
                row_text = (
                    f'Table 2, {label} x{scale}, row "{METHOD_NAMES[method]}"'
                    if row
                    else f"Table 2, {label} x{scale} (which has no {METHOD_NAMES[method]} row: the paper reports "
                    f"{METHOD_NAMES[method]} at x4 only)"
                )
                presets.append(
                    Preset(
                        path=f"configs/sr/{name}.yaml",
                        title=f"{label} x{scale} super-resolution, {METHOD_NAMES[method]}: "
                        + (f"{teacher_name} -> {student_name}" if method != "scratch" else student_name),
                        method=METHOD_TITLES[method],
                        evaluate=f"dckd test runs/sr/{name}/weights.pth " + " ".join(f"datasets/{s}" for s in SR_SETS),
                        paper_row=row_text,
                        options=sr_options(backbone, scale, method, name),
                        hardware=SR_HARDWARE,
                        needs=sr_needs(backbone, scale, method),
                        results=results,
                        results_protocol=f"Y channel, crop border {scale}",
                        notes=_sr_recipe_notes() + method_notes(method),
                    )
                )
    return presets


# --------------------------------------------------------------------------------------------------
# configs/deblur (Table 3) and configs/derain (Table 4)
# --------------------------------------------------------------------------------------------------
RESTORMER_PROGRESSIVE = [(92000, 160, 40), (156000, 192, 32), (204000, 256, 16), (240000, 320, 8), (276000, 384, 8)]


def _restormer_recipe() -> tuple[dict, dict, list[dict], list[str]]:
    """(optimizer, schedule, progressive stages, recipe notes) of Restormer's own training recipe."""
    optimizer = {"name": "adamw", "lr": 3e-4, "betas": [0.9, 0.999], "weight_decay": 1e-4}
    schedule = {
        "name": "cosine",
        "periods_iters": [92000, 208000],
        "restart_weights": [1.0, 1.0],
        "eta_min": [3e-4, 1e-6],
    }
    stages = [
        {"start_iter": start, "lq_patch_size": patch, "batch_size": batch}
        for start, patch, batch in RESTORMER_PROGRESSIVE
    ]
    notes = [
        "Restormer recipe: AdamW (0.9, 0.999), weight decay 1e-4, lr 3e-4 held for 92k iterations then cosine "
        "to 1e-6 over 208k (periods [92000, 208000], eta_min [3e-4, 1e-6]), 300k iterations, progressive "
        "patches/batches 128/64, then 160/40, 192/32, 256/16, 320/8, 384/8 from iterations 92k, 156k, 204k, "
        "240k, 276k (global batches), flips and rotations, student EMA 0.999."
    ]
    return optimizer, schedule, stages, notes


def deblur_presets() -> list[Preset]:
    presets = []
    for backbone in ("nafnet", "restormer"):
        for method in ("scratch", "logits", "dckd"):
            name = f"{backbone}_gopro_{method}"
            data = {
                "task": "deblur",
                "scale": 1,
                "train": {"kind": "gopro", "name": "GoPro", "root": "datasets/GoPro", "split": "train"},
                "validation": [{"kind": "gopro", "name": "GoPro", "root": "datasets/GoPro", "split": "test"}],
            }
            if backbone == "nafnet":
                label = "NAFNet (teacher NAFNet-GoPro-width32, 17.1M -> student width 16, 22 blocks, 2.7M)"
                student, teacher = (
                    {"preset": "nafnet_width16"},
                    {"preset": "nafnet_gopro_width32", "checkpoint": NAFNET_CHECKPOINT},
                )
                data.update({"lq_patch_size": 256, "batch_size": 32, "augment": True, "num_workers": 4})
                optimizer = {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.9], "weight_decay": 1e-3}
                schedule = {"name": "cosine", "periods_iters": [], "eta_min": [1e-7]}
                total = 200000
                notes = [
                    "NAFNet recipe: AdamW (0.9, 0.9), weight decay 1e-3, lr 1e-3 cosine to 1e-7 over the whole "
                    "run, 200k iterations, patch 256, global batch 32 (8 per GPU on 4 GPUs), flips and "
                    "rotations, student EMA 0.999, L1 reconstruction loss."
                ]
                teacher_file = f"{NAFNET_CHECKPOINT} (official NAFNet-GoPro-width32; key params)"
                label_short = "NAFNet"
            else:
                label = "Restormer (teacher Restormer, 26.1M -> student dim 24, 22 blocks, 3.8M)"
                student, teacher = (
                    {"preset": "restormer_dim24"},
                    {"preset": "restormer", "checkpoint": RESTORMER_DEBLUR_CHECKPOINT},
                )
                optimizer, schedule, progressive, notes = _restormer_recipe()
                data.update(
                    {
                        "lq_patch_size": 128,
                        "batch_size": 64,
                        "augment": True,
                        "num_workers": 4,
                        "progressive": progressive,
                    }
                )
                total = 300000
                teacher_file = (
                    f"{RESTORMER_DEBLUR_CHECKPOINT} (official Restormer motion-deblurring weights; key params)"
                )
                label_short = "Restormer"
            options = assemble(
                name,
                "runs/deblur",
                method,
                student,
                teacher,
                data,
                optimizer,
                schedule,
                train_section(total, 10000, 5000),
                {"y_channel": False, "crop_border": 0},
            )
            needs = [
                "datasets/GoPro/train/<sequence>/{blur,sharp}/*.png and datasets/GoPro/test/<sequence>/"
                "{blur,sharp}/*.png (GoPro_Large: 2103 training and 1111 test pairs; input/ + target/ "
                "folders also work)"
            ]
            if method != "scratch":
                needs.append(teacher_file)
            if method == "dckd":
                needs.append(NEEDS_VQGAN)
            results = [f"GoPro {TABLE_3[(backbone, method)]}"]
            if method != "scratch":
                results.append(f"teacher (official checkpoint, same table): GoPro {TABLE_3[(backbone, 'teacher')]}")
            presets.append(
                Preset(
                    path=f"configs/deblur/{name}.yaml",
                    title=f"GoPro motion deblurring, {METHOD_NAMES[method]}: {label}",
                    method=METHOD_TITLES[method],
                    evaluate=f"dckd test runs/deblur/{name}/weights.pth datasets/GoPro --task deblur",
                    paper_row=f'Table 3, {label_short}, row "{METHOD_NAMES[method]}"',
                    options=options,
                    hardware=[
                        f"not reported in the paper for deblurring (its SR runs use 4 GPUs); {total // 1000}k "
                        "iterations as the backbone's own recipe."
                    ],
                    needs=needs,
                    results=results,
                    results_protocol="RGB, no border cropped, whole 1280x720 test images",
                    notes=notes
                    + [
                        "Validation on the 1111 GoPro test pairs every 10k iterations (the paper does not "
                        "say how often it validated)."
                    ]
                    + method_notes(method, "deblur"),
                )
            )
    return presets


def derain_presets() -> list[Preset]:
    presets = []
    for method in ("scratch", "logits", "dckd"):
        name = f"restormer_rain13k_{method}"
        optimizer, schedule, progressive, notes = _restormer_recipe()
        data = {
            "task": "derain",
            "scale": 1,
            "train": {"kind": "input_target", "name": "Rain13K", "root": "datasets/Rain13K"},
            "validation": [
                {"kind": "input_target", "name": name_, "root": f"datasets/{name_}"} for name_ in DERAIN_TESTS
            ],
            "lq_patch_size": 128,
            "batch_size": 64,
            "augment": True,
            "num_workers": 4,
            "progressive": progressive,
        }
        options = assemble(
            name,
            "runs/derain",
            method,
            {"preset": "restormer_dim24"},
            {"preset": "restormer", "checkpoint": RESTORMER_DERAIN_CHECKPOINT},
            data,
            optimizer,
            schedule,
            train_section(300000, 10000, 5000),
            {"y_channel": True, "crop_border": 0},
        )
        needs = [
            "datasets/Rain13K/{input,target}/*.png (13,712 training pairs, Restormer's layout)",
            "datasets/{Test100,Rain100H,Rain100L,Test2800,Test1200}/{input,target}/*.png",
        ]
        if method != "scratch":
            needs.append(f"{RESTORMER_DERAIN_CHECKPOINT} (official Restormer deraining weights; key params)")
        if method == "dckd":
            needs.append(NEEDS_VQGAN)
        results = [paper_numbers(DERAIN_TESTS, TABLE_4[method])]
        if method != "scratch":
            results.append(
                "teacher (official checkpoint, same table): " + paper_numbers(DERAIN_TESTS, TABLE_4["teacher"])
            )
        presets.append(
            Preset(
                path=f"configs/derain/{name}.yaml",
                title=f"Rain13K deraining, {METHOD_NAMES[method]}: Restormer (26.1M) -> Restormer dim 24, 22 blocks (3.8M)",
                method=METHOD_TITLES[method],
                evaluate=f"dckd test runs/derain/{name}/weights.pth "
                + " ".join(f"datasets/{s}" for s in DERAIN_TESTS)
                + " --task derain",
                paper_row=f'Table 4, Restormer, row "{METHOD_NAMES[method]}"',
                options=options,
                hardware=[
                    "not reported in the paper for deraining (its SR runs use 4 GPUs); 300k iterations as "
                    "Restormer's own recipe."
                ],
                needs=needs,
                results=results,
                results_protocol="Y channel, no border cropped",
                notes=notes
                + [
                    "Validation on all five test sets (4,300 images) every 10k iterations (the paper does "
                    "not say how often it validated)."
                ]
                + method_notes(method, "derain"),
            )
        )
    return presets


# --------------------------------------------------------------------------------------------------
# configs/ablations: RCAN x2 (Tables 5-7, Fig. 8)
# --------------------------------------------------------------------------------------------------
@dataclass
class Ablation:
    name: str
    title: str
    paper_row: str
    results: list[str]
    dckd_options: dict
    same_as: str = ""
    """A note when this row equals another preset (a path: same options; a sentence: said as it is)."""


def ablation_rows() -> list[Ablation]:
    rows = [
        Ablation(
            "rcan_x2_components_baseline",
            "components: DCR off, DMM off",
            "Table 5, row DCR ✘ DMM ✘",
            ["Set14 33.83/0.9197, Urban100 32.67/0.9329"],
            {"contrastive": 0.0, "codebook": 0.0},
            "Trains the loss of configs/sr/rcan_x2_logits.yaml (L_rec + L_kd), as method dckd with both DCKD "
            "terms at 0; the paper's baseline row equals its Table 2 Logits row.",
        ),
        Ablation(
            "rcan_x2_components_dcr",
            "components: DCR on, DMM off",
            "Table 5, row DCR ✓ DMM ✘",
            ["Set14 33.98/0.9208, Urban100 32.83/0.9346"],
            {"codebook": 0.0},
        ),
        Ablation(
            "rcan_x2_components_dmm",
            "components: DCR off, DMM on",
            "Table 5, row DCR ✘ DMM ✓",
            ["Set14 33.92/0.9205, Urban100 32.81/0.9343"],
            {"contrastive": 0.0},
        ),
        Ablation(
            "rcan_x2_components_dcr_dmm",
            "components: DCR on, DMM on (full DCKD)",
            "Table 5, row DCR ✓ DMM ✓",
            ["Set14 34.01/0.9213, Urban100 32.92/0.9351"],
            {},
            "configs/sr/rcan_x2_dckd.yaml",
        ),
    ]
    for kind, label, numbers in (
        ("blur", "Random Blur", "Set14 34.01/0.9212, Urban100 32.89/0.9352"),
        ("noise", "Random Noise", "Set14 34.01/0.9213, Urban100 32.92/0.9351"),
        ("resize", "Random Resize", "Set14 33.99/0.9212, Urban100 32.90/0.9354"),
        ("mix", "Random Mix", "Set14 34.00/0.9212, Urban100 32.87/0.9353"),
    ):
        rows.append(
            Ablation(
                f"rcan_x2_degradation_{kind}",
                f"negatives degraded by {label.lower()}",
                f'Table 6, row "{label}"',
                [numbers],
                {"degradations": (kind,)},
                "configs/sr/rcan_x2_dckd.yaml" if kind == "noise" else "",
            )
        )
    for weight, numbers in (("0.01", "32.87/0.9346"), ("0.1", "32.92/0.9351"), ("1.0", "32.81/0.9350")):
        rows.append(
            Ablation(
                f"rcan_x2_weight_dcl_{weight}",
                f"loss weights: lambda_dcl = {weight}",
                f"Table 7, lambda_dcl = {weight}",
                [f"Urban100 {numbers}"],
                {"contrastive": float(weight)},
                "configs/sr/rcan_x2_dckd.yaml" if weight == "0.1" else "",
            )
        )
    for weight, numbers in (("0.0001", "32.84/0.9345"), ("0.001", "32.92/0.9351"), ("0.01", "32.82/0.9341")):
        rows.append(
            Ablation(
                f"rcan_x2_weight_ce_{weight}",
                f"loss weights: lambda_ce = {weight}",
                f"Table 7, lambda_ce = {weight}",
                [f"Urban100 {numbers}"],
                {"codebook": float(weight)},
                "configs/sr/rcan_x2_dckd.yaml" if weight == "0.001" else "",
            )
        )
    for count, psnr in ((3, "32.82"), (4, "32.85"), (5, "32.92"), (6, "32.93"), (7, "32.93")):
        rows.append(
            Ablation(
                f"rcan_x2_negatives_{count}",
                f"number of negatives N = {count} (num_neg = {count - 1})",
                f"Fig. 8 (left), N = {count}",
                [f"Urban100 {psnr} dB (read off the bar chart; SSIM not reported)"],
                {"negatives": count},
                "configs/sr/rcan_x2_dckd.yaml" if count == 5 else "",
            )
        )
    for step, psnr in ((100, "32.79"), (500, "32.82"), (1000, "32.92"), (2000, "32.84"), (5000, "32.83")):
        rows.append(
            Ablation(
                f"rcan_x2_history_step_{step}",
                f"initial history-update step s = {step}",
                f"Fig. 8 (right), initial update step {step}",
                [f"Urban100 {psnr} dB (read off the bar chart; SSIM not reported)"],
                {"history_step": step},
                "configs/sr/rcan_x2_dckd.yaml" if step == 1000 else "",
            )
        )
    return rows


def ablation_presets() -> list[Preset]:
    presets = []
    for row in ablation_rows():
        options = sr_options("rcan", 2, "dckd", row.name, output_dir="runs/ablations", **row.dckd_options)
        section = options["dckd"]
        notes = _sr_recipe_notes() + [
            "Ablations of the paper are all RCAN x2 (teacher RCAN, student 10 groups x 6 RCAB), evaluated on Set14 "
            "and Urban100."
        ]
        if row.same_as.startswith("configs/"):
            notes.append(
                f"Same options as {row.same_as} (only the run name differs); kept as its own file so every "
                "row of the ablation has one."
            )
        elif row.same_as:
            notes.append(row.same_as)
        if "degradations" in row.dckd_options:
            notes.append(
                "Negatives as the released code makes them (dckd.negative_sampling: released): each of the 4 "
                "degraded copies draws ONE blur kernel (sizes 3-11, sigmas 0.1-2 per axis) / ONE resize scale "
                "(down U(0.5,1) or, with probability 0.25, up U(1,1.5)) and mode, shared by the whole batch; mix = "
                "blur -> resize -> noise at the resized size -> resize back with a second mode; sizes truncated; "
                "no clamp after a resize; the gray-noise field is shared by a copy's gray samples; each kind is "
                "applied with its probability (here 1) per copy. Per-sample draws: --set "
                "dckd.negative_sampling=per_sample."
            )
        if "history_step" in row.dckd_options:
            notes.append(
                "The step grows in proportion: s = step, 2 step, 3 step ... per 100k iterations (the "
                "released schedule for step 1000 is 1000/2000/3000; reading for other steps, see "
                "docs/configs.md)."
            )
        needs = sr_needs("rcan", 2, "dckd")
        if not uses_vqgan("dckd", section):
            needs = [item for item in needs if item != NEEDS_VQGAN]
        presets.append(
            Preset(
                path=f"configs/ablations/{row.name}.yaml",
                title=f"Ablation (RCAN x2, DCKD), {row.title}: RCAN (15.6M) -> RCAN student (5.2M)",
                method=f"DCKD with {row.title.split(': ', 1)[-1]}: {loss_formula(section)}",
                evaluate=f"dckd test runs/ablations/{row.name}/weights.pth datasets/Set14 datasets/Urban100",
                paper_row=row.paper_row,
                options=options,
                hardware=SR_HARDWARE,
                needs=needs,
                results=row.results,
                results_protocol="Y channel, crop border 2",
                notes=notes,
            )
        )
    return presets


# --------------------------------------------------------------------------------------------------
# configs/mclir: Table 8 (appendix)
# --------------------------------------------------------------------------------------------------
def mclir_presets() -> list[Preset]:
    presets = []
    for method in ("mclir", "dckd"):
        name = f"swinir_light_x4_{method}"
        data = sr_data(4, patch=64, batch=64)
        options = assemble(
            name,
            "runs/mclir",
            method,
            {"preset": "swinir_light_x4"},
            {"preset": "swinir_m_x4", "checkpoint": SWINIR_M_CHECKPOINT.format(scale=4)},
            data,
            {"name": "adam", "lr": 2e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
            {"name": "multistep", "milestones_iters": [250000, 400000, 450000, 475000], "gamma": 0.5},
            train_section(500000, 5000, 5000),
            {"y_channel": True, "crop_border": 4},
        )
        needs = [
            NEEDS_DIV2K.format(scale=4),
            "datasets/{Set5,Set14,Urban100}/HR/*.png (+ LR_bicubic/X4); add datasets/BSD100 and "
            "datasets/Manga109 for the final `dckd test`",
            NEEDS_VQGAN,
        ]
        if method == "dckd":
            needs.insert(2, NEEDS_TEACHER["swinir"].format(scale=4))
        presets.append(
            Preset(
                path=f"configs/mclir/{name}.yaml",
                title=f"SwinIR-light x4 super-resolution, {METHOD_NAMES[method]}: the official SwinIR-light architecture "
                "(pixelshuffledirect, 0.9M) as the student",
                method=METHOD_TITLES[method],
                evaluate=f"dckd test runs/mclir/{name}/weights.pth " + " ".join(f"datasets/{s}" for s in TABLE_8_SETS),
                paper_row=f'Table 8 (appendix), SwinIR-light x4, row "{"MCLIR" if method == "mclir" else "DCKD"}"',
                options=options,
                hardware=[
                    "not reported in the paper: it gives neither the teacher, nor the schedule, nor the hardware "
                    "of this comparison. Length here: SwinIR-light's official recipe, 500k iterations."
                ],
                needs=needs,
                results=[
                    paper_numbers(TABLE_8_SETS, TABLE_8[method]),
                    'official SwinIR-light (same table, row "-"): ' + paper_numbers(TABLE_8_SETS, TABLE_8["official"]),
                ],
                results_protocol="Y channel, crop border 4; Set5 not reported",
                notes=[
                    "Our choice, not the paper's: SwinIR-light's official recipe (LR patch 64, batch 64, Adam (0.9, "
                    "0.99), lr 2e-4 halved at 250k/400k/450k/475k, 500k iterations, EMA 0.999)."
                ]
                + (
                    [
                        "Teacher: SwinIR-M x4 (our choice; the paper does not name the teacher of Table 8). DCKD "
                        "options as Table 2 (no LCR term)."
                    ]
                    if method == "dckd"
                    else [
                        "MCLIR (Wu et al., AAAI 2024): anchor S(x), positive the ground truth, negative the history "
                        "model's output, in the VQGAN's feature levels, weight 0.1 (our defaults; not given by the "
                        "DCKD paper)."
                    ]
                ),
            )
        )
    return presets
