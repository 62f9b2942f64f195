"""Generate a second reference set for ``imresize`` and the PSNR/SSIM metrics from BasicSR's own code.

Command (needs OpenCV for BasicSR's ``filter2D``; install it outside the project environment)::

    pip install --target /tmp/imaging_gen_deps opencv-python-headless
    PYTHONPATH=/tmp/imaging_gen_deps .venv/bin/python tools/references/make_imaging.py \\
        --basicsr /work/refsrc/basicsr-1.4.2

Runtime: a few seconds on one CPU core. It writes ``tests/references/imaging/`` (``index.json`` and
safetensors files, ~0.2 MB) in the format of ``dckd/golden/README.md`` (kinds ``imresize`` and
``metrics``); ``python -c "from dckd.eval.selfcheck import main; main(['tests/references/imaging'])"`` then
checks this implementation against it, and ``tests/test_imaging.py`` does so on every test run.
The tests never run this script; regenerate only on purpose.

BasicSR's files are imported one by one (``utils/matlab_functions.py``, ``utils/color_util.py``,
``metrics/metric_util.py``, ``metrics/psnr_ssim.py``) with stand-ins for the rest of the ``basicsr``
package (only its registry), so neither BasicSR's other dependencies nor an installed BasicSR are
needed. Nothing here is imported by ``dckd``.

Conventions recorded in the files:
- imresize: outputs come from BasicSR's ``imresize`` run in float64 (its ``FloatTensor`` buffers and
  ``linspace`` made float64, nothing else changed) and are stored as float64. BasicSR as shipped computes
  in float32, whose rounding reaches ~1.5e-6 on these images, more than the 1e-6 tolerance; the script
  checks the float64 run against the shipped float32 one (they must agree to 1e-5) and prints the gap.
  Inputs are float32-representable values stored as float64, so both runs see the same image.
- metrics: our images are RGB, BasicSR's ``calculate_psnr``/``calculate_ssim`` expect BGR (they use
  ``bgr2ycbcr``), so each image is passed with its channels reversed; the Y channel is then MATLAB's
  RGB one (65.481 R + 128.553 G + 24.966 B + 16).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPOSITORY / "tests" / "references" / "imaging"


def _load_file_as(module_name: str, path: Path) -> types.ModuleType:
    """Import one source file under a dotted name, so its ``from basicsr.x import y`` lines resolve to stand-ins."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --basicsr must point at a BasicSR source tree")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_basicsr(root: Path) -> dict[str, types.ModuleType]:
    """Import BasicSR's resize, colour and metric files standalone; return them by short name."""
    package = root / "basicsr" if (root / "basicsr").is_dir() else root
    try:
        import cv2  # noqa: F401  (psnr_ssim.py needs it; fail early with instructions)
    except ImportError as error:
        raise SystemExit(
            "BasicSR's psnr_ssim.py needs OpenCV: pip install --target /tmp/imaging_gen_deps "
            "opencv-python-headless and run with PYTHONPATH=/tmp/imaging_gen_deps"
        ) from error

    def stub(name: str, **attributes) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so submodules can be registered below it
        module.__dict__.update(attributes)
        sys.modules[name] = module
        return module

    class _Registry:
        """Stand-in for basicsr.utils.registry: ``@METRIC_REGISTRY.register()`` leaves the function alone."""

        def register(self, obj=None):
            return obj if obj is not None else (lambda function: function)

    stub("basicsr")
    utils = stub("basicsr.utils")
    stub("basicsr.utils.registry", METRIC_REGISTRY=_Registry())
    stub("basicsr.metrics")
    matlab_functions = _load_file_as("basicsr.utils.matlab_functions", package / "utils" / "matlab_functions.py")
    color_util = _load_file_as("basicsr.utils.color_util", package / "utils" / "color_util.py")
    utils.bgr2ycbcr = color_util.bgr2ycbcr
    utils.rgb2ycbcr = color_util.rgb2ycbcr
    utils.rgb2ycbcr_pt = color_util.rgb2ycbcr_pt
    _load_file_as("basicsr.metrics.metric_util", package / "metrics" / "metric_util.py")
    psnr_ssim = _load_file_as("basicsr.metrics.psnr_ssim", package / "metrics" / "psnr_ssim.py")

    # A second copy of matlab_functions whose ``torch`` makes float64 where the code says float32
    # (``torch.FloatTensor`` buffers, default-dtype ``linspace``). The algorithm is untouched; only its
    # rounding error (up to ~1.5e-6 on these images, above the 1e-6 tolerance) goes away.
    matlab_functions_float64 = _load_file_as(
        "basicsr.utils.matlab_functions_float64", package / "utils" / "matlab_functions.py"
    )
    float64_torch = types.ModuleType("torch_float64")
    float64_torch.__dict__.update(torch.__dict__)
    float64_torch.FloatTensor = lambda *size: torch.empty(*size, dtype=torch.float64)
    float64_torch.linspace = lambda *args, **kwargs: torch.linspace(*args, **{"dtype": torch.float64, **kwargs})
    matlab_functions_float64.torch = float64_torch
    return {
        "matlab_functions": matlab_functions,
        "matlab_functions_float64": matlab_functions_float64,
        "psnr_ssim": psnr_ssim,
    }


def basicsr_imresize_float64(
    matlab_functions_float64, image: np.ndarray, scale: float, antialiasing: bool
) -> np.ndarray:
    """BasicSR's imresize in float64 on an (H, W, C) array; a CHW tensor input skips its ``.float()`` cast."""
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).double()
    output = matlab_functions_float64.imresize(chw, scale, antialiasing=antialiasing)
    if output.dtype != torch.float64:
        raise RuntimeError(f"the float64 copy of BasicSR's imresize returned {output.dtype}")
    return np.ascontiguousarray(output.numpy().transpose(1, 2, 0))


def synthetic_image(generator: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An (H, W, 3) float64 image in [0, 1] with smooth regions, hard edges and fine texture.

    Bicubic resizing and SSIM behave differently on each, so all three are present.
    """
    rows = np.linspace(0, 1, height)[:, None, None]
    columns = np.linspace(0, 1, width)[None, :, None]
    phases = generator.uniform(0, 2 * np.pi, size=(1, 1, 3))
    frequencies = generator.uniform(1, 4, size=2)
    smooth = 0.5 + 0.3 * np.sin(2 * np.pi * (frequencies[0] * rows + frequencies[1] * columns) + phases)
    edge_row, edge_column = (
        generator.integers(height // 4, 3 * height // 4),
        generator.integers(width // 4, 3 * width // 4),
    )
    smooth[edge_row:, :edge_column] = generator.uniform(0, 1, size=3)  # a flat block with sharp edges
    texture = 0.15 * generator.standard_normal((height, width, 3))
    return np.clip(smooth + texture, 0.0, 1.0)


def imresize_cases(modules: dict, generator: np.random.Generator, specs) -> tuple[dict, list[dict]]:
    """Run BasicSR's imresize (float64 copy) on synthetic images; return (tensors, cases) for one file.

    Also runs BasicSR's unmodified float32 imresize and stops if the two disagree by more than float32
    rounding, which would mean the float64 copy no longer runs the same algorithm.
    """
    tensors, cases = {}, []
    for index, (height, width, scale, antialiasing) in enumerate(specs):
        # Values exactly representable in float32, so the float32 run sees the very same input.
        image = synthetic_image(generator, height, width).astype(np.float32).astype(np.float64)
        output = basicsr_imresize_float64(modules["matlab_functions_float64"], image, scale, antialiasing)
        output_float32 = modules["matlab_functions"].imresize(image, scale, antialiasing=antialiasing)
        disagreement = float(np.abs(output - output_float32).max())
        if output.shape != output_float32.shape or disagreement > 1e-5:
            raise RuntimeError(f"case {index}: float64 and float32 BasicSR imresize differ by {disagreement:.2e}")
        print(
            f"  imresize {height}x{width} scale {scale:.4g} aa={antialiasing}: float32 BasicSR off by {disagreement:.1e}"
        )
        tensors[f"case{index}.input"] = np.ascontiguousarray(image)
        tensors[f"case{index}.output"] = output
        cases.append(
            {
                "input_shape": list(image.shape),
                "scale": scale,
                "antialiasing": antialiasing,
                "output_shape": list(output.shape),
            }
        )
    return tensors, cases


def degraded_pairs(basicsr_imresize, generator: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Image pairs (reference, distorted) as uint8 RGB: noise, blur-like resampling, clipping, a colour shift."""

    def to_uint8(image: np.ndarray) -> np.ndarray:
        # Contiguous: BasicSR returns transposed views, and save_file would store their raw buffer order.
        return np.ascontiguousarray(np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8))

    pairs = []
    # 1. odd size, mild Gaussian noise.
    reference = synthetic_image(generator, 33, 47)
    pairs.append((reference, reference + 0.02 * generator.standard_normal(reference.shape)))
    # 2. an SR-like distortion: bicubic down x2 then up x2 (edges and texture blurred).
    reference = synthetic_image(generator, 48, 64)
    small = basicsr_imresize(reference, 0.5)
    pairs.append((reference, basicsr_imresize(np.asarray(small, dtype=np.float64), 2.0)))
    # 3. strong noise that saturates at 0 and 255.
    reference = synthetic_image(generator, 30, 24)
    pairs.append((reference, reference + 0.25 * generator.standard_normal(reference.shape)))
    # 4. small square; a per-channel colour shift plus slight noise (Y and RGB respond differently).
    reference = synthetic_image(generator, 23, 23)
    shifted = reference + np.array([0.04, -0.03, 0.06]) + 0.01 * generator.standard_normal(reference.shape)
    pairs.append((reference, shifted))
    return [(to_uint8(reference), to_uint8(np.asarray(distorted))) for reference, distorted in pairs]


def metrics_cases(psnr_ssim, pairs, crop_borders_per_pair) -> tuple[dict, list[dict]]:
    """Run BasicSR's calculate_psnr / calculate_ssim on every pair, crop border and Y/RGB choice."""
    tensors, cases = {}, []
    for pair_index, ((image_a, image_b), crop_borders) in enumerate(zip(pairs, crop_borders_per_pair)):
        tensors[f"pair{pair_index}.a"] = image_a
        tensors[f"pair{pair_index}.b"] = image_b
        # BasicSR's metric functions take BGR; reversing the channels makes their Y the RGB one.
        bgr_a = np.ascontiguousarray(image_a[..., ::-1])
        bgr_b = np.ascontiguousarray(image_b[..., ::-1])
        for crop_border in crop_borders:
            for y_channel in (False, True):
                options = dict(crop_border=crop_border, input_order="HWC", test_y_channel=y_channel)
                cases.append(
                    {
                        "pair": pair_index,
                        "crop_border": crop_border,
                        "y_channel": y_channel,
                        "psnr": float(psnr_ssim.calculate_psnr(bgr_a, bgr_b, **options)),
                        "ssim": float(psnr_ssim.calculate_ssim(bgr_a, bgr_b, **options)),
                    }
                )
    return tensors, cases


# (height, width, scale, antialiasing). Sizes are odd or non-square where possible; BasicSR's own border
# mirroring only works while the kernel reaches less than the image length beyond an edge, which bounds
# how small an image can be for a given downscale.
DOWNSCALE_SPECS = [
    (48, 40, 0.5, True),
    (27, 33, 1 / 3, True),
    (36, 44, 0.25, True),
    (25, 31, 0.5, True),
    (30, 20, 0.6, True),
    (23, 17, 0.75, True),
    (40, 32, 0.5, False),
    (31, 22, 0.45, False),
]
UPSCALE_SPECS = [
    (12, 10, 2.0, True),
    (9, 11, 3.0, True),
    (7, 13, 4.0, True),
    (10, 14, 1.5, True),
    (11, 9, 2.5, True),
    (16, 15, 1.0, True),
]
CROP_BORDERS_PER_PAIR = [(0, 2, 3, 6), (0, 2, 4, 8), (0, 1, 3, 4), (0, 2, 4, 6)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="BasicSR source root (containing basicsr/)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory to write (index.json + files)")
    parser.add_argument("--seed", type=int, default=20240601, help="numpy seed of the synthetic images")
    arguments = parser.parse_args(argv)

    modules = load_basicsr(arguments.basicsr)
    torch.set_num_threads(1)  # BasicSR's per-row mv calls are deterministic either way; keep the run cheap
    generator = np.random.default_rng(arguments.seed)
    basicsr_imresize = modules["matlab_functions"].imresize

    arguments.output.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, specs in (("imresize_down", DOWNSCALE_SPECS), ("imresize_up", UPSCALE_SPECS)):
        tensors, cases = imresize_cases(modules, generator, specs)
        layout = "HWC float64 in [0,1], RGB"
        index[name] = {"kind": "imresize", "file": f"{name}.safetensors", "layout": layout, "cases": cases}
        save_file(tensors, str(arguments.output / index[name]["file"]))
    pairs = degraded_pairs(basicsr_imresize, generator)
    tensors, cases = metrics_cases(modules["psnr_ssim"], pairs, CROP_BORDERS_PER_PAIR)
    layout = "HWC uint8, RGB"
    index["metrics_pairs"] = {"kind": "metrics", "file": "metrics_pairs.safetensors", "layout": layout, "cases": cases}
    save_file(tensors, str(arguments.output / index["metrics_pairs"]["file"]))

    (arguments.output / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {len(index)} reference entries to {arguments.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
