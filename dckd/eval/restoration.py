"""Whole-image restoration (padding, tiling, x8 self-ensemble) and PSNR/SSIM over datasets.

Protocol (the literature's): the output is quantised to uint8 as saved images are, then PSNR/SSIM are
computed by ``dckd.eval.metrics`` on the Y channel (SR, deraining) or RGB (deblurring), with ``crop_border``
pixels removed from every side (the scale for SR, 0 otherwise).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dckd.errors import NetworkOutputError
from dckd.eval.metrics import psnr, ssim, tensor_to_uint8
from dckd.models.padding import pad_to_multiple


def autocast_context(device: torch.device, precision: str):
    """torch.autocast for bfloat16/float16, a no-op for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_output_size(output: Any, x: Tensor, scale: int) -> None:
    """Raise ``NetworkOutputError`` unless ``output`` is an ``(N, C, scale*H, scale*W)`` tensor for ``x``
    ``(N, C_in, H, W)``: a network of another scale is an error, never a silently cropped result."""
    if not isinstance(output, Tensor):
        raise NetworkOutputError(f"the network returned a {type(output).__name__}, expected an image tensor")
    height, width = x.shape[-2:]
    if output.dim() != 4 or output.shape[0] != x.shape[0] or output.shape[1] not in (1, 3, x.shape[1]):
        raise NetworkOutputError(
            f"the network's output has shape {tuple(output.shape)} for an input of shape {tuple(x.shape)}; "
            "expected (N, C, H, W) images"
        )
    if tuple(output.shape[-2:]) != (height * scale, width * scale):
        found = output.shape[-2] / height, output.shape[-1] / width
        raise NetworkOutputError(
            f"the network's output is {output.shape[-2]}x{output.shape[-1]} for an input of {height}x{width} "
            f"(x{found[0]:g} by x{found[1]:g}), expected {height * scale}x{width * scale} (scale {scale}); "
            "the scale given (--scale, or the one recorded with the weights) does not match the network"
        )


def _forward_padded(network: nn.Module, x: Tensor, scale: int) -> Tensor:
    """Run ``network`` on ``x`` padded to its ``size_multiple`` (reflect), crop the padding off the output.

    dckd's backbones pad themselves; this keeps user networks that only declare ``size_multiple`` working.
    The output must be exactly ``scale`` times the (padded) input (``check_output_size``).
    """
    height, width = x.shape[-2:]
    multiple = int(getattr(network, "size_multiple", 1))
    padded = pad_to_multiple(x, multiple) if multiple > 1 else x
    output = network(padded)
    check_output_size(output, padded, scale)
    return output[..., : height * scale, : width * scale]


def _tiled(network: nn.Module, x: Tensor, scale: int, tile_size: int, overlap: int) -> Tensor:
    """Restore overlapping tiles and average the overlaps (for images that do not fit in memory)."""
    height, width = x.shape[-2:]
    if tile_size <= 0 or (height <= tile_size and width <= tile_size):
        return _forward_padded(network, x, scale)
    if overlap >= tile_size:
        raise ValueError(f"tile_overlap {overlap} must be smaller than tile_size {tile_size}")
    stride = tile_size - overlap
    tops = list(range(0, max(height - tile_size, 0) + 1, stride))
    lefts = list(range(0, max(width - tile_size, 0) + 1, stride))
    if tops[-1] + tile_size < height:
        tops.append(height - tile_size)
    if lefts[-1] + tile_size < width:
        lefts.append(width - tile_size)
    output = weight = None
    for top in tops:
        for left in lefts:
            tile = x[..., top : top + tile_size, left : left + tile_size]
            restored = _forward_padded(network, tile, scale).float()
            if output is None:
                output = x.new_zeros(
                    (x.shape[0], restored.shape[1], height * scale, width * scale), dtype=torch.float32
                )
                weight = torch.zeros_like(output[:, :1])
            rows = slice(top * scale, top * scale + restored.shape[-2])
            columns = slice(left * scale, left * scale + restored.shape[-1])
            output[..., rows, columns] += restored
            weight[..., rows, columns] += 1
    return output / weight


def _transform(x: Tensor, index: int) -> Tensor:
    """The 8 dihedral transforms: bit 0 vertical flip, bit 1 horizontal flip, bit 2 transpose."""
    if index & 1:
        x = x.flip(-2)
    if index & 2:
        x = x.flip(-1)
    if index & 4:
        x = x.transpose(-1, -2)
    return x


def _inverse_transform(x: Tensor, index: int) -> Tensor:
    if index & 4:
        x = x.transpose(-1, -2)
    if index & 2:
        x = x.flip(-1)
    if index & 1:
        x = x.flip(-2)
    return x


@torch.no_grad()
def restore(
    network: nn.Module,
    lq: Tensor,
    scale: int,
    tile_size: int = 0,
    tile_overlap: int = 32,
    self_ensemble: bool = False,
    precision: str = "float32",
) -> Tensor:
    """Restore a batch of whole images ``(N, C, H, W)`` in [0, 1]; returns float32 ``(N, C, sH, sW)``."""
    with autocast_context(lq.device, precision):
        if not self_ensemble:
            return _tiled(network, lq, scale, tile_size, tile_overlap).float()
        outputs = [
            _inverse_transform(_tiled(network, _transform(lq, index), scale, tile_size, tile_overlap).float(), index)
            for index in range(8)
        ]
    return torch.stack(outputs).mean(0)


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float


def score_image(restored: Tensor, gt: Tensor, crop_border: int, y_channel: bool, name: str = "") -> ImageScore:
    """PSNR/SSIM of one image after quantising both to uint8 (``(C, H, W)`` or ``(1, C, H, W)`` tensors)."""
    restored_uint8, gt_uint8 = tensor_to_uint8(restored), tensor_to_uint8(gt)
    if restored_uint8.shape != gt_uint8.shape:
        raise ValueError(f"{name}: restored shape {restored_uint8.shape} differs from ground truth {gt_uint8.shape}")
    use_y = y_channel and restored_uint8.shape[-1] == 3
    options = dict(crop_border=crop_border, y_channel=use_y)
    return ImageScore(name, psnr(restored_uint8, gt_uint8, **options), ssim(restored_uint8, gt_uint8, **options))


def evaluation_protocol(task: str, scale: int, y_channel: bool | None, crop_border: int | None) -> tuple[bool, int]:
    """(y_channel, crop_border) with the task's defaults: SR Y/scale, deraining Y/0, deblurring RGB/0."""
    if y_channel is None:
        y_channel = task in ("sr", "derain")
    if crop_border is None:
        crop_border = scale if task == "sr" else 0
    return y_channel, crop_border


@torch.no_grad()
def evaluate_dataset(
    network: nn.Module,
    dataset,
    scale: int,
    device: torch.device,
    y_channel: bool,
    crop_border: int,
    tile_size: int = 0,
    tile_overlap: int = 32,
    self_ensemble: bool = False,
    precision: str = "float32",
    keep_outputs: bool = False,
) -> dict:
    """Restore every image of ``dataset`` (integer keys: whole images) and score it.

    Returns ``{"psnr": mean, "ssim": mean, "images": [ImageScore, ...]}`` (+ ``"outputs"`` when kept).
    """
    was_training = network.training
    network.eval()
    scores, outputs = [], []
    try:
        for index in range(len(dataset)):
            item = dataset[index]
            lq = item["lq"].unsqueeze(0).to(device)
            restored = restore(network, lq, scale, tile_size, tile_overlap, self_ensemble, precision)[0].cpu()
            scores.append(score_image(restored, item["gt"], crop_border, y_channel, item.get("name", str(index))))
            if keep_outputs:
                outputs.append(restored)
    finally:
        network.train(was_training)
    finite = [score.psnr for score in scores if math.isfinite(score.psnr)]
    result = {
        "psnr": sum(finite) / len(finite) if finite else float("inf"),
        "ssim": sum(score.ssim for score in scores) / max(len(scores), 1),
        "images": scores,
    }
    if keep_outputs:
        result["outputs"] = outputs
    return result
