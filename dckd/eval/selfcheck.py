"""Check this implementation against reference vectors produced by the official code.

A reference directory holds ``index.json`` (one entry per case, each with a ``kind`` and a safetensors
``file``) in the format described by ``dckd/golden/README.md``. Every kind has one checker below; a
checker returns the case's maximum error and the tolerance it must stay under. The format, not the
particular files, is what is implemented: a new directory with other configurations, seeds and sizes
is checked the same way (``dckd selfcheck DIR``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from dckd.data.imresize import imresize
from dckd.eval.metrics import psnr, ssim
from dckd.files.weights import check_state_dict_fits
from dckd.losses.codebook import codebook_cross_entropy
from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.models import sizes
from dckd.models.backbones import BACKBONES
from dckd.models.vqgan import VQGANEncoder

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "golden"
NETWORK_TOLERANCE = 1e-4  # max|out - ref| <= 1e-4 * max(1, max|ref|)
LOSS_RELATIVE_TOLERANCE = 1e-5
IMRESIZE_TOLERANCE = 1e-6
PSNR_TOLERANCE = 1e-4
SSIM_TOLERANCE = 1e-5


@dataclass
class CaseResult:
    name: str
    kind: str
    max_error: float
    tolerance: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return math.isfinite(self.max_error) and self.max_error <= self.tolerance


def _load_tensors(directory: Path, case: dict) -> dict[str, torch.Tensor]:
    """The case's safetensors file, which must lie inside ``directory`` (an index names no other path)."""
    name = case.get("file")
    if not isinstance(name, str) or not name:
        raise ValueError(f"the case names no file (got {name!r})")
    path = directory / name
    if not Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(directory))):
        raise ValueError(f"the case's file {name!r} lies outside the reference directory {directory}; refused")
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} named by {directory / 'index.json'} does not exist")
    return load_file(str(path))


def _weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key[len("weights.") :]: value for key, value in tensors.items() if key.startswith("weights.")}


def _scaled_error(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """Return (max abs error / max(1, max|ref|), tolerance) so every network case compares to 1e-4."""
    if output.shape != reference.shape:
        raise ValueError(f"output shape {tuple(output.shape)} differs from reference {tuple(reference.shape)}")
    error = (output.double() - reference.double()).abs().max().item()
    return error / max(1.0, reference.abs().max().item()), NETWORK_TOLERANCE


def check_network(directory: Path, name: str, case: dict) -> CaseResult:
    tensors = _load_tensors(directory, case)
    network_class, config = BACKBONES[case["kind"]], case["config"]
    if not isinstance(config, dict):
        raise ValueError(f"config is a {type(config).__name__}, expected a mapping of constructor arguments")
    # Sizes from the index are checked, and compared with the file's weights, before the network is allocated.
    skeleton = sizes.meta_network(lambda: network_class(**config), f"case {name!r}")
    check_state_dict_fits(skeleton.state_dict(), _weights(tensors), f"case {name!r}", network_class.__name__)
    network = network_class(**config)
    network.load_state_dict(_weights(tensors), strict=True)
    network.eval()
    with torch.no_grad():
        output = network(tensors["input"].float())
    error, tolerance = _scaled_error(output, tensors["output"])
    return CaseResult(name, case["kind"], error, tolerance)


def check_vqgan(directory: Path, name: str, case: dict) -> CaseResult:

    tensors = _load_tensors(directory, case)
    config = case["config"]
    arguments = dict(embed_dim=config["embed_dim"], n_embed=config["n_embed"], ddconfig=config["ddconfig"])
    skeleton = sizes.meta_network(lambda: VQGANEncoder(**arguments), f"case {name!r}")
    check_state_dict_fits(skeleton.state_dict(), _weights(tensors), f"case {name!r}", "VQGANEncoder")
    encoder = VQGANEncoder(**arguments)
    encoder.load_state_dict(_weights(tensors), strict=True)
    encoder.eval()
    with torch.no_grad():
        features = encoder.features(tensors["input"].float())
        distribution = encoder.code_distribution(tensors["input"].float())
    errors = []
    for level, feature in enumerate(features):
        errors.append((f"features.{level}", _scaled_error(feature, tensors[f"features.{level}"])[0]))
    errors.append(("code_distribution", _scaled_error(distribution, tensors["code_distribution"])[0]))
    worst = max(errors, key=lambda item: item[1])
    return CaseResult(name, "vqgan", worst[1], NETWORK_TOLERANCE, f"worst: {worst[0]}")


def check_losses(directory: Path, name: str, case: dict) -> CaseResult:
    tensors = _load_tensors(directory, case)
    errors = []
    if "contrastive" in case:
        spec = case["contrastive"]
        levels = spec["levels"]
        items = 2 + spec["num_neg"]
        per_level = [[tensors[f"level{level}.item{item}"].double() for item in range(items)] for level in range(levels)]
        value = spec["loss_weight"] * contrastive_ratio_loss(
            anchor=[level[0] for level in per_level],
            positive=[level[1] for level in per_level],
            negatives=[torch.cat(level[2:]) for level in per_level],  # copy-major stacking
            layer_weights=spec["layer_weights"],
        )
        errors.append(("contrastive", abs(value.item() - spec["value"]) / abs(spec["value"])))
    if "ce" in case:
        spec = case["ce"]
        value = spec["loss_weight"] * codebook_cross_entropy(
            student_log_probabilities=tensors["ce.student_distribution"].double().log(),
            teacher_probabilities=tensors["ce.teacher_distribution"].double(),
            formula="released",
        )
        errors.append(("ce", abs(value.item() - spec["value"]) / abs(spec["value"])))
    if not errors:
        raise ValueError(f"losses case {name!r} has neither a 'contrastive' nor a 'ce' entry")
    worst = max(errors, key=lambda item: item[1])
    return CaseResult(name, "losses", worst[1], LOSS_RELATIVE_TOLERANCE, f"worst: {worst[0]} (relative)")


def check_imresize(directory: Path, name: str, case: dict) -> CaseResult:

    tensors = _load_tensors(directory, case)
    worst = 0.0
    for index, sub in enumerate(case["cases"]):
        image = tensors[f"case{index}.input"].double().numpy()
        reference = tensors[f"case{index}.output"].double().numpy()
        output = imresize(image, sub["scale"], antialiasing=sub.get("antialiasing", True))
        if output.shape != reference.shape:
            raise ValueError(f"imresize case{index}: shape {output.shape} differs from reference {reference.shape}")
        worst = max(worst, float(abs(output - reference).max()))
    return CaseResult(name, "imresize", worst, IMRESIZE_TOLERANCE)


def check_metrics(directory: Path, name: str, case: dict) -> CaseResult:

    tensors = _load_tensors(directory, case)
    worst_psnr = worst_ssim = 0.0
    for sub in case["cases"]:
        a = tensors[f"pair{sub['pair']}.a"].numpy()
        b = tensors[f"pair{sub['pair']}.b"].numpy()
        options = dict(crop_border=sub["crop_border"], y_channel=sub["y_channel"])
        worst_psnr = max(worst_psnr, abs(psnr(a, b, **options) - sub["psnr"]))
        worst_ssim = max(worst_ssim, abs(ssim(a, b, **options) - sub["ssim"]))
    # Report against the looser of the two tolerances by normalising both to 1.
    normalised = max(worst_psnr / PSNR_TOLERANCE, worst_ssim / SSIM_TOLERANCE)
    return CaseResult(
        name,
        "metrics",
        normalised,
        1.0,
        f"psnr err {worst_psnr:.2e} dB (tol 1e-4), ssim err {worst_ssim:.2e} (tol 1e-5)",
    )


CHECKERS: dict[str, Callable[[Path, str, dict], CaseResult]] = {
    "swinir": check_network,
    "rcan": check_network,
    "nafnet": check_network,
    "restormer": check_network,
    "vqgan": check_vqgan,
    "losses": check_losses,
    "imresize": check_imresize,
    "metrics": check_metrics,
}


def run_directory(directory: Path) -> list[CaseResult]:
    """Check every case listed in ``directory/index.json``; a case that cannot run fails with its error."""
    index_path = Path(directory) / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: a reference directory needs an index.json")
    index = json.loads(index_path.read_text())
    results = []
    for name, case in index.items():
        kind = case.get("kind")
        checker = CHECKERS.get(kind)
        if checker is None:
            results.append(CaseResult(name, str(kind), math.inf, 0.0, f"unknown kind; known: {sorted(CHECKERS)}"))
            continue
        try:
            results.append(checker(Path(directory), name, case))
        except Exception as error:  # one broken case must not hide the others
            results.append(CaseResult(name, kind, math.inf, 0.0, f"error: {type(error).__name__}: {error}"))
    return results


def main(directories: list[str]) -> int:
    """Print one line per case; return 0 only if every case of every directory passes."""
    all_passed = True
    for directory in directories or [str(DEFAULT_DIR)]:
        print(f"reference set {directory}")
        for result in run_directory(Path(directory)):
            status = "PASS" if result.passed else "FAIL"
            all_passed &= result.passed
            print(
                f"  {status}  {result.name:<28} {result.kind:<10} max error {result.max_error:.3e}"
                f"  (tolerance {result.tolerance:.0e})  {result.detail}".rstrip()
            )
    return 0 if all_passed else 1
