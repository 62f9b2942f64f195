"""The shipped demo weights are what docs/demo.md says: loaded by the ordinary checkpoint code, made by the
documented commands, and a teacher worth distilling from."""

from __future__ import annotations

from pathlib import Path

import torch

from dckd.config.schema import VQGANConfig
from dckd.data.bundled import bundled_dataset
from dckd.data.imresize import imresize_tensor
from dckd.engine.setup import build_vqgan, network_from_weights
from dckd.eval.restoration import evaluate_dataset, score_image
from dckd.files.weights import read_checkpoint

WEIGHTS = Path(__file__).resolve().parents[1] / "dckd" / "assets" / "weights"


def test_shipped_teacher_loads_strictly_and_beats_bicubic_on_every_test_photo() -> None:
    teacher = network_from_weights(str(WEIGHTS / "demo_teacher_x4.pth"))
    assert sum(parameter.numel() for parameter in teacher.parameters()) == 195_971
    dataset = bundled_dataset("test", 4)
    with torch.no_grad():
        scores = evaluate_dataset(teacher, dataset, 4, torch.device("cpu"), y_channel=True, crop_border=4)
    bicubic = []
    for index in range(len(dataset)):
        item = dataset[index]
        upscaled = imresize_tensor(item["lq"].double(), 4).float().clamp(0, 1)
        bicubic.append(score_image(upscaled, item["gt"], crop_border=4, y_channel=True).psnr)
    # Measured on the 13 test photos (2026-11-30): 27.607 vs 26.638 dB, +0.23 dB (chelsea) to +2.70 dB (text)
    # per photo; on the 5 test photos of 2026-11-26: 29.285 vs 27.945 dB.
    assert all(image.psnr > reference for image, reference in zip(scores["images"], bicubic, strict=True))
    assert scores["psnr"] > sum(bicubic) / len(bicubic) + 0.5


def test_shipped_codebook_records_its_command_and_loads_into_the_dckd_feature_space() -> None:
    path = WEIGHTS / "demo_codebook.pth"
    training = read_checkpoint(path)["training"]
    # docs/demo.md: dckd train-codebook bundled --iterations 16000 --ch 8 --ch-mult 1,2,4,4,8 --norm-groups 4
    # --lr 6e-4 --encoder-only --seed 0 (defaults otherwise)
    content = read_checkpoint(path)
    assert (training["images"], training["iterations"], training["seed"]) == ("bundled", 16000, 0)
    assert training["learning_rate"] == 6e-4
    ddconfig = content["vqgan_config"]["ddconfig"]
    assert (ddconfig["ch"], ddconfig["ch_mult"], ddconfig["norm_groups"]) == (8, [1, 2, 4, 4, 8], 4)
    assert not any(key.startswith("decoder.") for key in content["state_dict"]), "--encoder-only"
    vqgan = build_vqgan(VQGANConfig(checkpoint=str(path)))
    image = bundled_dataset("test", 4)[0]["gt"][None, :, :128, :128] * 2 - 1  # the codebook takes [-1, 1]
    with torch.no_grad():
        features, distribution = vqgan.features(image), vqgan.code_distribution(image)
    assert len(features) == 5 and all(torch.isfinite(feature).all() for feature in features)
    assert torch.allclose(distribution.sum(-1), torch.ones(()), atol=1e-5)
    assert distribution.argmax(-1).unique().numel() > 4  # a trained codebook, not one collapsed code
