"""Folders and layouts, paired and bicubic datasets, the index protocol, and the resumable sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dckd.data import (
    BicubicDataset,
    DatasetError,
    ImageReadError,
    PairedDataset,
    TrainBatchSampler,
    augment,
    benchmark_layout,
    find_pairs,
    gopro,
    gopro_layout,
    hr_folder,
    input_target,
    input_target_layout,
    list_images,
    match_pairs,
    paired_folders,
    paired_random_crop,
    seed_for,
    sr_benchmark,
)
from dckd.data.imresize import bicubic_degrade, imresize


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32).transpose(2, 0, 1) / 255)


def make_sr_pairs(root: Path, scale: int, sizes: list[tuple[int, int]], template: str = "{}x{scale}") -> None:
    """``root/HR/i.png`` and ``root/LR/<template>.png`` made by the benchmark bicubic pipeline."""
    for index, (height, width) in enumerate(sizes):
        hr = random_image(height, width, seed=index)
        save(root / "HR" / f"{index:04d}.png", hr)
        save(root / "LR" / f"{template.format(f'{index:04d}', scale=scale)}.png", bicubic_degrade(hr, scale))


# ---------------------------------------------------------------------------------------------------
# Folders and layouts


def test_list_images_sorts_filters_and_skips_hidden(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.tiff", "._a.png", ".hidden.png", "notes.txt", "d.WebP"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [path.name for path in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.tiff", "d.WebP"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"'.*empty' holds no image"):
        list_images(empty)
    with pytest.raises(DatasetError, match="does not exist"):
        list_images(tmp_path / "absent")


def test_match_pairs_with_template_and_differing_extensions(tmp_path):
    for stem in ["0001", "0002"]:
        (tmp_path / "gt" / f"{stem}.png").parent.mkdir(exist_ok=True)
        (tmp_path / "gt" / f"{stem}.png").write_bytes(b"x")
    (tmp_path / "lq").mkdir()
    (tmp_path / "lq" / "0001x4.png").write_bytes(b"x")
    (tmp_path / "lq" / "0002x4.jpg").write_bytes(b"x")
    pairs = match_pairs(tmp_path / "gt", tmp_path / "lq", "{}x4")
    assert [(gt.name, lq.name) for gt, lq in pairs] == [("0001.png", "0001x4.png"), ("0002.png", "0002x4.jpg")]
    with pytest.raises(DatasetError, match=r"0001\.png -> 0001\.\*"):
        match_pairs(tmp_path / "gt", tmp_path / "lq", "{}")
    with pytest.raises(ValueError, match="must contain"):
        match_pairs(tmp_path / "gt", tmp_path / "lq", "x4")
    (tmp_path / "lq" / "0002x4.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="share the name '0002x4'"):
        match_pairs(tmp_path / "gt", tmp_path / "lq", "{}x4")


def test_unmatched_names_are_listed_up_to_ten(tmp_path):
    for index in range(13):
        (tmp_path / "gt").mkdir(exist_ok=True)
        (tmp_path / "gt" / f"{index:02d}.png").write_bytes(b"x")
    (tmp_path / "lq").mkdir()
    (tmp_path / "lq" / "00.png").write_bytes(b"x")
    (tmp_path / "lq" / "stray.png").write_bytes(b"x")
    with pytest.raises(DatasetError) as raised:
        match_pairs(tmp_path / "gt", tmp_path / "lq")
    message = str(raised.value)
    assert "12 GT image(s)" in message and "10.png -> 10.*" in message and "and 2 more" in message
    assert "12.png" not in message  # beyond the first ten
    assert "match no GT image" in message and "stray.png" in message
    match = find_pairs(tmp_path / "gt", tmp_path / "lq")
    assert len(match.pairs) == 1 and len(match.unmatched()) == 13


def test_benchmark_layouts(tmp_path):
    edsr = tmp_path / "Set5"
    (edsr / "HR").mkdir(parents=True)
    (edsr / "LR_bicubic" / "X4").mkdir(parents=True)
    layout = benchmark_layout(edsr, 4)
    assert (layout.name, layout.gt_dir, layout.lq_dir, layout.filename_template) == (
        "Set5",
        edsr / "HR",
        edsr / "LR_bicubic" / "X4",
        "{}x4",
    )
    assert benchmark_layout(edsr, 3).lq_dir is None  # no X3 folder: bicubic on the fly
    basicsr = tmp_path / "Set14"
    (basicsr / "GTmod12").mkdir(parents=True)
    (basicsr / "LRbicx2").mkdir()
    assert benchmark_layout(basicsr, 2).lq_dir == basicsr / "LRbicx2"
    assert benchmark_layout(basicsr, 2).filename_template == "{}"
    with pytest.raises(DatasetError, match="not an SR benchmark folder"):
        benchmark_layout(tmp_path, 4)


def test_gopro_both_layouts_and_unique_sample_names(tmp_path):
    for sequence in ["GOPR0372_07_00", "GOPR0384_11_01"]:
        for frame in ["000047", "000048"]:
            save(tmp_path / "sequences" / "test" / sequence / "sharp" / f"{frame}.png", random_image(8, 8))
            save(tmp_path / "sequences" / "test" / sequence / "blur" / f"{frame}.png", random_image(8, 8, 1))
    match = gopro_layout(tmp_path / "sequences", "test")
    assert len(match.pairs) == 4
    assert all(gt.parent.name == "sharp" and lq.parent.name == "blur" for gt, lq in match.pairs)
    assert all(gt.parent.parent == lq.parent.parent and gt.name == lq.name for gt, lq in match.pairs)
    dataset = gopro(tmp_path / "sequences", "test")
    assert dataset.scale == 1 and dataset.name == "GoPro-test"
    assert dataset.sample_names[0] == "GOPR0372_07_00/sharp/000047"  # stems repeat across sequences
    assert len(set(dataset.sample_names)) == 4

    for name in ["a", "b"]:
        save(tmp_path / "flat" / "train" / "input" / f"{name}.png", random_image(8, 8))
        save(tmp_path / "flat" / "train" / "target" / f"{name}.png", random_image(8, 8))
    flat = gopro(tmp_path / "flat", "train", lq_patch_size=4, augment=True)
    assert [lq.parent.name for lq in flat.lq_paths] == ["input", "input"]
    assert flat.sample_names == ["a", "b"]
    with pytest.raises(ValueError, match="split must be"):
        gopro_layout(tmp_path / "flat", "val")


def test_input_target_layout_identical_names_and_missing_pair(tmp_path):
    root = tmp_path / "Rain100H"
    for name in ["1", "2", "3"]:
        save(root / "input" / f"{name}.png", random_image(6, 6))
        save(root / "target" / f"{name}.png", random_image(6, 6, 1))
    assert [(gt.name, lq.name) for gt, lq in input_target_layout(root).pairs][0] == ("1.png", "1.png")
    dataset = input_target(root)
    assert len(dataset) == 3 and dataset.name == "Rain100H" and dataset.scale == 1
    (root / "input" / "3.png").unlink()
    with pytest.raises(DatasetError, match=r"3\.png -> 3\.\*"):
        input_target(root)
    reported = input_target(root, missing_pairs="report")
    assert len(reported) == 2 and reported.missing_pairs[0][0] == root / "target" / "3.png"
    with pytest.raises(DatasetError, match="must hold 'input/'"):
        input_target(tmp_path)


# ---------------------------------------------------------------------------------------------------
# Datasets


def test_paired_evaluation_mod_crops_gt_and_rejects_wrong_sizes(tmp_path):
    make_sr_pairs(tmp_path, 3, [(20, 23), (18, 18)])  # 20x23 -> LR 6x7; GT cropped to 18x21
    dataset = paired_folders(tmp_path / "HR", tmp_path / "LR", 3, "{}x3")
    sample = dataset[0]
    assert sample["name"] == "0000" and sample["lq"].shape == (3, 6, 7) and sample["gt"].shape == (3, 18, 21)
    hr = np.asarray(Image.open(tmp_path / "HR" / "0000.png"))
    torch.testing.assert_close(sample["gt"], as_tensor(hr[:18, :21]), rtol=0, atol=0)

    save(tmp_path / "LR" / "0001x3.png", random_image(5, 6))  # 18x18 GT cannot give 5x6 at x3
    with pytest.raises(DatasetError) as raised:
        dataset[1]
    message = str(raised.value)
    assert "0001.png" in message and "0001x3.png" in message and "scale 3" in message


def test_index_protocol_int_is_centre_crop_and_seed_key_is_reproducible(tmp_path):
    make_sr_pairs(tmp_path, 2, [(40, 36)])
    dataset = paired_folders(tmp_path / "HR", tmp_path / "LR", 2, "{}x2", lq_patch_size=6, augment=True)
    lq_full, gt_full = dataset.load_pair(0)  # (3, 20, 18), (3, 40, 36)
    centre = dataset[0]
    torch.testing.assert_close(centre["lq"], lq_full[:, 7:13, 6:12], rtol=0, atol=0)
    torch.testing.assert_close(centre["gt"], gt_full[:, 14:26, 12:24], rtol=0, atol=0)
    first, again = dataset[(0, 12345)], dataset[(0, 12345)]
    assert torch.equal(first["lq"], again["lq"]) and torch.equal(first["gt"], again["gt"])
    patches = {dataset[(0, seed)]["lq"].numpy().tobytes() for seed in range(12)}
    assert len(patches) > 6  # seeds give different crops and flips
    assert first["lq"].shape == (3, 6, 6) and first["gt"].shape == (3, 12, 12)
    with pytest.raises(IndexError):
        dataset[1]
    with pytest.raises(TypeError, match="index or"):
        dataset[(0, 1, 2)]


def test_seeded_crops_are_aligned_between_lq_and_gt(tmp_path):
    make_sr_pairs(tmp_path, 4, [(48, 44)])
    dataset = paired_folders(tmp_path / "HR", tmp_path / "LR", 4, "{}x4", lq_patch_size=3, augment=False)
    lq_full, gt_full = dataset.load_pair(0)
    for seed in range(5):
        sample = dataset[(0, seed)]
        # Random content: the LQ patch occurs at exactly one position; the GT patch is 4x that position.
        matches = [
            (top, left)
            for top in range(lq_full.shape[1] - 2)
            for left in range(lq_full.shape[2] - 2)
            if torch.equal(lq_full[:, top : top + 3, left : left + 3], sample["lq"])
        ]
        assert len(matches) == 1
        top, left = matches[0]
        expected = gt_full[:, 4 * top : 4 * top + 12, 4 * left : 4 * left + 12]
        torch.testing.assert_close(sample["gt"], expected, rtol=0, atol=0)


def test_paired_random_crop_errors_name_the_image():
    lq, gt = torch.rand(3, 5, 9), torch.rand(3, 10, 18)
    with pytest.raises(DatasetError, match=r"0042\.png.*5x9, smaller than the 6x6"):
        paired_random_crop(lq, gt, 6, 2, torch.Generator().manual_seed(0), name="0042.png")


def test_augment_applies_the_same_transform_to_all_and_reaches_all_eight():
    lq = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    gt = lq.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # nearest x2 of lq
    seen = set()
    for seed in range(64):
        generator = torch.Generator().manual_seed(seed)
        out_lq, out_gt = augment([lq, gt], generator)
        torch.testing.assert_close(out_gt[:, ::2, ::2], out_lq, rtol=0, atol=0)
        seen.add(out_lq.numpy().tobytes())
        # Always three draws, so the generator ends in the same state with augmentation off.
        reference = torch.Generator().manual_seed(seed)
        torch.rand(3, generator=reference)
        assert torch.equal(torch.rand(1, generator=generator), torch.rand(1, generator=reference))
    assert len(seen) == 8
    unchanged = augment([lq], torch.Generator().manual_seed(0), hflip=False, rotation=False)[0]
    assert torch.equal(unchanged, lq)


def test_bicubic_dataset_matches_stored_benchmark_lr_and_caches(tmp_path, monkeypatch):
    make_sr_pairs(tmp_path, 4, [(30, 27)])
    stored = paired_folders(tmp_path / "HR", tmp_path / "LR", 4, "{}x4")[0]
    dataset = hr_folder(tmp_path / "HR", 4)
    assert isinstance(dataset, BicubicDataset)
    calls = []
    import dckd.data.datasets as datasets_module

    original = datasets_module.bicubic_degrade
    monkeypatch.setattr(datasets_module, "bicubic_degrade", lambda *args: calls.append(1) or original(*args))
    first = dataset[0]
    assert torch.equal(first["lq"], stored["lq"]) and torch.equal(first["gt"], stored["gt"])
    dataset[0]
    dataset[(0, 7)]
    assert len(calls) == 1  # computed once per image

    float_lq = hr_folder(tmp_path / "HR", 4, quantize_lq=False)[0]["lq"]
    hr = np.asarray(Image.open(tmp_path / "HR" / "0000.png")).astype(np.float64)[:28, :24] / 255
    expected = np.clip(imresize(hr, 0.25), 0, 1).astype(np.float32).transpose(2, 0, 1)
    torch.testing.assert_close(float_lq, torch.from_numpy(expected), rtol=0, atol=1e-6)
    assert not torch.equal(float_lq, first["lq"])


def test_16bit_images_keep_their_precision_in_samples(tmp_path):
    values = np.random.default_rng(0).integers(0, 65536, (8, 12), dtype=np.uint16)
    save(tmp_path / "hr" / "deep.png", values)
    sample = hr_folder(tmp_path / "hr", 2)[0]
    expected_gt = torch.from_numpy(values.astype(np.float32) / 65535).expand(3, -1, -1)
    torch.testing.assert_close(sample["gt"], expected_gt, rtol=0, atol=0)
    unit = np.repeat(values[:, :, None].astype(np.float64) / 65535, 3, axis=2)
    expected_lq = torch.from_numpy(bicubic_degrade(unit, 2).astype(np.float32).transpose(2, 0, 1) / 255)
    torch.testing.assert_close(sample["lq"], expected_lq, rtol=0, atol=0)
    save(tmp_path / "lq" / "deep.png", values)
    paired = paired_folders(tmp_path / "hr", tmp_path / "lq", 1)[0]
    torch.testing.assert_close(paired["lq"], expected_gt, rtol=0, atol=0)


def test_sr_benchmark_uses_stored_lr_or_makes_it(tmp_path):
    root = tmp_path / "Set5"
    hr = random_image(16, 16)
    save(root / "HR" / "baby.png", hr)
    save(root / "LR_bicubic" / "X2" / "babyx2.png", bicubic_degrade(hr, 2))
    paired = sr_benchmark(root, 2)
    assert isinstance(paired, PairedDataset) and paired.name == "Set5"
    made = sr_benchmark(root, 4)
    assert isinstance(made, BicubicDataset) and made[0]["lq"].shape == (3, 4, 4)
    assert torch.equal(paired[0]["lq"], sr_benchmark(root, 2, cache_images=True)[0]["lq"])


def test_a_file_that_goes_bad_during_training_is_named_through_dataloader_workers(tmp_path):
    make_sr_pairs(tmp_path, 2, [(8, 8), (8, 8)])
    dataset = paired_folders(tmp_path / "HR", tmp_path / "LR", 2, "{}x2", lq_patch_size=2, augment=True)
    (tmp_path / "LR" / "0001x2.png").unlink()
    loader = DataLoader(dataset, batch_sampler=[[(1, 5)]], num_workers=1)
    with pytest.raises(ImageReadError, match=r"0001x2\.png.*does not exist"):
        next(iter(loader))
    data = (tmp_path / "HR" / "0000.png").read_bytes()
    (tmp_path / "HR" / "0000.png").write_bytes(data[:40])
    with pytest.raises(ImageReadError, match=r"0000\.png"):
        dataset[(0, 1)]


# ---------------------------------------------------------------------------------------------------
# Sampler


def stream(sampler: TrainBatchSampler, iterations: int) -> list[list[tuple[int, int]]]:
    iterator = iter(sampler)
    return [next(iterator) for _ in range(iterations)]


def test_two_ranks_together_equal_one_rank_with_double_batch():
    single = stream(TrainBatchSampler(10, 6, base_seed=3), 7)
    rank0 = stream(TrainBatchSampler(10, 3, base_seed=3, rank=0, world_size=2), 7)
    rank1 = stream(TrainBatchSampler(10, 3, base_seed=3, rank=1, world_size=2), 7)
    for iteration in range(7):
        assert rank0[iteration] + rank1[iteration] == single[iteration]
    assert stream(TrainBatchSampler(10, 6, base_seed=4), 1) != single[:1]


@pytest.mark.parametrize("world_size,batch", [(1, 4), (2, 2), (4, 1)])
def test_resume_gives_the_uninterrupted_stream_even_with_another_world_size(world_size, batch):
    uninterrupted = stream(TrainBatchSampler(7, 4, base_seed=11), 12)
    for start in [0, 1, 5]:
        resumed = [
            stream(TrainBatchSampler(7, batch, 11, rank, world_size, start_iteration=start), 12 - start)
            for rank in range(world_size)
        ]
        joined = [sum((resumed[rank][step] for rank in range(world_size)), []) for step in range(12 - start)]
        assert joined == uninterrupted[start:]


def test_every_item_once_per_epoch_with_fresh_seeds():
    sampler = TrainBatchSampler(9, 4, base_seed=0)  # epochs end inside batches
    keys = [key for batch in stream(sampler, 9) for key in batch]  # 36 positions = 4 epochs
    for epoch in range(4):
        assert sorted(index for index, _ in keys[9 * epoch : 9 * epoch + 9]) == list(range(9))
    orders = {tuple(index for index, _ in keys[9 * epoch : 9 * epoch + 9]) for epoch in range(4)}
    assert len(orders) > 1  # reshuffled each epoch
    seeds = [seed for _, seed in keys]
    assert len(set(seeds)) == len(seeds) and all(0 <= seed < 2**63 for seed in seeds)


def test_seed_for_is_stable_and_separates_parts():
    assert seed_for(1, 23) != seed_for(12, 3) and seed_for(1, "1") != seed_for(1, 1)
    # A pinned value: the same in every process, machine and run (resume depends on it).
    assert seed_for(2024, "epoch", 3) == 5615304550770487102
    with pytest.raises(TypeError):
        seed_for(0, 1.5)


def test_dataloader_with_workers_gives_the_same_batches_as_in_process(tmp_path):
    make_sr_pairs(tmp_path, 2, [(12, 12), (14, 10), (10, 16)])
    dataset = paired_folders(tmp_path / "HR", tmp_path / "LR", 2, "{}x2", lq_patch_size=4, augment=True)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(dataset, batch_sampler=TrainBatchSampler(3, 2, base_seed=5), num_workers=workers)
        iterator = iter(loader)
        return [next(iterator)["gt"] for _ in range(4)]

    for in_process, from_workers in zip(batches(0), batches(2)):
        assert torch.equal(in_process, from_workers)


def test_a_meta_info_list_selects_the_listed_files_only(tmp_path: Path) -> None:
    """BasicSR's meta_info_file: the first word of each line names a GT file; the LQ file is
    filename_tmpl.format(stem) + the GT's extension; nothing else in the folders is read."""
    from dckd.config.schema import DatasetConfig
    from dckd.data.folders import read_meta_info
    from dckd.engine.setup import build_dataset
    from dckd.errors import ConfigError, DatasetError

    gt_dir, lq_dir = tmp_path / "HR_sub", tmp_path / "LR_sub"
    for index, stem in enumerate(["0001_s001", "0001_s002", "0002_s001"]):
        save(gt_dir / f"{stem}.png", np.full((16, 16, 3), 40 * index, np.uint8))
        save(lq_dir / f"{stem}x2.png", np.full((8, 8, 3), 40 * index, np.uint8))
    (gt_dir / "broken.png").write_bytes(b"not an image")  # not listed: never opened
    meta = tmp_path / "meta_info.txt"
    meta.write_text("0001_s002.png (16,16,3)\n\n0002_s001.png (16,16,3)\n")
    spec = DatasetConfig(
        kind="paired", gt_dir=str(gt_dir), lq_dir=str(lq_dir), filename_template="{}x2", meta_info_file=str(meta)
    )
    dataset = build_dataset(spec, 2, None, False)
    assert [Path(path).name for path in dataset.gt_paths] == ["0001_s002.png", "0002_s001.png"]
    assert [Path(path).name for path in dataset.lq_paths] == ["0001_s002x2.png", "0002_s001x2.png"]
    assert float(dataset[0]["gt"].mean()) == pytest.approx(40 / 255, abs=1e-6)

    meta.write_text("0001_s002.png\n0009_s001.png\n")
    with pytest.raises(DatasetError, match=r"1 GT image\(s\) listed in .* do not exist .*0009_s001.png"):
        build_dataset(spec, 2, None, False)
    meta.write_text("../outside.png\n")
    with pytest.raises(DatasetError, match="line 1: '../outside.png' is not a file name inside the GT folder"):
        read_meta_info(meta)
    meta.write_text("\n\n")
    with pytest.raises(DatasetError, match="lists no file"):
        read_meta_info(meta)
    with pytest.raises(ConfigError, match="meta_info_file: only datasets of kind 'paired'"):
        DatasetConfig(kind="hr_only", gt_dir=str(gt_dir), meta_info_file=str(meta))
