"""Deblurring / deraining pairs made on the fly from clean images (a stand-in for GoPro and Rain13K).

Each sample degrades its clean region with ``dckd.data.synthetic.synthesize`` (random motion blur, or
random rain-streak layers), drawing every parameter from the sample's own generator:

- training keys ``(index, seed)``: a new degradation per sample (infinite variety, deterministic per key);
- integer keys (evaluation): a fixed degradation per image, seeded by ``(base_seed, index)``, so a
  validation set made this way is the same in every run.

For speed a training sample degrades only its crop plus a margin wide enough for the largest blur
kernel and streak, then keeps the centre, so the result equals degrading the whole image (except where
the margin is cut by the image border, where the blur sees reflected pixels).
"""

from __future__ import annotations

import torch

from dckd.data.datasets import RestorationDataset, parse_key
from dckd.data.sampler import seed_for
from dckd.data.synthetic import TASKS, synthesize
from dckd.data.transforms import augment as augment_tensors
from dckd.data.transforms import center_crop_origin, random_crop_origin

MARGIN = 32  # > half the largest motion kernel and long enough for streaks to enter the crop


class SyntheticDataset(RestorationDataset):
    """Clean images from a scale-1 dataset; ``lq`` is made by the task's synthetic degradation."""

    def __init__(self, clean: RestorationDataset, task: str, base_seed: int) -> None:
        if task not in TASKS:
            raise ValueError(f"synthetic task {task!r}: expected one of {TASKS}")
        if clean.scale != 1:
            raise ValueError(f"synthetic {task} pairs are scale 1; the clean dataset has scale {clean.scale}")
        self.__dict__.update(clean.__dict__)  # share paths, cache and reading policy with the clean set
        self.clean = clean
        self.task = task
        self.base_seed = base_seed
        self.name = f"{clean.name}-synthetic-{task}"

    def load_pixels(self, index: int):
        _, gt = self.clean.load_pixels(index)
        return gt, gt  # validation checks the clean files; the degraded copy exists only in memory

    def __getitem__(self, key):
        index, seed = parse_key(key, len(self))
        generator = torch.Generator().manual_seed(
            seed if seed is not None else seed_for(self.base_seed, "synthetic", index)
        )
        _, clean = self.clean.load_pair(index)
        if self.lq_patch_size is not None:
            patch = self.lq_patch_size
            label = f"'{self.gt_paths[index]}'"
            top, left = (
                center_crop_origin(clean, patch, label)
                if seed is None
                else random_crop_origin(clean, patch, generator, label)
            )
            # Degrade the crop with a margin, keep the centre: as if the whole image had been degraded.
            region_top, region_left = max(top - MARGIN, 0), max(left - MARGIN, 0)
            region = clean[:, region_top : top + patch + MARGIN, region_left : left + patch + MARGIN]
            degraded = synthesize(region, self.task, generator)
            rows = slice(top - region_top, top - region_top + patch)
            columns = slice(left - region_left, left - region_left + patch)
            lq, gt = degraded[:, rows, columns].contiguous(), region[:, rows, columns].contiguous()
        else:
            lq, gt = synthesize(clean, self.task, generator), clean
        if self.augment and seed is not None:
            lq, gt = augment_tensors([lq, gt], generator)
        return {"lq": lq, "gt": gt, "name": self.sample_names[index]}

    def subset(self, indices):
        restricted = super().subset(indices)
        restricted.clean = self.clean.subset(indices)
        return restricted
