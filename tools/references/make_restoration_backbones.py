"""Write NAFNet reference vectors from the official architecture file, in the format of dckd/golden.

Run (regenerates the shipped set; about 2 s on 2 CPU cores):

    .venv/bin/python tools/references/make_restoration_backbones.py \
        --nafnet-source /work/refsrc/spandrel/spandrel/architectures/NAFNet/__arch \
        --out tests/references/restoration_backbones

``--nafnet-source`` is a directory holding the official ``NAFNet_arch.py`` and its ``arch_util.py``
(megvii-research/NAFNet ``basicsr/models/archs/``, or spandrel's verbatim copy). They are loaded by
file path with their package imports stubbed, so neither BasicSR nor spandrel has to be installed, and
nothing of ``dckd`` is imported: the vectors come from the official code alone.

Each case: seeded random weights (every parameter, so that the zero-initialised ``beta``/``gamma`` block
scales do not turn blocks into identities) and a seeded input in [0, 1] whose sides are deliberately not
multiples of the network's padding, run in eval mode in float32 on the CPU. Check a written set with
``python -c "from dckd.eval.selfcheck import main; main(['DIR'])"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

# name: (constructor config, input shape N, C, H, W, seed). Other widths, 0/2/3/4 levels, odd sizes, batch 2.
CASES: dict[str, tuple[dict, tuple[int, int, int, int], int]] = {
    "nafnet_no_levels_width12": (
        dict(img_channel=3, width=12, middle_blk_num=2, enc_blk_nums=[], dec_blk_nums=[]),
        (1, 3, 7, 9),
        101,
    ),
    "nafnet_two_levels_batch2": (
        dict(img_channel=3, width=12, middle_blk_num=2, enc_blk_nums=[1, 2], dec_blk_nums=[2, 1]),
        (2, 3, 17, 23),
        102,
    ),
    "nafnet_three_levels": (
        dict(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1], dec_blk_nums=[1, 2, 1]),
        (1, 3, 21, 30),
        103,
    ),
    "nafnet_four_levels_odd": (
        dict(img_channel=3, width=6, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 2], dec_blk_nums=[1, 1, 1, 1]),
        (1, 3, 35, 19),
        104,
    ),
    "nafnet_four_levels_tall_batch2": (
        dict(img_channel=3, width=4, middle_blk_num=2, enc_blk_nums=[2, 1, 1, 1], dec_blk_nums=[1, 2, 1, 1]),
        (2, 3, 49, 16),
        105,
    ),
    "nafnet_grayscale": (
        dict(img_channel=1, width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]),
        (1, 1, 11, 14),
        106,
    ),
}


def load_official_nafnet(source: Path) -> type:
    """Import the official ``NAFNet`` class from ``source/NAFNet_arch.py`` standalone.

    The arch file imports ``LayerNorm2d`` relatively (spandrel) or from ``basicsr.models.archs.arch_util``
    (official repo); both names are pointed at ``source/arch_util.py``. spandrel's
    ``store_hyperparameters`` decorator is replaced by the identity.
    """
    arch_path, util_path = source / "NAFNet_arch.py", source / "arch_util.py"
    for path in (arch_path, util_path):
        if not path.is_file():
            raise FileNotFoundError(f"--nafnet-source {source}: expected {path.name} there (the official NAFNet arch)")

    def stub(name: str, **attributes) -> types.ModuleType:
        module = sys.modules.get(name) or types.ModuleType(name)
        module.__path__ = []  # mark it a package so submodules can be registered below it
        for key, value in attributes.items():
            setattr(module, key, value)
        sys.modules[name] = module
        return module

    def load(name: str, path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    package = "official_nafnet"
    stub(package).__path__ = [str(source)]
    stub("spandrel")
    stub("spandrel.util", store_hyperparameters=lambda *args, **kwargs: lambda cls: cls)
    for name in ("basicsr", "basicsr.models", "basicsr.models.archs"):
        stub(name)
    stub("basicsr.utils", get_root_logger=lambda *args, **kwargs: None)
    arch_util = load(f"{package}.arch_util", util_path)
    sys.modules["basicsr.models.archs.arch_util"] = arch_util
    local_path = source / "local_arch.py"
    if local_path.is_file():
        sys.modules["basicsr.models.archs.local_arch"] = load(f"{package}.local_arch", local_path)
    return load(f"{package}.NAFNet_arch", arch_path).NAFNet


def randomise(network: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every parameter a seeded random value of the size a trained network might have.

    Conv weights ~ N(0, 1/fan_in) keep activations bounded through deep stacks; block scales
    (``beta``, ``gamma``) ~ N(0, 0.2) make every block contribute; norms ~ N(1, 0.1) / N(0, 0.1).
    """
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() == 4 and not name.endswith(("beta", "gamma")):
                fan_in = parameter.shape[1] * parameter.shape[2] * parameter.shape[3]
                parameter.copy_(noise / fan_in**0.5)
            elif name.endswith(("beta", "gamma")):
                parameter.copy_(noise * 0.2)
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.1 * noise)


def write_cases(nafnet_class: type, out: Path) -> dict:
    """Run every case of ``CASES`` through the official class and write ``out/index.json`` + safetensors."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (config, input_shape, seed) in CASES.items():
        generator = torch.Generator().manual_seed(seed)
        network = nafnet_class(**config)
        randomise(network, generator)
        network.eval()
        image = torch.rand(input_shape, generator=generator)
        with torch.no_grad():
            output = network(image)
        tensors = {f"weights.{key}": value.contiguous() for key, value in network.state_dict().items()}
        tensors["input"] = image.contiguous()
        tensors["output"] = output.contiguous()
        save_file(tensors, str(out / f"{name}.safetensors"))
        (out / f"{name}.safetensors").chmod(0o644)  # save_file creates owner-only files
        index[name] = {
            "kind": "nafnet",
            "file": f"{name}.safetensors",
            "config": config,
            "input_shape": list(input_shape),
            "output_shape": list(output.shape),
            "seed": seed,
            "source": "official NAFNet_arch.py via tools/references/make_restoration_backbones.py",
        }
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nafnet-source", type=Path, required=True, help="directory with the official NAFNet_arch.py and arch_util.py"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write index.json and the .safetensors")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)  # the reference numbers should not depend on the machine's thread count
    index = write_cases(load_official_nafnet(arguments.nafnet_source), arguments.out)
    size = sum(path.stat().st_size for path in arguments.out.iterdir())
    print(f"wrote {len(index)} cases to {arguments.out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
