"""Check dckd against spandrel, the model loader of chaiNNer and ComfyUI; the tables of docs/interop.md come from here.

Run in the separate spandrel environment (``bash tools/spandrel_env.sh``; dckd runs from this checkout through
PYTHONPATH because its pyproject pins torch<2.14):

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv-spandrel/bin/python tools/spandrel_check.py [--iterations 2] [--tiny]

Part 1, students: trains the paper's SwinIR, RCAN and NAFNet students for ``--iterations`` with dckd's engine
(``--tiny``: small stand-ins, seconds) and saves them as dckd does (``weights.pth``); spandrel's
``ModelLoader().load_from_file`` reads each file as chaiNNer does (SwinIR and NAFNet: the ``weights.pth``
itself; RCAN: the file ``official_state_dict`` writes in the official layout, since spandrel does not detect
BasicSR's RCAN keys, which is shown too). Each network spandrel built is compared with the same weights
loaded by ``dckd.load_network`` on a bundled test photograph, whole and cropped to odd sides: the largest
absolute difference of the bare models (float32) and of spandrel's own call (which clamps to [0, 1]) against
dckd's output clamped likewise. Both must stay within ``TOLERANCE``.

Part 2, teachers: random-weight state_dicts of spandrel's own architectures (none of them in dckd), each saved
as a plain ``.pth`` and used as ``teacher: {checkpoint: FILE}`` (no backbone: spandrel detects it) in a dckd
training run of two iterations (method logits, a tiny EDSR student, patches of 12 pixels, so that
architectures with a minimum size are padded); the teacher dckd built is compared with spandrel's own call
on an image with odd sides (after clamping, which only spandrel's call does).

Exit status 0 when every check passes, 1 otherwise. Prints markdown tables and the versions.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

import dckd
from dckd.config.schema import NetworkConfig, config_from_dict
from dckd.data.bundled import bundled_root
from dckd.data.image_io import read_image
from dckd.engine.loop import train
from dckd.engine.setup import build_network
from dckd.files.weights import save_safetensors_atomic
from dckd.models.backbones import official_state_dict

TOLERANCE = 1e-5
"""Largest absolute difference accepted between spandrel's and dckd's outputs in float32 (images in [0, 1])."""

TINY_STUDENTS = {
    "swinir": {
        "upscale": 4,
        "in_chans": 3,
        "img_size": 16,
        "window_size": 8,
        "img_range": 1.0,
        "depths": [2, 2],
        "embed_dim": 24,
        "num_heads": [2, 2],
        "mlp_ratio": 2,
        "upsampler": "pixelshuffle",
        "resi_connection": "1conv",
    },
    "rcan": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_group": 2, "num_block": 2, "squeeze_factor": 4},
    "nafnet": {"img_channel": 3, "width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]},
}
PAPER_STUDENTS = {"swinir": "swinir_s_x4", "rcan": "rcan_student_x4", "nafnet": "nafnet_width16"}

TEACHERS = [
    # (label, spandrel module, class, constructor arguments, scale)
    ("ESRGAN (RRDBNet, nf16, 2 RRDB)", "ESRGAN", "ESRGAN", dict(num_filters=16, num_blocks=2, scale=2), 2),
    ("ESRGAN x4", "ESRGAN", "ESRGAN", dict(num_filters=16, num_blocks=2, scale=4), 4),
    (
        "ESRGAN x2 pixel-unshuffle (Real-ESRGAN x2plus style)",
        "ESRGAN",
        "ESRGAN",
        dict(in_nc=12, out_nc=3, num_filters=16, num_blocks=2, scale=4, shuffle_factor=2),
        2,
    ),
    ("Compact (SRVGGNetCompact)", "Compact", "Compact", dict(num_feat=16, num_conv=4, upscale=2), 2),
    ("SPAN", "SPAN", "SPAN", dict(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2), 2),
    (
        "HAT",
        "HAT",
        "HAT",
        dict(img_size=32, embed_dim=30, depths=(2, 2), num_heads=(2, 2), window_size=8, upscale=2, mlp_ratio=2.0),
        2,
    ),
    ("OmniSR", "OmniSR", "OmniSR", dict(num_feat=16, block_num=1, res_num=1, window_size=8, up_scale=2), 2),
    ("RealCUGAN UpCunet2x", "RealCUGAN", "UpCunet2x", dict(), 2),
    (
        "DAT",
        "DAT",
        "DAT",
        dict(img_size=64, embed_dim=32, depth=[2, 2], num_heads=[2, 2], split_size=[2, 4], upscale=2),
        2,
    ),
    ("SAFMN", "SAFMN", "SAFMN", dict(dim=16, n_blocks=2, upscaling_factor=2), 2),
    ("PLKSR", "PLKSR", "PLKSR", dict(dim=16, n_blocks=2, upscaling_factor=2), 2),
    ("RealPLKSR", "PLKSR", "RealPLKSR", dict(dim=16, n_blocks=2, upscaling_factor=2), 2),
    (
        "Swin2SR",
        "Swin2SR",
        "Swin2SR",
        dict(
            img_size=32,
            embed_dim=24,
            depths=[2, 2],
            num_heads=[2, 2],
            window_size=8,
            upscale=2,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
        ),
        2,
    ),
    (
        "DRCT",
        "DRCT",
        "DRCT",
        dict(
            img_size=32,
            embed_dim=24,
            depths=(2, 2),
            num_heads=(2, 2),
            window_size=8,
            upscale=2,
            gc=8,
            upsampler="pixelshuffle",
        ),
        2,
    ),
    (
        "ATD",
        "ATD",
        "ATD",
        dict(
            img_size=32,
            embed_dim=24,
            depths=(2, 2),
            num_heads=(2, 2),
            window_size=8,
            num_tokens=16,
            upscale=2,
            upsampler="pixelshuffle",
        ),
        2,
    ),
    ("RGT", "RGT", "RGT", dict(img_size=32, embed_dim=24, depth=[2, 2], num_heads=[2, 2], upscale=2), 2),
    ("CRAFT", "CRAFT", "CRAFT", dict(embed_dim=48, depths=[2], num_heads=[6], upscale=2), 2),
    ("DITN", "DITN", "DITN", dict(dim=24, ITL_blocks=1, SAL_blocks=1, UFONE_blocks=1, upscale=2), 2),
    ("SwiftSRGAN", "SwiftSRGAN", "SwiftSRGAN", dict(num_channels=16, num_blocks=2, upscale_factor=2), 2),
    ("MoSR", "MoSR", "MoSR", dict(dim=16, n_block=2, upscale=2), 2),
    ("SeemoRe", "SeemoRe", "SeemoRe", dict(scale=2, num_experts=3, num_layers=2, embedding_dim=16), 2),
    ("DCTLSA", "DCTLSA", "DCTLSA", dict(nf=20, num_modules=6, num_head=5, upscale=2), 2),
    (
        "FDAT",
        "FDAT",
        "FDAT",
        dict(embed_dim=24, num_groups=1, depth_per_group=2, num_heads=4, window_size=8, scale=2, mid_dim=16),
        2,
    ),
    ("MoESR", "MoESR", "MoESR", dict(dim=16, n_blocks=2, n_block=2, scale=2, upsample_dim=16), 2),
    ("DnCNN (denoising, x1)", "DnCNN", "DnCNN", dict(in_nc=3, out_nc=3, nc=16, nb=5), 1),
    ("SCUNet (restoration, x1)", "SCUNet", "SCUNet", dict(config=[2] * 7, dim=64, input_resolution=256), 1),
    (
        "DRUNet (denoising, x1, noise-level input)",
        "DRUNet",
        "DRUNet",
        dict(in_nc=4, out_nc=3, nc=[16, 32, 64, 128], nb=2),
        1,
    ),
]


def largest_difference(first: torch.Tensor, second: torch.Tensor) -> float:
    return (first.float() - second.float()).abs().max().item()


def test_images(scale: int) -> list[tuple[str, torch.Tensor]]:
    """A bundled test photograph at the network's input scale, whole and cropped to odd sides."""
    root = bundled_root("test")
    path = root / "HR" / "chelsea.png" if scale == 1 else root / "LR_bicubic" / f"X{scale}" / f"chelseax{scale}.png"
    image = torch.from_numpy(read_image(path)).permute(2, 0, 1).unsqueeze(0).contiguous()
    return [(f"{path.name} {image.shape[-2]}x{image.shape[-1]}", image), ("its 37x53 crop", image[..., :37, :53])]


def student_config(family: str, tiny: bool, iterations: int, folder: Path) -> dict:
    if tiny:
        options = dict(TINY_STUDENTS[family])
        if family == "rcan":
            options["upscale"] = 4
        student = {"backbone": family, "options": options}
    else:
        student = {"preset": PAPER_STUDENTS[family]}
    if family == "nafnet":  # deblurring: scale 1, blurred on the fly from the bundled photographs
        data = {"train": {"kind": "synthetic", "gt_dir": "dckd:bundled/train/HR"}, "scale": 1, "lq_patch_size": 64}
    else:
        data = {"train": {"kind": "bundled", "split": "train"}, "scale": 4, "lq_patch_size": 32}
    data.update(batch_size=2, num_workers=0)
    return {
        "name": family,
        "output_dir": str(folder),
        "method": "scratch",
        "student": student,
        "data": data,
        "train": {
            "total_iters": iterations,
            "log_every_iters": iterations,
            "validate_every_iters": 0,
            "checkpoint_every_iters": 1000,
            "ema_decay": 0.5,
            "tensorboard": False,
        },
    }


def check_students(spandrel, iterations: int, tiny: bool, folder: Path) -> tuple[list[str], bool]:
    rows, passed = [], True
    for family in ("swinir", "rcan", "nafnet"):
        started = time.time()
        run_dir = train(config_from_dict(student_config(family, tiny, iterations, folder)))
        weights = run_dir / "weights.pth"
        ours = dckd.load_network(weights)  # params_ema, as spandrel takes it
        parameters = sum(parameter.numel() for parameter in ours.parameters())
        name = PAPER_STUDENTS[family] if not tiny else f"tiny {family}"
        files = [weights]
        if family == "rcan":
            try:
                spandrel.ModelLoader().load_from_file(weights)
                rows.append(f"| {name} | weights.pth (BasicSR keys) | detected (unexpected) | | | |")
                passed = False
            except spandrel.UnsupportedModelError:
                rows.append(f"| {name} | weights.pth (BasicSR keys) | not detected, as expected | | | |")
            files = [save_safetensors_atomic(official_state_dict("rcan", ours), run_dir / "rcan_official.safetensors")]
        for path in files:
            descriptor = spandrel.ModelLoader().load_from_file(path).eval()
            model_differences, call_differences = [], []
            for label, image in test_images(ours.scale):
                with torch.no_grad():
                    expected = ours(image.clone())
                    model_differences.append((largest_difference(descriptor.model(image.clone()), expected), label))
                call_differences.append((largest_difference(descriptor(image.clone()), expected.clamp(0, 1)), label))
            worst = max(model_differences + call_differences)[0]
            passed &= worst <= TOLERANCE
            shown = "; ".join(f"{value:.1e} ({label})" for value, label in model_differences)
            called = "; ".join(f"{value:.1e}" for value, _ in call_differences)
            rows.append(
                f"| {name} ({parameters / 1e6:.2f}M, {iterations} iterations) | {path.name} | "
                f"{descriptor.architecture.name} x{descriptor.scale} | {shown} | {called} | "
                f"{'ok' if worst <= TOLERANCE else 'FAIL'} ({time.time() - started:.0f} s) |"
            )
    header = [
        "| dckd student | file given to spandrel | spandrel detects | max abs diff, bare models | "
        "max abs diff, spandrel's call vs dckd clamped | result |",
        "|---|---|---|---|---|---|",
    ]
    return header + rows, passed


def teacher_run(checkpoint: Path, scale: int, folder: Path) -> Path:
    student = {
        "backbone": "edsr",
        "options": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": scale},
    }
    if scale == 1:
        train_set = {"kind": "synthetic", "gt_dir": "dckd:bundled/train/HR"}
    else:
        train_set = {"kind": "bundled", "split": "train"}
    raw = {
        "name": "run",
        "output_dir": str(folder),
        "method": "logits",
        "student": student,
        "teacher": {"checkpoint": str(checkpoint)},
        "data": {"train": train_set, "scale": scale, "lq_patch_size": 12, "batch_size": 2, "num_workers": 0},
        "train": {
            "total_iters": 2,
            "log_every_iters": 1,
            "validate_every_iters": 0,
            "checkpoint_every_iters": 1000,
            "tensorboard": False,
        },
    }
    return train(config_from_dict(raw))


def check_teachers(spandrel, folder: Path) -> tuple[list[str], bool]:
    rows, passed = [], True
    for label, module_name, class_name, arguments, scale in TEACHERS:
        started = time.time()
        module = importlib.import_module(f"spandrel.architectures.{module_name}")
        torch.manual_seed(0)
        network = getattr(module, class_name)(**arguments)
        with torch.no_grad():  # every parameter away from its initial value
            for parameter in network.parameters():
                spread = parameter.std().item() if parameter.numel() > 1 else 0.0
                parameter.add_(torch.randn_like(parameter) * (0.1 * spread if spread > 0 else 0.01))
        checkpoint = folder / f"{module_name}_{class_name}_{len(rows)}.pth"
        torch.save(network.state_dict(), checkpoint)
        try:
            teacher = build_network(NetworkConfig(backbone="spandrel", checkpoint=str(checkpoint)), "teacher", scale)
            descriptor = spandrel.ModelLoader().load_from_file(checkpoint).eval()
            image = torch.rand(1, 3, 13, 21, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                difference = largest_difference(teacher(image.clone()).clamp(0, 1), descriptor(image.clone()))
            run_dir = teacher_run(checkpoint, scale, folder / f"run{len(rows)}")
            trained = (run_dir / "weights.pth").is_file()
            requirements = descriptor.size_requirements
            sizes = f"min {requirements.minimum}, multiple of {requirements.multiple_of}"
            precisions = (
                f"{'yes' if descriptor.supports_half else 'no'} / {'yes' if descriptor.supports_bfloat16 else 'no'}"
            )
            ok = trained and difference <= TOLERANCE
            batches = "whole batch" if teacher.batched else "one image at a time"
            rows.append(
                f"| {label} | {teacher.architecture} x{teacher.scale} | {sizes} | {precisions} | {batches} | "
                f"{difference:.1e} | {'ok' if ok else 'FAIL'} ({time.time() - started:.1f} s) |"
            )
        except Exception as error:
            ok = False
            rows.append(f"| {label} | FAIL: {type(error).__name__}: {str(error)[:150]} | | | | | |")
        passed &= ok
        print(rows[-1], file=sys.stderr, flush=True)
    header = [
        "| spandrel architecture (random weights) | detected | size requirements | float16 / bfloat16 | runs | "
        "max abs diff to spandrel's call, 13x21 input | 2-iteration logits run |",
        "|---|---|---|---|---|---|---|",
    ]
    return header + rows, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2, help="training iterations of each student")
    parser.add_argument("--tiny", action="store_true", help="small students instead of the paper's")
    parser.add_argument("--only", choices=("students", "teachers"), help="run one part")
    arguments = parser.parse_args()
    import spandrel
    import torchvision

    print(
        f"{date.today().isoformat()}: spandrel {spandrel.__version__}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, Python {platform.python_version()}, {platform.machine()} CPU, "
        f"{torch.get_num_threads()} thread(s); dckd from {Path(dckd.__file__).parent}"
    )
    passed = True
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if arguments.only in (None, "students"):
            rows, ok = check_students(spandrel, arguments.iterations, arguments.tiny, folder / "students")
            print(f"\n## Students (tolerance {TOLERANCE:g})\n\n" + "\n".join(rows))
            passed &= ok
        if arguments.only in (None, "teachers"):
            (folder / "teachers").mkdir()
            rows, ok = check_teachers(spandrel, folder / "teachers")
            print(f"\n## Teachers (tolerance {TOLERANCE:g})\n\n" + "\n".join(rows))
            passed &= ok
    print(f"\n{'all checks passed' if passed else 'SOME CHECKS FAILED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
