"""``dckd models``: every preset with its parameter count (and the paper's) and multiply-adds."""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from dckd.models.backbones import BACKBONES, PAPER_PARAMETERS, PRESETS


def count_parameters(network: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def count_multiply_adds(network: torch.nn.Module, height: int, width: int, channels: int = 3) -> int:
    """Multiply-adds of one forward pass of ``network`` on a 1 x channels x H x W input.

    Counted by torch's FlopCounterMode (matmuls, convolutions, attention) on the meta device, so no memory
    is allocated and nothing is computed; multiply-adds = FLOPs / 2. A network with real weights is counted
    on a meta-device copy (the network itself is left as it is).
    """
    if any(tensor.device.type != "meta" for tensor in (*network.parameters(), *network.buffers())):
        network = copy.deepcopy(network).to("meta")
    image = torch.empty(1, channels, height, width, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(image)
    return counter.get_total_flops() // 2


def multiply_adds(backbone: str, options: dict, height: int, width: int) -> tuple[int, int]:
    """(parameters, multiply-adds of one forward pass on a 1x3xHxW input) of ``BACKBONES[backbone](**options)``,
    built on the meta device (``count_multiply_adds``)."""
    with torch.device("meta"):
        network = BACKBONES[backbone](**options)
    return count_parameters(network), count_multiply_adds(network, height, width)


def model_table(height: int = 64, width: int = 64) -> str:
    lines = [
        f"multiply-adds for one {height}x{width} input (the LR image for SR presets)",
        f"{'preset':<22} {'backbone':<10} {'scale':>5} {'params':>9} {'paper':>7} {'GMACs':>9}",
    ]
    for name, (backbone, options) in PRESETS.items():
        parameters, macs = multiply_adds(backbone, options, height, width)
        scale = options.get("upscale", 1)
        lines.append(
            f"{name:<22} {backbone:<10} {scale:>5} {parameters / 1e6:>8.2f}M {PAPER_PARAMETERS.get(name, '-'):>7} "
            f"{macs / 1e9:>9.2f}"
        )
    return "\n".join(lines)
