"""Write SwinIR and RCAN reference vectors from BasicSR's own architecture files, in the format of dckd/golden.

Run (regenerates the shipped set; a few seconds on 2 CPU cores):

    .venv/bin/python tools/references/make_sr_backbones.py \
        --basicsr /work/refsrc/basicsr-1.4.2 --out tests/references/sr_backbones

``--basicsr`` is a BasicSR source checkout (the directory holding ``basicsr/archs/``; 1.4.2 was used).
``swinir_arch.py``, ``rcan_arch.py``, ``edsr_arch.py`` and their ``arch_util.py`` are loaded by file path
with the rest of the package stubbed (registry, logger, deformable-conv ops, torchvision), so neither
BasicSR nor torchvision has to be installed, and the written vectors come from the official code alone.

The cases use configurations the shipped golden set does not: window sizes 4, 6 and a window shrunk
to a small ``img_size``, non-square ``img_size``, other depths/widths/heads, scales 1/2/3/4/8, all four
SwinIR upsamplers (the classical one only at x2: its 64-channel convs make x3/x8 cases megabytes; RCAN's
cases cover the same upsampler at x3 and x8), '3conv' residual connections, absolute position embedding, no patch norm, no qkv bias,
grayscale, batch 2, inputs both equal to ``img_size`` (stored shift masks) and not (computed masks);
RCAN with other groups/blocks/squeeze factors/res_scale/img_range. Weights are seeded random values of
the size a trained network might have, inputs seeded uniform in [0, 1]; eval mode, float32, CPU.

EDSR has no selfcheck kind; as a last step this script builds every EDSR case with both BasicSR and
``dckd.models.backbones.edsr`` and prints their largest difference (the only place it imports ``dckd``).
Check a written set with ``python -c "from dckd.eval.selfcheck import main; main(['DIR'])"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

# name: (constructor config, input shape N, C, H, W, seed)
SWINIR_CASES: dict[str, tuple[dict, tuple[int, int, int, int], int]] = {
    # Window 4, non-square img_size and an input of exactly that size (stored attn_mask buffers), '3conv',
    # three layers with different head counts, one-step upsampler at x3, batch 2.
    "swinir_w4_x3_direct_3conv_batch2": (
        dict(
            upscale=3,
            in_chans=3,
            img_size=[16, 12],
            window_size=4,
            img_range=1.0,
            depths=[2, 2, 2],
            embed_dim=16,
            num_heads=[2, 4, 1],
            mlp_ratio=1.5,
            upsampler="pixelshuffledirect",
            resi_connection="3conv",
        ),
        (2, 3, 16, 12),
        201,
    ),
    # Window 6, classical upsampler at x2, input larger than img_size (masks computed at run time).
    "swinir_w6_x2_pixelshuffle": (
        dict(
            upscale=2,
            in_chans=3,
            img_size=12,
            window_size=6,
            img_range=1.0,
            depths=[3],
            embed_dim=18,
            num_heads=[3],
            mlp_ratio=2,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        ),
        (1, 3, 18, 24),
        202,
    ),
    # Real-world SR upsampler (x4 only), window 4, wide rectangular input.
    "swinir_w4_x4_nearest_conv": (
        dict(
            upscale=4,
            in_chans=3,
            img_size=8,
            window_size=4,
            img_range=1.0,
            depths=[2, 1],
            embed_dim=8,
            num_heads=[1, 2],
            mlp_ratio=2,
            upsampler="nearest+conv",
            resi_connection="1conv",
        ),
        (1, 3, 8, 16),
        203,
    ),
    # Grayscale restoration without upscaling (upsampler ''; zero mean for in_chans != 3), '3conv'.
    "swinir_w4_denoise_gray": (
        dict(
            upscale=1,
            in_chans=1,
            img_size=8,
            window_size=4,
            img_range=1.0,
            depths=[1, 2],
            embed_dim=16,
            num_heads=[4, 2],
            mlp_ratio=2,
            upsampler="",
            resi_connection="3conv",
        ),
        (1, 1, 12, 20),
        204,
    ),
    # Absolute position embedding, no patch norm, no qkv bias, explicit qk_scale, img_range 255, x8.
    "swinir_w4_x8_ape_options": (
        dict(
            upscale=8,
            in_chans=3,
            img_size=8,
            window_size=4,
            img_range=255.0,
            depths=[2],
            embed_dim=12,
            num_heads=[2],
            mlp_ratio=1,
            upsampler="pixelshuffledirect",
            resi_connection="1conv",
            ape=True,
            patch_norm=False,
            qkv_bias=False,
            qk_scale=0.25,
        ),
        (1, 3, 8, 8),
        205,
    ),
    # img_size 6 < window_size 8: BasicSR shrinks the window to 6 and switches the shift off.
    "swinir_window_shrunk_x2": (
        dict(
            upscale=2,
            in_chans=3,
            img_size=6,
            window_size=8,
            img_range=1.0,
            depths=[2],
            embed_dim=12,
            num_heads=[3],
            mlp_ratio=2,
            upsampler="pixelshuffledirect",
            resi_connection="1conv",
        ),
        (1, 3, 12, 18),
        206,
    ),
}

RCAN_CASES: dict[str, tuple[dict, tuple[int, int, int, int], int]] = {
    "rcan_g3_b1_x2_batch2": (
        dict(num_feat=12, num_group=3, num_block=1, squeeze_factor=4, upscale=2),
        (2, 3, 9, 7),
        301,
    ),
    "rcan_g1_b3_x4": (
        dict(num_feat=8, num_group=1, num_block=3, squeeze_factor=2, upscale=4),
        (1, 3, 5, 6),
        302,
    ),
    "rcan_g2_b2_x8_res_scale": (
        dict(num_feat=8, num_group=2, num_block=2, squeeze_factor=8, upscale=8, res_scale=0.5, img_range=1.0),
        (1, 3, 4, 5),
        303,
    ),
}

EDSR_CASES: dict[str, tuple[dict, tuple[int, int, int, int], int]] = {
    "edsr_b2_x2": (dict(num_feat=16, num_block=2, upscale=2), (2, 3, 7, 9), 401),
    "edsr_b3_x3_res_scale": (dict(num_feat=8, num_block=3, upscale=3, res_scale=0.1), (1, 3, 6, 5), 402),
    "edsr_b1_x4": (dict(num_feat=8, num_block=1, upscale=4), (1, 3, 5, 5), 403),
}


def load_basicsr_archs(root: Path) -> dict[str, types.ModuleType]:
    """Import ``swinir_arch``, ``rcan_arch`` and ``edsr_arch`` from ``root/basicsr/archs`` standalone.

    ``basicsr`` and ``basicsr.archs`` become empty packages pointing at the source folders, so the archs
    package's ``__init__`` (which imports every arch and cv2) does not run; ``basicsr.utils`` (logger),
    ``basicsr.utils.registry`` (ARCH_REGISTRY), ``basicsr.ops.dcn`` (compiled deformable convs) and
    ``torchvision`` are stubs: the three architectures use none of them.
    """
    package_dir = root / "basicsr" if (root / "basicsr" / "archs").is_dir() else root
    archs_dir = package_dir / "archs"
    for file_name in ("arch_util.py", "swinir_arch.py", "rcan_arch.py", "edsr_arch.py"):
        if not (archs_dir / file_name).is_file():
            raise FileNotFoundError(f"--basicsr {root}: expected {archs_dir / file_name} (a BasicSR source checkout)")

    def stub(name: str, path: list[str] | None = None, **attributes) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__path__ = path or []  # a package, so that submodules resolve below it
        for key, value in attributes.items():
            setattr(module, key, value)
        sys.modules[name] = module
        return module

    class Registry:
        def register(self, obj=None):
            return obj if obj is not None else (lambda cls: cls)

    class ModulatedDeformConvPack(torch.nn.Module):  # only subclassed by DCNv2Pack, never built here
        pass

    stub("basicsr", [str(package_dir)])
    stub("basicsr.archs", [str(archs_dir)])
    stub("basicsr.utils", get_root_logger=lambda *args, **kwargs: None)
    stub("basicsr.utils.registry", ARCH_REGISTRY=Registry())
    stub("basicsr.ops")
    stub("basicsr.ops.dcn", ModulatedDeformConvPack=ModulatedDeformConvPack, modulated_deform_conv=None)
    if "torchvision" not in sys.modules:
        stub("torchvision", __version__="0.0.0")
    try:
        import distutils.version  # noqa: F401  (gone from Python 3.12; arch_util imports LooseVersion)
    except ImportError:
        stub("distutils")
        stub("distutils.version", LooseVersion=str)

    modules = {}
    for name in ("arch_util", "swinir_arch", "rcan_arch", "edsr_arch"):
        spec = importlib.util.spec_from_file_location(f"basicsr.archs.{name}", archs_dir / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def randomise(network: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every parameter a seeded random value of the size a trained network might have.

    Conv and linear weights ~ N(0, 1/fan_in) keep activations bounded; relative position biases ~ N(0, 1)
    so that the bias (and any error in indexing it) changes the attention visibly; norm weights
    ~ N(1, 0.1); everything else (biases, position embedding) ~ N(0, 0.1).
    """
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() in (2, 4) and name.endswith("weight"):
                fan_in = parameter[0].numel()
                parameter.copy_(noise / fan_in**0.5)
            elif name.endswith("relative_position_bias_table"):
                parameter.copy_(noise)
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.1 * noise)


def run_case(network: torch.nn.Module, input_shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomise ``network`` with ``seed`` and return (input, eval-mode output)."""
    generator = torch.Generator().manual_seed(seed)
    randomise(network, generator)
    network.eval()
    image = torch.rand(input_shape, generator=generator)
    with torch.no_grad():
        output = network(image)
    return image, output


def write_cases(archs: dict[str, types.ModuleType], out: Path) -> dict:
    """Run every SwinIR and RCAN case through BasicSR and write ``out/index.json`` + one safetensors each."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    index = {}
    builders = {
        "swinir": (SWINIR_CASES, lambda config: archs["swinir_arch"].SwinIR(**config), "swinir_arch.py"),
        "rcan": (
            RCAN_CASES,
            lambda config: archs["rcan_arch"].RCAN(num_in_ch=3, num_out_ch=3, **config),
            "rcan_arch.py",
        ),
    }
    for kind, (cases, build, source) in builders.items():
        for name, (config, input_shape, seed) in cases.items():
            torch.manual_seed(seed)  # constructors draw their initial weights from the global generator
            network = build(config)
            image, output = run_case(network, input_shape, seed)
            tensors = {f"weights.{key}": value.contiguous() for key, value in network.state_dict().items()}
            tensors["input"] = image.contiguous()
            tensors["output"] = output.contiguous()
            save_file(tensors, str(out / f"{name}.safetensors"))
            (out / f"{name}.safetensors").chmod(0o644)  # safetensors writes owner-only files
            index[name] = {
                "kind": kind,
                "file": f"{name}.safetensors",
                "config": config,
                "input_shape": list(input_shape),
                "output_shape": list(output.shape),
                "seed": seed,
                "source": f"BasicSR basicsr/archs/{source} via tools/references/make_sr_backbones.py",
            }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def compare_edsr(archs: dict[str, types.ModuleType]) -> float:
    """Largest |BasicSR EDSR - dckd EDSR| over ``EDSR_CASES`` (same weights and input); printed per case."""
    from dckd.models.backbones.edsr import EDSR

    worst = 0.0
    for name, (config, input_shape, seed) in EDSR_CASES.items():
        official = archs["edsr_arch"].EDSR(num_in_ch=3, num_out_ch=3, **config)
        image, reference = run_case(official, input_shape, seed)
        ours = EDSR(num_in_ch=3, num_out_ch=3, **config)
        ours.load_state_dict(official.state_dict(), strict=True)
        ours.eval()
        with torch.no_grad():
            error = (ours(image) - reference).abs().max().item()
        print(f"  EDSR {name:<24} max |dckd - BasicSR| = {error:.3e}  (output max {reference.abs().max().item():.3f})")
        worst = max(worst, error)
    return worst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="BasicSR source root (holding basicsr/archs/)")
    parser.add_argument(
        "--out", type=Path, required=True, help="directory to write index.json and the .safetensors files into"
    )
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)  # the reference numbers should not depend on the machine's thread count
    archs = load_basicsr_archs(arguments.basicsr)
    index = write_cases(archs, arguments.out)
    size = sum(path.stat().st_size for path in arguments.out.iterdir())
    print(f"wrote {len(index)} cases to {arguments.out} ({size / 1e6:.2f} MB)")
    print(f"EDSR worst max error: {compare_edsr(archs):.3e}")


if __name__ == "__main__":
    main()
