"""Backbones, reached by plain imports and listed in one dict.

``BACKBONES`` maps a name to the class (official constructor arguments); ``PRESETS`` maps a preset name
to (backbone, constructor kwargs) for the networks of the paper; ``KEY_CONVERTERS`` turns an official
alternative key layout (EDSR-PyTorch names of the original RCAN / EDSR checkpoints) into ours, and
``official_state_dict`` writes a network in the layout of its architecture's original code (what spandrel,
the loader of chaiNNer and ComfyUI, detects).
To add a backbone: write its module, import it here, add one entry to ``BACKBONES`` (and presets).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dckd.errors import ConfigError
from dckd.models.backbones import edsr, nafnet, rcan, restormer, swinir
from dckd.models.backbones.edsr import EDSR
from dckd.models.backbones.nafnet import NAFNet
from dckd.models.backbones.rcan import RCAN
from dckd.models.backbones.restormer import Restormer
from dckd.models.backbones.swinir import SwinIR
from dckd.models.vq_autoencoder import CodebookNetwork

BACKBONES: dict[str, type[nn.Module]] = {
    "swinir": SwinIR,
    "rcan": RCAN,
    "edsr": EDSR,
    "nafnet": NAFNet,
    "restormer": Restormer,
    "vq_autoencoder": CodebookNetwork,  # not a restoration network: the codebook autoencoder (method codebook)
}

# RCAN and EDSR take num_in_ch / num_out_ch positionally in BasicSR; presets pass them explicitly.
_RGB = {"num_in_ch": 3, "num_out_ch": 3}

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: ("swinir", kwargs) for name, kwargs in swinir.PRESETS.items()},
    **{name: ("rcan", {**_RGB, **kwargs}) for name, kwargs in rcan.PRESETS.items()},
    **{name: ("edsr", {**_RGB, **kwargs}) for name, kwargs in edsr.PRESETS.items()},
    **{name: ("nafnet", kwargs) for name, kwargs in nafnet.PRESETS.items()},
    **{name: ("restormer", kwargs) for name, kwargs in restormer.PRESETS.items()},
}

# Parameter counts printed in the DCKD paper (Table 1 / Tables 2-4), for ``dckd models``.
PAPER_PARAMETERS: dict[str, str] = {
    "swinir_m_x2": "11.9M",
    "swinir_m_x3": "11.9M",
    "swinir_m_x4": "11.9M",
    "swinir_s_x2": "1.2M",
    "swinir_s_x3": "1.2M",
    "swinir_s_x4": "1.2M",
    "rcan_x2": "15.6M",
    "rcan_x3": "15.6M",
    "rcan_x4": "15.6M",
    "rcan_student_x2": "5.2M",
    "rcan_student_x3": "5.2M",
    "rcan_student_x4": "5.2M",
    "nafnet_gopro_width32": "17.1M",
    "nafnet_width16": "2.7M",
    "restormer": "26.1M",
    "restormer_dim24": "3.8M",
}

# Every residual group / transformer layer of a network, in order (FAKD's ``default_layers: evenly_paired``:
# each student group paired with the teacher group at the same relative depth, see methods/fakd.py).
FEATURE_GROUPS: dict[str, Callable[[nn.Module], list[str]]] = {
    "swinir": lambda network: [f"layers.{index}" for index in range(len(network.layers))],
    "rcan": lambda network: [f"body.{index}" for index in range(len(network.body))],
    "edsr": lambda network: [f"body.{index}" for index in range(len(network.body))],
    "nafnet": lambda network: [f"encoders.{index}" for index in range(len(network.encoders))],
    "restormer": lambda network: ["encoder_level1", "encoder_level2", "encoder_level3", "latent"],
}


def _fakd_thirds(network: nn.Module, count: int, what: str) -> tuple[int, int]:
    """0-based indices of the groups after which 1/3 and 2/3 of ``count`` groups are done: round(k * count / 3) - 1
    (k = 1, 2), which is the official FAKD code's hard-coded (2, 6) for RCAN's 10 groups."""
    if count < 3:
        raise ConfigError(
            f"fakd: the {type(network).__name__} has {count} {what}; FAKD's recipe compares the features after "
            f"1/3 and 2/3 of at least 3: set fakd.student_layers and fakd.teacher_layers, or "
            "fakd.default_layers: evenly_paired"
        )
    return round(count / 3) - 1, round(2 * count / 3) - 1


def _rcan_fakd_features(network: nn.Module) -> list[str]:
    first, second = _fakd_thirds(network, len(network.body), "residual groups")
    return [f"body.{first}", f"body.{second}", "upsample:input"]


def _edsr_fakd_features(network: nn.Module) -> list[str]:
    # The official EDSR splits its n blocks into int(n/3), int(2n/3) - int(n/3) and the rest; a first part
    # of 0 blocks (n < 3) makes its feature the head's output, the input of body.0.
    count = len(network.body)
    points = [int(count / 3), int(2 * count / 3)]
    return [f"body.{blocks - 1}" if blocks else "body.0:input" for blocks in points] + ["upsample:input"]


_SWINIR_RECONSTRUCTION_INPUT = {
    "pixelshuffle": "conv_before_upsample:input",
    "nearest+conv": "conv_before_upsample:input",
    "pixelshuffledirect": "upsample:input",
    "": "conv_last:input",
}


def _swinir_fakd_features(network: nn.Module) -> list[str]:
    first, second = _fakd_thirds(network, len(network.layers), "residual Swin blocks (RSTBs)")
    return [f"layers.{first}", f"layers.{second}", _SWINIR_RECONSTRUCTION_INPUT[network.upsampler]]


# FAKD's recipe (official code, He et al. 2020, ``--features [1,2,3]``): the features after 1/3 and 2/3 of the
# body and the body's output with the global skip, i.e. the input of the upsampler. RCAN 10 groups: body.2,
# body.6, upsample:input; EDSR: the official thirds of its blocks; SwinIR (FAKD never used it; our reading):
# the RSTB outputs after 1/3 and 2/3 of the layers and the input of the reconstruction head.
FAKD_FEATURES: dict[str, Callable[[nn.Module], list[str]]] = {
    "rcan": _rcan_fakd_features,
    "edsr": _edsr_fakd_features,
    "swinir": _swinir_fakd_features,
}


def _convert_rcan(state_dict: dict, network: nn.Module) -> dict:
    if not rcan.is_edsr_pytorch_layout(state_dict):
        return state_dict
    return rcan.convert_edsr_pytorch_state_dict(
        state_dict,
        num_group=len(network.body),
        num_block=len(network.body[0].residual_group),
        img_range=network.img_range,
        rgb_mean=network.rgb_mean,
    )


def _convert_edsr(state_dict: dict, network: nn.Module) -> dict:
    if not edsr.is_edsr_pytorch_layout(state_dict):
        return state_dict
    return edsr.convert_edsr_pytorch_state_dict(state_dict, num_block=len(network.body))


KEY_CONVERTERS: dict[str, Callable[[dict, nn.Module], dict]] = {"rcan": _convert_rcan, "edsr": _convert_edsr}


OFFICIAL_LAYOUTS: dict[str, str] = {
    "swinir": "the official SwinIR code's (dckd's own keys: nothing to convert)",
    "nafnet": "the official NAFNet code's (dckd's own keys: nothing to convert)",
    "restormer": "the official Restormer code's (dckd's own keys: nothing to convert)",
    "rcan": "the official RCAN (EDSR-PyTorch) code's, with sub_mean/add_mean (rcan.to_edsr_pytorch_state_dict)",
}
"""The key layout ``official_state_dict`` writes for each backbone. EDSR is absent: its official EDSR-PyTorch
layout is read (``KEY_CONVERTERS``) but not written, as no tool that loads dckd networks reads it (spandrel
has no EDSR architecture)."""


def official_state_dict(backbone: str, network: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of ``network`` (a dckd ``backbone``) in the key layout of the architecture's original code:
    the layout spandrel 0.4.2 detects (docs/interop.md). dckd's ``weights.pth`` keeps BasicSR's layout; this is
    for files meant for other tools. Tensors are detached, not copied.

    RCAN is converted (``rcan.to_edsr_pytorch_state_dict``) and must have res_scale 1 and img_range 255,
    which the official code and spandrel assume (they cannot read either from the file); SwinIR, NAFNet and
    Restormer are returned as they are. Any other backbone is a ValueError naming those that have a layout.
    """
    if backbone not in OFFICIAL_LAYOUTS:
        raise ValueError(
            f"backbone {backbone!r} has no official layout dckd writes; backbones with one: {', '.join(OFFICIAL_LAYOUTS)}"
        )
    if not isinstance(network, BACKBONES[backbone]):
        raise ValueError(f"official_state_dict: a {type(network).__name__} is not a dckd {backbone!r} network")
    state_dict = {key: tensor.detach() for key, tensor in network.state_dict().items()}
    if backbone != "rcan":
        return state_dict
    channels = (network.conv_first.in_channels, network.conv_last.out_channels)
    if channels != (3, 3):
        raise ValueError(
            f"this RCAN maps {channels[0]} to {channels[1]} channels; the official layout's mean shift is for RGB "
            "(3 to 3): only RGB networks can be written"
        )
    res_scales = {block.res_scale for group in network.body for block in group.residual_group}
    if res_scales != {1}:
        raise ValueError(
            f"this RCAN has res_scale {sorted(res_scales)}; the official RCAN code (and spandrel) ignore res_scale, "
            "so a file in their layout would compute another function: only res_scale 1 can be written"
        )
    if network.img_range != 255:
        raise ValueError(
            f"this RCAN has img_range {network.img_range}; the official RCAN code reads its files with rgb_range 255 "
            "(spandrel cannot read another from the file): only img_range 255 can be written"
        )
    return rcan.to_edsr_pytorch_state_dict(
        state_dict,
        num_group=len(network.body),
        num_block=len(network.body[0].residual_group),
        img_range=network.img_range,
        rgb_mean=network.rgb_mean,
    )


def resolve(
    preset: str | None, backbone: str | None, options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """(backbone name, constructor kwargs) from a preset and/or backbone plus overriding options."""
    kwargs: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(sorted(PRESETS))}")
        preset_backbone, preset_kwargs = PRESETS[preset]
        if backbone is not None and backbone != preset_backbone:
            raise ValueError(f"preset {preset!r} is a {preset_backbone} network, but backbone {backbone!r} was given")
        backbone = preset_backbone
        kwargs.update(preset_kwargs)
    if backbone is None:
        raise ValueError("give a preset or a backbone")
    kwargs.update(options or {})
    return backbone, kwargs


# The SR factor each backbone's constructor arguments give (what its ``scale`` attribute will be), read
# without building the network: configs are checked against ``data.scale`` before anything is built.
SCALES: dict[str, Callable[[dict[str, Any]], int]] = {
    "swinir": lambda options: options["upscale"] if options["upsampler"] else 1,
    "rcan": lambda options: options["upscale"],
    "edsr": lambda options: options["upscale"],
    "nafnet": lambda options: 1,
    "restormer": lambda options: 1,
    "vq_autoencoder": lambda options: 1,
}


def declared_scale(backbone: str, options: dict[str, Any]) -> int | None:
    """The SR factor of ``backbone`` built with ``options`` (defaults filled in); None for a user's class or
    options that do not fit the constructor (building the network reports those)."""
    if backbone not in SCALES:
        return None
    try:
        bound = inspect.signature(BACKBONES[backbone]).bind(**options)
    except TypeError:
        return None
    bound.apply_defaults()
    try:
        scale = SCALES[backbone](bound.arguments)
    except (KeyError, TypeError):
        return None
    return scale if isinstance(scale, int) and not isinstance(scale, bool) else None
