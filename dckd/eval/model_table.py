"""``dckd models``: every preset with its parameter count (and the paper's) and multiply-adds."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from dckd.models.backbones import BACKBONES, PAPER_PARAMETERS, PRESETS


def count_parameters(network: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def multiply_adds(backbone: str, options: dict, height: int, width: int) -> tuple[int, int]:
    """(parameters, multiply-adds of one forward pass on a 1x3xHxW input).

    Counted by torch's FlopCounterMode (matmuls, convolutions, attention) on the meta device, so no
    memory is allocated and nothing is computed; multiply-adds = FLOPs / 2.
    """
    with torch.device("meta"):
        network = BACKBONES[backbone](**options)
        image = torch.empty(1, 3, height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(image)
    return count_parameters(network), counter.get_total_flops() // 2


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
