"""Weight averaging shared by the student EMA and DCKD's history model: theta <- d*theta + (1-d)*theta_src."""

from __future__ import annotations

import copy

import torch
from torch import nn


def unwrap(network: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(network, nn.parallel.DistributedDataParallel):
            network = network.module
        elif hasattr(network, "_orig_mod"):
            network = network._orig_mod
        else:
            return network


def frozen_copy(network: nn.Module) -> nn.Module:
    """A deep copy in eval mode with every parameter frozen (EMA, history model)."""
    duplicate = copy.deepcopy(unwrap(network))
    return freeze(duplicate)


def freeze(network: nn.Module) -> nn.Module:
    """eval() and requires_grad_(False): frozen networks (teacher, history, VQGAN) never train."""
    network.eval()
    network.requires_grad_(False)
    return network


@torch.no_grad()
def interpolate_(target: nn.Module, source: nn.Module, decay: float) -> None:
    """theta_target <- decay * theta_target + (1 - decay) * theta_source for parameters; buffers are copied.

    BasicSR's model_ema and the published history update both average parameters only.
    """
    source = unwrap(source)
    source_parameters = dict(source.named_parameters())
    for name, parameter in unwrap(target).named_parameters():
        parameter.mul_(decay).add_(source_parameters[name].detach(), alpha=1 - decay)
    source_buffers = dict(source.named_buffers())
    for name, buffer in unwrap(target).named_buffers():
        buffer.copy_(source_buffers[name])
