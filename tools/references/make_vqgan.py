"""Write VQGAN-encoder reference vectors from taming-transformers' own code, in the format of dckd/golden.

Run (regenerates the shipped set; a few seconds on 2 CPU cores):

    .venv/bin/python tools/references/make_vqgan.py --taming /work/refsrc/taming \
        --out tests/references/vqgan

``--taming`` is the directory that contains the ``taming`` package (the taming-transformers checkout).
Only ``taming/modules/diffusionmodules/model.py`` (Encoder) and ``taming/modules/vqvae/quantize.py``
(VectorQuantizer2, the quantizer of taming's VQModel) are loaded, by file path; they need only torch and
numpy, plus ``einops.rearrange`` for three pure axis permutations, which is stubbed here. Neither
pytorch_lightning nor ``dckd`` is imported: the vectors come from the official code alone.

What is recorded (kind ``vqgan``, see dckd/golden/README.md):
- ``features.i``: forward hooks on ``encoder.down[i].block[0]``, i.e. the output of the FIRST ResnetBlock
  module of level i: after level i-1's Downsample, before level i's AttnBlock (taming applies a level's
  attention after each block, outside the block module). The shipped ``dckd/golden/vqgan_small`` was
  checked against this reading: ``--verify-shipped dckd/golden`` recomputes it from its stored weights and
  input and prints the error (0 or float32 round-off).
- ``code_distribution``: ``softmax(-d)`` with ``d`` computed exactly as taming's quantizer does,
  ``sum(z^2) + sum(e^2) - 2 z.e``, z = quant_conv(encoder(x)) flattened to rows (n, y, x); the rows'
  argmax is checked against the indices taming's ``VectorQuantizer2.forward`` returns.

Each case: seeded weights (default init, then every GroupNorm's scale/shift perturbed so they are not
identities; the codebook and quant_conv rescaled per case so the code distributions range from nearly
uniform to nearly one-hot), a seeded structured input in [-1, 1] (smooth ramps plus noise), float32 on
the CPU, eval mode. Configs vary ch_mult (lengths 3-5), num_res_blocks (1-2), attention at different
levels (or none per level), a level wider than the next (a shrinking nin_shortcut), 2x2 average-pool
downsampling, non-square and odd sizes (both downsamplings give floor(H/2)), batch 2, z_channels,
embed_dim and n_embed. ``ch`` stays 32: GroupNorm's 32 groups make 32 the smallest width, and a 64-wide
network alone would exceed the ~3 MB this set may take; 64-wide levels come from ``ch_mult`` = 2 (the
shipped case spans 32 to 128 channels).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import torch

# name: (embed_dim, n_embed, ddconfig overrides, input shape, seed, codebook std, latent gain, snap codes)
# "latent gain" multiplies quant_conv's weights (larger z -> sharper distributions); "snap codes" copies
# some encoder outputs into the codebook so a few rows are almost one-hot.
CASES: dict[str, tuple[int, int, dict, tuple[int, int, int, int], int, float, float, bool]] = {
    "vqgan_l3_nrb1_attn_level1_batch2": (
        8, 32, dict(ch=32, ch_mult=[1, 1, 1], num_res_blocks=1, attn_resolutions=[16], resolution=32, z_channels=16),
        (2, 3, 16, 24), 201, 0.5, 1.0, False,
    ),
    "vqgan_l3_nrb2_odd_size_attn_last_level": (
        16, 64, dict(ch=32, ch_mult=[1, 1, 1], num_res_blocks=2, attn_resolutions=[8], resolution=32, z_channels=32),
        (1, 3, 21, 29), 202, 1.0, 3.0, False,
    ),
    "vqgan_l5_nrb1_avgpool_two_attn_levels_batch2": (
        32, 128, dict(ch=32, ch_mult=[1, 1, 1, 1, 1], num_res_blocks=1, attn_resolutions=[32, 8], resolution=128,
                      z_channels=16, resamp_with_conv=False),
        (2, 3, 16, 32), 203, 1.0, 2.0, True,
    ),
    "vqgan_l4_nrb1_wide_level1_no_level_attn_avgpool_tall_odd": (
        12, 48, dict(ch=32, ch_mult=[1, 2, 1, 1], num_res_blocks=1, attn_resolutions=[], resolution=256, z_channels=24,
                     resamp_with_conv=False),
        (1, 3, 29, 18), 204, 2.0, 4.0, True,
    ),
}  # fmt: skip
BASE_DDCONFIG = dict(in_channels=3, out_ch=3, dropout=0.0, double_z=False)


def _stub_einops() -> None:
    """quantize.py imports ``einops.rearrange``; its patterns here are pure permutations like
    'b c h w -> b h w c', which this stub implements (torch.permute) without installing einops."""
    if "einops" in sys.modules:
        return
    module = types.ModuleType("einops")

    def rearrange(tensor: torch.Tensor, pattern: str) -> torch.Tensor:
        source, target = (side.split() for side in pattern.split("->"))
        if sorted(source) != sorted(target) or len(source) != tensor.dim():
            raise NotImplementedError(f"einops stub handles only permutations, got {pattern!r}")
        return tensor.permute(*[source.index(axis) for axis in target])

    module.rearrange = rearrange
    sys.modules["einops"] = module


def _load_file(name: str, path: Path) -> types.ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"--taming: expected {path} (taming-transformers' {path.name})")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_taming(taming_root: Path) -> tuple[type, type]:
    """taming's ``Encoder`` and ``VectorQuantizer2``, imported standalone from their files."""
    _stub_einops()
    package = taming_root / "taming" / "modules"
    model = _load_file("taming_reference_model", package / "diffusionmodules" / "model.py")
    quantize = _load_file("taming_reference_quantize", package / "vqvae" / "quantize.py")
    return model.Encoder, quantize.VectorQuantizer2


class TamingVQGANEncoder(torch.nn.Module):
    """taming's VQModel minus decoder and loss: the same submodule names, so the same state_dict keys."""

    def __init__(
        self, encoder_class: type, quantizer_class: type, embed_dim: int, n_embed: int, ddconfig: dict
    ) -> None:
        super().__init__()
        self.encoder = encoder_class(**ddconfig)
        self.quantize = quantizer_class(n_embed, embed_dim, beta=0.25)
        self.quant_conv = torch.nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)


def reference_outputs(model: TamingVQGANEncoder, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(features per level from hooks on down[i].block[0], code distribution (N*h*w, n_embed))."""
    features: list[torch.Tensor] = []
    hooks = [level.block[0].register_forward_hook(lambda _m, _i, out: features.append(out.detach().clone()))
             for level in model.encoder.down]  # fmt: skip
    try:
        with torch.no_grad():
            latent = model.quant_conv(model.encoder(image))
            _, _, (_, _, indices) = model.quantize(latent)
            rows = latent.permute(0, 2, 3, 1).reshape(-1, latent.shape[1])
            codebook = model.quantize.embedding.weight
            # taming's own distance expression (quantize.py, VectorQuantizer2.forward)
            distance = (rows**2).sum(dim=1, keepdim=True) + (codebook**2).sum(dim=1) - 2 * rows @ codebook.t()
            distribution = torch.softmax(-distance, dim=1)
    finally:
        for hook in hooks:
            hook.remove()
    if not torch.equal(distribution.argmax(dim=1), indices.reshape(-1)):
        raise AssertionError("argmax of the recorded distribution differs from taming's quantizer indices")
    return features, distribution


def structured_input(shape: tuple[int, int, int, int], generator: torch.Generator) -> torch.Tensor:
    """Smooth random ramps and blobs plus noise, clipped to [-1, 1]: (N, 3, H, W)."""
    batch, channels, height, width = shape
    ys = torch.linspace(-1, 1, height).view(1, 1, height, 1)
    xs = torch.linspace(-1, 1, width).view(1, 1, 1, width)
    slope = torch.randn(batch, channels, 2, 1, 1, generator=generator)
    frequency = 1 + 3 * torch.rand(batch, channels, 1, 1, generator=generator)
    image = 0.5 * (slope[:, :, 0] * ys + slope[:, :, 1] * xs) + 0.4 * torch.sin(frequency * 3 * (xs + ys))
    image = image + 0.2 * torch.randn(shape, generator=generator)
    return image.clamp(-1, 1)


def build_case(encoder_class: type, quantizer_class: type, name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    embed_dim, n_embed, overrides, shape, seed, codebook_std, latent_gain, snap = CASES[name]
    ddconfig = {**BASE_DDCONFIG, **overrides}
    torch.manual_seed(seed)
    model = TamingVQGANEncoder(encoder_class, quantizer_class, embed_dim, n_embed, ddconfig).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.05 * torch.randn(module.bias.shape, generator=generator))
        model.quant_conv.weight.mul_(latent_gain)
        model.quantize.embedding.weight.copy_(codebook_std * torch.randn(n_embed, embed_dim, generator=generator))
        image = structured_input(shape, generator)
        if snap:  # put a few true latents (slightly moved) into the codebook: near-one-hot rows
            latent = model.quant_conv(model.encoder(image)).permute(0, 2, 3, 1).reshape(-1, embed_dim)
            count = min(n_embed // 4, latent.shape[0])
            chosen = torch.randperm(latent.shape[0], generator=generator)[:count]
            noise = 0.05 * torch.randn(count, embed_dim, generator=generator)
            model.quantize.embedding.weight[:count] = latent[chosen] + noise
    features, distribution = reference_outputs(model, image)
    tensors = {f"weights.{key}": value.contiguous() for key, value in model.state_dict().items()}
    tensors["input"] = image
    tensors.update({f"features.{level}": feature for level, feature in enumerate(features)})
    tensors["code_distribution"] = distribution
    entry = {
        "kind": "vqgan",
        "file": f"{name}.safetensors",
        "config": {"embed_dim": embed_dim, "n_embed": n_embed, "ddconfig": ddconfig},
        "input_shape": list(shape),
        "features_shapes": [list(feature.shape) for feature in features],
        "code_distribution_shape": list(distribution.shape),
        "code_distribution_max_probability": round(distribution.max().item(), 6),
    }
    return entry, tensors


def verify_shipped(encoder_class: type, quantizer_class: type, golden: Path) -> float:
    """Recompute every ``vqgan`` case of ``golden`` from its weights and input with this reading; return the
    largest absolute difference to the stored features and distribution."""
    from safetensors.torch import load_file

    index = json.loads((golden / "index.json").read_text())
    worst = 0.0
    for name, case in index.items():
        if case.get("kind") != "vqgan":
            continue
        config = case["config"]
        tensors = load_file(str(golden / case["file"]))
        model = TamingVQGANEncoder(
            encoder_class, quantizer_class, config["embed_dim"], config["n_embed"], config["ddconfig"]
        )
        weights = {key[len("weights.") :]: value for key, value in tensors.items() if key.startswith("weights.")}
        model.load_state_dict(weights, strict=True)
        features, distribution = reference_outputs(model.eval(), tensors["input"])
        errors = [(feature - tensors[f"features.{level}"]).abs().max().item() for level, feature in enumerate(features)]
        errors.append((distribution - tensors["code_distribution"]).abs().max().item())
        print(f"shipped {name}: max |recomputed - stored| = {max(errors):.3e} (features per level {errors[:-1]})")
        worst = max(worst, *errors)
    return worst


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--taming", type=Path, required=True, help="directory containing the `taming` package")
    parser.add_argument("--out", type=Path, help="directory to write index.json and the .safetensors files into")
    parser.add_argument("--verify-shipped", type=Path, help="a reference directory (e.g. dckd/golden) to recompute")
    options = parser.parse_args(arguments)
    encoder_class, quantizer_class = load_taming(options.taming)
    if options.verify_shipped is not None:
        verify_shipped(encoder_class, quantizer_class, options.verify_shipped)
    if options.out is None:
        return 0
    from safetensors.torch import save_file

    options.out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name in CASES:
        index[name], tensors = build_case(encoder_class, quantizer_class, name)
        save_file(tensors, str(options.out / index[name]["file"]))
        size_kib = (options.out / index[name]["file"]).stat().st_size / 1024
        print(f"{name}: {size_kib:.0f} KiB, max probability {index[name]['code_distribution_max_probability']}")
    (options.out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
