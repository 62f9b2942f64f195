"""Sizes before memory: constructor arguments checked by value, the whole network measured on the meta device.

A network's sizes may come from a file (a weights record, a codebook checkpoint's ``vqgan_config``, a
reference index) or a config. Two checks keep a bad value from building a wrong network or allocating
terabytes:

- every backbone checks its constructor arguments first (``integer``, ``integers``, ``number``, ``choice``,
  ``flag``): ``num_block=-3`` or ``num_feat=0`` is a ``ValueError`` that names the argument, never a network
  with zero blocks or a traceback from deep inside ``nn.Conv2d``;
- ``meta_network`` builds the network on PyTorch's meta device (shapes only, no memory) and refuses one whose
  parameters and buffers exceed ``MAX_NETWORK_ELEMENTS``. Its state_dict shapes can then be compared with a
  checkpoint's tensors (``dckd.files.weights.check_state_dict_fits``) before the real network is allocated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from dckd.errors import ConfigError

MAX_NETWORK_ELEMENTS = 1 << 30
"""The most parameter and buffer elements a network may have (4 GiB in float32; the largest network of the
paper, EDSR x4, has 43M). A bigger one is refused before any memory is allocated."""

Network = TypeVar("Network", bound=nn.Module)


def integer(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats such as 1e6 are refused: sizes are integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an integer >= {minimum}")
    return value


def integers(
    name: str, value: Any, minimum: int = 1, length: int | None = None, min_length: int = 1
) -> tuple[int, ...]:
    """``value`` as a sequence of ints >= ``minimum``, of exactly ``length`` items (or at least ``min_length``)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name}={value!r}: expected a list of integers")
    if length is not None and len(value) != length:
        raise ValueError(f"{name}={list(value)!r}: expected {length} values, got {len(value)}")
    if len(value) < min_length:
        raise ValueError(f"{name}={list(value)!r}: expected at least {min_length} value(s)")
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            raise ValueError(f"{name}={list(value)!r}: item {index} is {item!r}, expected an integer >= {minimum}")
    return tuple(value)


def number(
    name: str, value: Any, minimum: float | None = None, maximum: float | None = None, above: float | None = None
) -> float:
    """``value`` as a finite number in [``minimum``, ``maximum``] (or > ``above``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}: expected a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r}: expected a number >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value!r}: expected a number <= {maximum}")
    if above is not None and value <= above:
        raise ValueError(f"{name}={value!r}: expected a number > {above}")
    return float(value)


def choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(map(repr, choices))}")
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected true or false")
    return value


def network_elements(network: nn.Module) -> int:
    """Elements of every parameter and buffer (persistent or not)."""
    return sum(tensor.numel() for tensor in itertools.chain(network.parameters(), network.buffers()))


def meta_network(factory: Callable[[], Network], description: str) -> Network:
    """``factory()`` built on the meta device: shapes without memory, sizes bounded.

    Raises:
        ConfigError: the constructor refused an argument (``ValueError``), or the network would hold more
            than ``MAX_NETWORK_ELEMENTS`` elements.
    """
    try:
        with torch.device("meta"):
            network = factory()
    except ValueError as error:
        raise ConfigError(f"{description}: {error}") from None
    elements = network_elements(network)
    if elements > MAX_NETWORK_ELEMENTS:
        raise ConfigError(
            f"{description}: these options describe a network of {elements:,} parameters and buffers "
            f"({elements * 4 / 2**30:,.1f} GiB in float32), more than the {MAX_NETWORK_ELEMENTS:,} dckd builds; "
            "check the size options"
        )
    return network
