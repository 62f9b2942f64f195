"""Presets that are not paper settings: the CPU smoke presets (configs/smoke) and the demo teacher
(configs/demo). Used by tools/make_configs.py."""

from __future__ import annotations

from preset_common import (
    METHOD_NAMES,
    METHOD_TITLES,
    SMOKE_CODEBOOK,
    SMOKE_TEACHER,
    Preset,
    assemble,
    history_section,
    train_section,
)

# --------------------------------------------------------------------------------------------------
# configs/smoke: one per method, CPU, bundled photographs and shipped demo weights
# --------------------------------------------------------------------------------------------------
SMOKE_ITERATIONS = 20


def smoke_presets() -> list[Preset]:
    presets = []
    for method in ("scratch", "logits", "fakd", "dckd", "dckd_star", "mclir"):
        dckd_options = {"history_step": 10} if method in ("dckd", "dckd_star") else {}
        options = assemble(
            method,
            "runs/smoke",
            method,
            {
                "backbone": "edsr",
                "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2, "upscale": 4},
            },
            {
                "backbone": "edsr",
                "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 32, "num_block": 6, "upscale": 4},
                "checkpoint": SMOKE_TEACHER,
            },
            {
                "task": "sr",
                "scale": 4,
                "train": {"kind": "bundled", "split": "train"},
                "validation": [{"kind": "bundled", "split": "val"}],  # never the test photos
                "lq_patch_size": 24,
                "batch_size": 4,
                "augment": True,
                "num_workers": 0,
            },
            {"name": "adam", "lr": 2e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
            {"name": "constant"},
            {
                **train_section(SMOKE_ITERATIONS, SMOKE_ITERATIONS, 10),
                "log_every_iters": 10,
                "keep_checkpoints": 2,
                "tensorboard": False,
            },
            {"y_channel": True, "crop_border": 4},
            **dckd_options,
        )
        if "vqgan" in options:
            options["vqgan"] = {"checkpoint": SMOKE_CODEBOOK}
        section = options[options["method"]]
        if "vqgan_input_range" in section:
            section["vqgan_input_range"] = "minus_one_one"
        if method == "mclir":
            section["history"] = history_section(10)
        needs = ["nothing to download: the photographs shipped with dckd (data kind bundled)"]
        if method != "scratch":
            needs.append(f"{SMOKE_TEACHER} (shipped demo teacher: EDSR 32 channels, 6 blocks, x4)")
        if "vqgan" in options:
            needs.append(f"{SMOKE_CODEBOOK} (shipped demo codebook, made by dckd train-codebook)")
        presets.append(
            Preset(
                path=f"configs/smoke/{method}.yaml",
                title=f"Smoke test, {METHOD_NAMES[method]}: a tiny EDSR x4 student on the photographs shipped with dckd",
                method=METHOD_TITLES[method],
                evaluate=f"dckd test runs/smoke/{method}/weights.pth bundled",
                paper_row="not a setting of the paper; a quick check that the pipeline runs",
                options=options,
                hardware=[
                    f"one CPU process, {SMOKE_ITERATIONS} iterations of batch 4, well under a minute; writes "
                    f"runs/smoke/{method}/ (checkpoints every 10 iterations, validation at the end)."
                ],
                needs=needs,
                results=[],
                notes=[
                    "Student EDSR (16 channels, 2 blocks); LR patch 24, constant lr 2e-4; VQGAN inputs in [-1, 1]; "
                    "the history model updates every 10 iterations so that it moves within the run."
                    if method in ("dckd", "dckd_star", "mclir")
                    else "Student EDSR (16 channels, 2 blocks); LR patch 24, constant lr 2e-4."
                ],
                multi_gpu=False,
            )
        )
    return presets


# configs/smoke: deblurring and deraining on synthetic pairs made from the bundled photographs
# --------------------------------------------------------------------------------------------------
SMOKE_TASK_NETWORKS = {
    "deblur": (
        {
            "backbone": "nafnet",
            "options": {
                "img_channel": 3,
                "width": 8,
                "middle_blk_num": 1,
                "enc_blk_nums": [1, 1],
                "dec_blk_nums": [1, 1],
            },
        },
        {
            "backbone": "nafnet",
            "options": {
                "img_channel": 3,
                "width": 16,
                "middle_blk_num": 1,
                "enc_blk_nums": [1, 1],
                "dec_blk_nums": [1, 1],
            },
        },
    ),
    "derain": (
        {
            "backbone": "restormer",
            "options": {
                "inp_channels": 3,
                "out_channels": 3,
                "dim": 8,
                "num_blocks": [1, 1, 1, 1],
                "num_refinement_blocks": 1,
                "heads": [1, 2, 4, 8],
                "ffn_expansion_factor": 2.66,
                "bias": False,
                "LayerNorm_type": "WithBias",
            },
        },
        {
            "backbone": "restormer",
            "options": {
                "inp_channels": 3,
                "out_channels": 3,
                "dim": 16,
                "num_blocks": [1, 1, 1, 1],
                "num_refinement_blocks": 1,
                "heads": [1, 2, 4, 8],
                "ffn_expansion_factor": 2.66,
                "bias": False,
                "LayerNorm_type": "WithBias",
            },
        },
    ),
}
BUNDLED_TRAIN_HR = "dckd:bundled/train/HR"
BUNDLED_VAL_HR = "dckd:bundled/val/HR"


def smoke_task_presets() -> list[Preset]:
    presets = []
    for task, (student, teacher) in SMOKE_TASK_NETWORKS.items():
        for method in ("scratch", "logits", "dckd"):
            options = assemble(
                f"{task}_{method}",
                "runs/smoke",
                method,
                student,
                teacher,
                {
                    "task": task,
                    "scale": 1,
                    "train": {"kind": "synthetic", "gt_dir": BUNDLED_TRAIN_HR, "synthetic_task": task},
                    "validation": [
                        {
                            "kind": "synthetic",
                            "name": f"bundled-val-{task}",
                            "gt_dir": BUNDLED_VAL_HR,
                            "synthetic_task": task,
                        }
                    ],
                    "lq_patch_size": 32,
                    "batch_size": 4,
                    "augment": True,
                    "num_workers": 0,
                },
                {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.9], "weight_decay": 1e-3},
                {"name": "cosine", "eta_min": [1e-6]},
                {
                    **train_section(SMOKE_ITERATIONS, SMOKE_ITERATIONS, 10),
                    "log_every_iters": 10,
                    "keep_checkpoints": 2,
                    "tensorboard": False,
                },
                {"y_channel": task == "derain", "crop_border": 0},
                **({"history_step": 10} if method == "dckd" else {}),
            )
            if "vqgan" in options:
                options["vqgan"] = {"checkpoint": SMOKE_CODEBOOK}
                options["dckd"]["vqgan_input_range"] = "minus_one_one"
            if "teacher" in options:
                options["teacher"]["random_init"] = True  # said explicitly: a teacher without weights is an error
            needs = [
                f"nothing to download: synthetic {'motion blur' if task == 'deblur' else 'rain streaks'} made "
                f"on the fly from the photographs shipped with dckd ({BUNDLED_TRAIN_HR}, {BUNDLED_VAL_HR})"
            ]
            if "vqgan" in options:
                needs.append(f"{SMOKE_CODEBOOK} (shipped demo codebook, made by dckd train-codebook)")
            presets.append(
                Preset(
                    path=f"configs/smoke/{task}_{method}.yaml",
                    title=f"Smoke test, {'deblurring' if task == 'deblur' else 'deraining'} with {METHOD_NAMES[method]}: "
                    f"a tiny {student['backbone'].capitalize()} on synthetic pairs from the bundled photographs",
                    method=METHOD_TITLES[method],
                    evaluate=f"dckd test runs/smoke/{task}_{method}/weights.pth --task {task} <folder with input/ and "
                    f"target/>",
                    paper_row="not a setting of the paper; a quick check that the task's pipeline runs",
                    options=options,
                    hardware=[
                        f"one CPU process, {SMOKE_ITERATIONS} iterations of batch 4, well under a minute; writes "
                        f"runs/smoke/{task}_{method}/."
                    ],
                    needs=needs,
                    results=[],
                    notes=[
                        "The teacher has no checkpoint (teacher.random_init: true): this preset checks the pipeline, not the "
                        "method; the real recipes are in configs/deblur and configs/derain. Evaluation "
                        f"{'in RGB' if task == 'deblur' else 'on the Y channel'}, no border crop, as the paper."
                    ],
                    multi_gpu=False,
                )
            )
    return presets


# --------------------------------------------------------------------------------------------------
# configs/demo: the shipped demo teacher (what `dckd demo` distills from)
# --------------------------------------------------------------------------------------------------
DEMO_TEACHER_ITERATIONS = 8000


def demo_presets() -> list[Preset]:
    options = assemble(
        "teacher_x4",
        "runs/demo",
        "scratch",
        {
            "backbone": "edsr",
            "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 32, "num_block": 6, "upscale": 4},
        },
        None,
        {
            "task": "sr",
            "scale": 4,
            "train": {"kind": "bundled", "split": "train"},
            "validation": [{"kind": "bundled", "split": "val"}],  # never the test photos
            "lq_patch_size": 32,
            "batch_size": 16,
            "augment": True,
            "num_workers": 0,
        },
        {"name": "adam", "lr": 5e-4, "betas": [0.9, 0.99], "weight_decay": 0.0},
        {"name": "cosine", "eta_min": [1e-5]},
        {**train_section(DEMO_TEACHER_ITERATIONS, 2000, 1000), "log_every_iters": 200, "tensorboard": False},
        {"y_channel": True, "crop_border": 4},
    )
    return [
        Preset(
            path="configs/demo/teacher_x4.yaml",
            title="The demo teacher (x4) that `dckd demo` distills from: an EDSR (32 channels, 6 blocks, 0.2M "
            "parameters) trained from scratch on the photographs shipped with dckd",
            method=METHOD_TITLES["scratch"],
            evaluate="dckd test runs/demo/teacher_x4/weights.pth bundled",
            paper_row="not a setting of the paper; it makes dckd/assets/weights/demo_teacher_x4.pth",
            options=options,
            hardware=[
                f"this machine's 2 CPU cores (the session's GPU time went to the speed benchmark), {DEMO_TEACHER_ITERATIONS} iterations; "
                "the measured time and PSNR are in docs/demo.md. The shipped file is a copy of "
                "runs/demo/teacher_x4/weights.pth: cp runs/demo/teacher_x4/weights.pth "
                "dckd/assets/weights/demo_teacher_x4.pth"
            ],
            needs=["nothing to download: the photographs shipped with dckd (data kind bundled)"],
            results=[],
            notes=["Other scales: --set data.scale=2 --set student.options.upscale=2 --set name=teacher_x2 (3 alike)."],
            multi_gpu=False,
        )
    ]
