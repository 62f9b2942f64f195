"""Property tests: random sizes, scales, patch sizes and channel counts thrown at the data pipeline.

Contracts checked: the GT patch is the region of the (mod-cropped) GT image that corresponds, at
``scale`` times the position, to the LQ patch's region of the bicubic LQ image, up to one flip/rotation
applied to both; shapes; float32 values in [0, 1]; a sample depends only on its key. And the sampler's
stream properties for random sizes, batches, world sizes and resume points.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dckd.data import BicubicDataset, PairedDataset, TrainBatchSampler
from dckd.data.imresize import bicubic_degrade

SETTINGS = settings(max_examples=30, deadline=None)


def dihedral(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of a (C, H, W) tensor, in a fixed order."""
    results = []
    for transpose in (False, True):
        base = tensor.transpose(-2, -1) if transpose else tensor
        for flip_h in (False, True):
            for flip_w in (False, True):
                flipped = base.flip(-2) if flip_h else base
                results.append(flipped.flip(-1) if flip_w else flipped)
    return results


def aligned_positions(lq_full, gt_full, lq_patch, gt_patch, patch: int, scale: int) -> list[tuple[int, int, int]]:
    """All (top, left, transform) whose LQ and GT regions, transformed alike, equal the two patches."""
    found = []
    for top in range(lq_full.shape[1] - patch + 1):
        for left in range(lq_full.shape[2] - patch + 1):
            lq_region = lq_full[:, top : top + patch, left : left + patch]
            gt_region = gt_full[:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale]
            for transform, (lq_view, gt_view) in enumerate(zip(dihedral(lq_region), dihedral(gt_region))):
                if torch.equal(lq_view, lq_patch) and torch.equal(gt_view, gt_patch):
                    found.append((top, left, transform))
    return found


@st.composite
def pipelines(draw):
    scale = draw(st.integers(1, 4))
    patch = draw(st.integers(1, 5))
    lq_height = draw(st.integers(patch, patch + 4))
    lq_width = draw(st.integers(patch, patch + 4))
    # GT may exceed scale * LQ by fewer than scale rows/columns (it is mod-cropped).
    gt_height = lq_height * scale + draw(st.integers(0, scale - 1))
    gt_width = lq_width * scale + draw(st.integers(0, scale - 1))
    channels = draw(st.sampled_from([1, 3, 4]))
    stored_lq = draw(st.booleans())
    augment = draw(st.booleans())
    seed = draw(st.integers(0, 2**63 - 1))
    content_seed = draw(st.integers(0, 2**32 - 1))
    return scale, patch, (gt_height, gt_width), channels, stored_lq, augment, seed, content_seed


@SETTINGS
@given(pipelines())
def test_pipeline_contracts(case):
    scale, patch, (gt_height, gt_width), channels, stored_lq, augment, seed, content_seed = case
    rng = np.random.default_rng(content_seed)
    stored = rng.integers(0, 256, (gt_height, gt_width, channels), dtype=np.uint8)
    if channels == 4:
        stored[:, :, 3] = 255  # opaque alpha: dropped
    rgb = np.repeat(stored, 3, axis=2) if channels == 1 else stored[:, :, :3]
    lq_full_pixels = bicubic_degrade(rgb, scale)
    gt_full = torch.from_numpy(
        rgb[: gt_height // scale * scale, : gt_width // scale * scale].transpose(2, 0, 1) / 255.0
    )
    lq_full = torch.from_numpy(lq_full_pixels.transpose(2, 0, 1) / 255.0)

    with tempfile.TemporaryDirectory() as folder:
        gt_path = Path(folder) / "gt.png"
        Image.fromarray(stored[:, :, 0] if channels == 1 else stored).save(gt_path)
        if stored_lq:
            lq_path = Path(folder) / "lq.png"
            Image.fromarray(lq_full_pixels).save(lq_path)

            def build():
                return PairedDataset([(gt_path, lq_path)], scale, patch, augment)
        else:

            def build():
                return BicubicDataset([gt_path], scale, patch, augment)

        dataset = build()
        sample = dataset[(0, seed)]
        again = build()[(0, seed)]  # a fresh instance (another worker or process) gives the same
        centre = dataset[0]

    for item in (sample, centre):
        assert item["lq"].shape == (3, patch, patch) and item["gt"].shape == (3, patch * scale, patch * scale)
        assert item["lq"].dtype == torch.float32 and item["gt"].dtype == torch.float32
        for tensor in (item["lq"], item["gt"]):
            assert float(tensor.min()) >= 0.0 and float(tensor.max()) <= 1.0
    assert torch.equal(sample["lq"], again["lq"]) and torch.equal(sample["gt"], again["gt"])

    lq_full, gt_full = lq_full.float(), gt_full.float()
    positions = aligned_positions(lq_full, gt_full, sample["lq"], sample["gt"], patch, scale)
    assert positions, "the LQ and GT patches are not corresponding regions"
    if not augment:
        assert any(transform == 0 for _, _, transform in positions)
    top, left = (lq_full.shape[1] - patch) // 2, (lq_full.shape[2] - patch) // 2
    assert torch.equal(centre["lq"], lq_full[:, top : top + patch, left : left + patch])
    assert torch.equal(
        centre["gt"], gt_full[:, top * scale : (top + patch) * scale, left * scale : (left + patch) * scale]
    )


@SETTINGS
@given(
    num_items=st.integers(1, 9),
    batch=st.integers(1, 4),
    world_size=st.sampled_from([1, 2, 4]),
    start=st.integers(0, 6),
    base_seed=st.integers(0, 2**40),
)
def test_sampler_stream_properties(num_items, batch, world_size, start, base_seed):
    iterations = 8
    global_batch = batch * world_size
    reference = iter(TrainBatchSampler(num_items, global_batch, base_seed))
    uninterrupted = [next(reference) for _ in range(iterations)]
    ranks = [
        iter(TrainBatchSampler(num_items, batch, base_seed, rank, world_size, start)) for rank in range(world_size)
    ]
    for iteration in range(start, iterations):
        assert sum((next(rank) for rank in ranks), []) == uninterrupted[iteration]
    positions = [key for keys in uninterrupted for key in keys]
    for epoch in range(len(positions) // num_items):
        assert sorted(index for index, _ in positions[epoch * num_items : (epoch + 1) * num_items]) == list(
            range(num_items)
        )
