"""The frozen VQGAN as DCKD uses it: an input range, feature levels, and code logits in float32."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from dckd.models.vqgan import latent_rows, negative_squared_distance_logits


class VQGANSpace:
    """Wraps a frozen ``dckd.models.vqgan.VQGANEncoder``.

    ``input_range``: ``zero_one`` feeds images in [0, 1] as the published code does (the VQGAN was
    trained on [-1, 1]); ``minus_one_one`` maps x -> 2x - 1 first.
    Gradients flow through the encoder to its input (the student's anchor needs them); the encoder's
    own weights are frozen.

    The encoder always runs in float32, also inside a bfloat16/float16 autocast region: measured on an
    H200 (benchmarks/results/2026-11-26_h200_train_step.json) bf16 made its passes slower, not faster
    (GroupNorm and SiLU dominate and run in float32 under autocast anyway), and it moved the
    contrastive ratio by 5% on the SwinIR x4 setting against 0.1% for the other terms.
    """

    def __init__(self, encoder: nn.Module, input_range: Literal["zero_one", "minus_one_one"] = "zero_one") -> None:
        if input_range not in ("zero_one", "minus_one_one"):
            raise ValueError(f"VQGAN input range {input_range!r}: expected 'zero_one' or 'minus_one_one'")
        self.encoder = encoder
        self.input_range = input_range

    def _prepare(self, images: Tensor) -> Tensor:
        return images * 2 - 1 if self.input_range == "minus_one_one" else images

    def features(self, images: Tensor) -> list[Tensor]:
        """The five feature levels (a partial encoder pass), float32."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self.encoder.features(self._prepare(images.float()))

    def features_and_code_logits(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """One full encoder pass: the feature levels and -||z - e_k||^2 for every latent position (N*h*w, K)."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            features, latent = self.encoder.features_and_latent(self._prepare(images.float()))
            # Equal to -||z - e_k||^2 up to a per-row constant (softmax ignores it), computed stably.
            logits = negative_squared_distance_logits(latent_rows(latent), self.encoder.codebook)
        return features, logits
