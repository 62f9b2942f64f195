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

    def __init__(
        self,
        encoder: nn.Module,
        input_range: Literal["zero_one", "minus_one_one"] = "zero_one",
        chunk_images: int = 0,
    ) -> None:
        if input_range not in ("zero_one", "minus_one_one"):
            raise ValueError(f"VQGAN input range {input_range!r}: expected 'zero_one' or 'minus_one_one'")
        if chunk_images < 0:
            raise ValueError(f"chunk_images must be >= 0, got {chunk_images}")
        self.encoder = encoder
        self.input_range = input_range
        self.chunk_images = chunk_images

    def _chunks(self, images: Tensor) -> list[Tensor]:
        """Passes without gradients run on ``chunk_images`` images at a time (0: all at once). The result is the
        same (every image is encoded on its own). On a 2-core CPU, chunks of 8 made the demo's DCKD iteration
        faster while freed memory went back to the system (265 vs 294 ms); with ``train.keep_freed_host_memory``
        one pass is faster (226 vs 266 ms, benchmarks/demo_step.py), so the demo does not chunk."""
        if not self.chunk_images or torch.is_grad_enabled() or images.shape[0] <= self.chunk_images:
            return [images]
        return list(images.split(self.chunk_images))

    def _prepare(self, images: Tensor) -> Tensor:
        return images * 2 - 1 if self.input_range == "minus_one_one" else images

    def features(self, images: Tensor) -> list[Tensor]:
        """The five feature levels (a partial encoder pass), float32."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            parts = [self.encoder.features(self._prepare(chunk.float())) for chunk in self._chunks(images)]
        return parts[0] if len(parts) == 1 else [torch.cat(level) for level in zip(*parts)]

    def features_and_code_logits(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """One full encoder pass: the feature levels and -||z - e_k||^2 for every latent position (N*h*w, K)."""
        features, logits = [], []
        with torch.autocast(device_type=images.device.type, enabled=False):
            for chunk in self._chunks(images):
                chunk_features, latent = self.encoder.features_and_latent(self._prepare(chunk.float()))
                # Equal to -||z - e_k||^2 up to a per-row constant (softmax ignores it), computed stably.
                logits.append(negative_squared_distance_logits(latent_rows(latent), self.encoder.codebook))
                features.append(chunk_features)
        if len(features) == 1:
            return features[0], logits[0]
        return [torch.cat(level) for level in zip(*features)], torch.cat(logits)
