"""Codebook files side by side: size, code usage on the bundled photos, and the cost of DCKD's frozen pass.

    python benchmarks/codebook_compare.py OLD.pth NEW.pth --out benchmarks/results/<date>_cpu_codebooks.json

Per file: encoder parameters; codes used and perplexity (``dckd.models.vq_autoencoder.code_usage``) of the
nearest codes at every latent position of the whole bundled training and validation photos (inputs in
[-1, 1], as the demo feeds them); the median time of one frozen pass as DCKD makes it at the demo's setting
(48 images of 96x96: the teacher's output and 5 negatives for 8 samples; features and code logits, no
gradients, channels-last, freed host memory kept where glibc allows); and what ``dckd train-codebook``
recorded in the file (its command's options and final statistics), when it did.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import torch

from dckd.data import read_image_uint8
from dckd.data.bundled import bundled_root
from dckd.engine import host_memory
from dckd.eval.profile import device_description
from dckd.files.weights import read_checkpoint
from dckd.methods.dckd.feature_space import VQGANSpace
from dckd.models.vq_autoencoder import code_usage
from dckd.models.vqgan import latent_rows, load_vqgan_encoder, negative_squared_distance_logits


def usage(encoder, split: str) -> dict:
    indices = []
    for path in sorted((bundled_root(split) / "HR").glob("*.png")):
        image = torch.from_numpy(read_image_uint8(path).copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            latent = encoder.encode(image * 2 - 1)
            indices.append(negative_squared_distance_logits(latent_rows(latent), encoder.codebook).argmax(-1))
    counts = code_usage(torch.cat(indices), encoder.n_embed)
    return {
        "positions": int(sum(index.numel() for index in indices)),
        "codes_used": int((counts["counts"] > 0).sum()),
        "perplexity": float(counts["perplexity"]),
    }


def frozen_pass_ms(encoder, repeats: int) -> float:
    space = VQGANSpace(encoder.to(memory_format=torch.channels_last), "minus_one_one")
    images = torch.rand(48, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    images = images.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.no_grad():
        for repeat in range(repeats + 2):
            start = time.perf_counter()
            space.features_and_code_logits(images)
            if repeat >= 2:  # two warm-up passes
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codebooks", nargs="+", help="codebook files (dckd train-codebook, taming, safetensors)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", help="write the results as JSON here")
    arguments = parser.parse_args()
    if host_memory.available():
        host_memory.keep_freed_host_memory()
    rows = []
    for path in arguments.codebooks:
        encoder = load_vqgan_encoder(path)
        content = read_checkpoint(path)
        row = {
            "file": path,
            "vqgan_config": content.get("vqgan_config"),
            "training": content.get("training"),
            "recorded_statistics": content.get("statistics"),
            "encoder_parameters": sum(parameter.numel() for parameter in encoder.parameters()),
            "train_photos": usage(encoder, "train"),
            "validation_photos": usage(encoder, "val"),
            "frozen_pass_ms": frozen_pass_ms(encoder, arguments.repeats),
        }
        rows.append(row)
        print(
            f"{path}: {row['encoder_parameters'] / 1e6:.2f}M parameters; training photos "
            f"{row['train_photos']['codes_used']} codes, perplexity {row['train_photos']['perplexity']:.1f}; "
            f"validation photos {row['validation_photos']['codes_used']} codes, perplexity "
            f"{row['validation_photos']['perplexity']:.1f}; frozen pass {row['frozen_pass_ms']:.1f} ms"
        )
    document = {
        "benchmark": "benchmarks/codebook_compare.py",
        "date": datetime.date.today().isoformat(),
        "device": device_description(torch.device("cpu")),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "keep_freed_host_memory": host_memory.available(),
        "codebooks": rows,
    }
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(document, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
