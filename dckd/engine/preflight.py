"""Checks of the built networks before a run writes anything: finite weights, finite outputs, the right scale.

A teacher or VQGAN with NaN/inf weights makes every loss non-finite, and a network whose SR factor differs
from ``data.scale`` fails inside a loss after the run folder exists; both are found here, on one training
sample, before the teacher cache or the run folder are written. The check runs the networks in eval mode
under ``no_grad`` with the global random state restored afterwards, so it changes nothing of the run.
"""

from __future__ import annotations

import torch
from torch import nn

from dckd.errors import CheckpointError, ConfigError


def _describe(role: str, source: str | None) -> str:
    return f"the {role}" + (f" ({source})" if source else "")


def check_finite_weights(network: nn.Module, role: str, source: str | None) -> None:
    """Every floating-point parameter and buffer of ``network`` is finite; else an error naming the first
    non-finite tensor and the file it came from (``source``)."""
    for name, tensor in network.state_dict().items():
        if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            count = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{_describe(role, source)} holds non-finite weights: {name} has {count} NaN/inf values; "
                "every loss would be non-finite and nothing would be learned: use another checkpoint"
            )


def _first_tensor(output) -> torch.Tensor:
    if torch.is_tensor(output):
        return output
    if isinstance(output, (list, tuple)) and output and torch.is_tensor(output[0]):
        return output[0]
    raise ConfigError(f"expected a tensor output, got {type(output).__name__}")


def check_on_sample(
    sample: dict,
    scale: int,
    device: torch.device,
    networks: dict[str, tuple[nn.Module, str | None]],
    vqgan: tuple[nn.Module, str | None] | None = None,
) -> None:
    """Run each restoration network of ``networks`` (role -> (network, source)) on the sample's ``lq``: the
    output must be finite and have the ``gt``'s size (``data.scale``). The VQGAN's features of ``gt`` must be
    finite. Raises ``ConfigError`` (scale) or ``CheckpointError`` (non-finite) naming the network."""
    lq = sample["lq"].unsqueeze(0).float().to(device)
    gt = sample["gt"].unsqueeze(0).float().to(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        for role, (network, source) in networks.items():
            was_training = network.training
            network.eval()
            try:
                output = _first_tensor(network(lq))
            finally:
                network.train(was_training)
            if tuple(output.shape[-2:]) != tuple(gt.shape[-2:]):
                height, width = lq.shape[-2:]
                raise ConfigError(
                    f"data.scale is {scale}, but {_describe(role, source)} turns a {height}x{width} input into "
                    f"{output.shape[-2]}x{output.shape[-1]} (the ground truth is {gt.shape[-2]}x{gt.shape[-1]}); "
                    f"set data.scale or the {role}'s upscale so that they agree"
                )
            if not bool(torch.isfinite(output).all()):
                raise CheckpointError(
                    f"{_describe(role, source)} gives non-finite outputs (NaN/inf) on the first training sample; "
                    "nothing could be learned from it: check its weights"
                )
        if vqgan is not None:
            network, source = vqgan
            was_training = network.training
            network.eval()
            pair = torch.cat([gt, gt.flip(-1)])  # two images: a 1x1 feature map needs a batch for GroupNorm
            try:
                features = network.features(pair) if hasattr(network, "features") else network(pair)
            finally:
                network.train(was_training)
            tensors = features if isinstance(features, (list, tuple)) else [features]
            if not all(bool(torch.isfinite(tensor).all()) for tensor in tensors if torch.is_tensor(tensor)):
                raise CheckpointError(
                    f"{_describe('VQGAN', source)} gives non-finite features (NaN/inf) on the first training "
                    "sample: check its weights"
                )
