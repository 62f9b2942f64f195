"""``dckd train-codebook``: it learns, is deterministic, and saves what ``build_vqgan`` and the DCKD losses load."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from conftest import write_images

from dckd.apps.train_codebook import (
    INPUT_RANGE,
    add_train_codebook_arguments,
    image_paths,
    run_train_codebook_command,
    train_codebook,
)
from dckd.config.schema import VQGANConfig
from dckd.engine.run_log import read_log
from dckd.engine.setup import build_vqgan
from dckd.errors import DatasetError
from dckd.methods.dckd.feature_space import VQGANSpace
from dckd.models.vq_autoencoder import VQAutoencoder

# Three levels, 16 codes: a few milliseconds per step on one CPU core.
TINY = dict(
    batch_size=4,
    crop_size=16,
    ch=32,
    ch_mult=(1, 1, 2),
    z_channels=8,
    embed_dim=8,
    n_embed=16,
    evaluation_crops=8,
    log_every_iters=5,
)


class Silent:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def tiny_images(tmp_path: Path) -> Path:
    return write_images(tmp_path / "photos", 3, 40, 48)


def only_plain_values(value) -> bool:
    """What torch.load(weights_only=True) accepts, spelled out: tensors, plain containers and scalars."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and only_plain_values(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(only_plain_values(item) for item in value)
    return isinstance(value, (torch.Tensor, str, int, float, bool)) or value is None


def test_training_lowers_the_error_and_saves_a_codebook_build_vqgan_loads(tmp_path: Path, tiny_images: Path) -> None:
    output = tmp_path / "codebook.pth"
    stats = train_codebook(
        tiny_images, output, iterations=80, learning_rate=1e-3, restart_every_iters=10, stream=Silent(), **TINY
    )
    # The same fixed crops are evaluated before and after training.
    assert stats["reconstruction"] < 0.8 * stats["initial"]["reconstruction"]
    assert stats["psnr"] > stats["initial"]["psnr"] + 1.5
    assert 1 <= stats["used_codes"] <= 16 and 1.0 <= stats["perplexity"] <= 16.0
    records = read_log(tmp_path / "codebook-log" / "log.jsonl")
    training = [record for record in records if "loss" in record]
    assert [record["iter"] for record in training] == list(range(5, 81, 5))
    assert training[-1]["loss"] < training[0]["loss"]
    assert {"reconstruction", "codebook", "perplexity", "seconds_per_iter"} <= set(training[0])

    checkpoint = torch.load(output, weights_only=True)
    assert only_plain_values(checkpoint)
    assert checkpoint["input_range"] == INPUT_RANGE == "minus_one_one"
    config = checkpoint["vqgan_config"]
    assert config["n_embed"] == 16 and config["ddconfig"]["ch_mult"] == [1, 1, 2]
    state_dict = checkpoint["state_dict"]
    assert {
        "quantize.embedding.weight",
        "quant_conv.weight",
        "post_quant_conv.weight",
        "decoder.conv_out.weight",
        "encoder.conv_in.weight",
    } <= set(state_dict)

    # The trained autoencoder, rebuilt from the file alone (strictly: every key, decoder included) ...
    trained = VQAutoencoder(config["embed_dim"], config["n_embed"], config["ddconfig"]).eval()
    trained.load_state_dict(state_dict, strict=True)
    # ... and the frozen encoder DCKD builds from the same file with no options: the same function.
    encoder = build_vqgan(VQGANConfig(checkpoint=str(output)))
    assert not any(parameter.requires_grad for parameter in encoder.parameters())
    x = torch.rand(2, 3, 24, 32) * 2 - 1
    with torch.no_grad():
        expected, _ = trained.encoder.forward_with_features(x, stop_after_features=True)
        found = encoder.features(x)
        assert len(found) == 3
        for level, (want, got) in enumerate(zip(expected, found)):
            torch.testing.assert_close(got, want, rtol=0, atol=0, msg=f"level {level}")
        _, _, indices = trained(x)
        assert torch.equal(encoder.code_distribution(x).argmax(dim=1), indices.reshape(-1))
        # The DCKD losses see it through VQGANSpace with the range it was trained on.
        features, logits = VQGANSpace(encoder, INPUT_RANGE).features_and_code_logits((x + 1) / 2)
        assert logits.shape == (2 * 6 * 8, 16) and torch.isfinite(logits).all()


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path: Path, tiny_images: Path) -> None:
    def weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        path = tmp_path / f"{name}.pth"
        train_codebook(tiny_images, path, iterations=3, restart_every_iters=1, seed=seed, stream=Silent(), **TINY)
        return torch.load(path, weights_only=True)["state_dict"]

    global_state = torch.random.get_rng_state()
    first, second, other = weights(5, "first"), weights(5, "second"), weights(6, "other")
    assert torch.equal(torch.random.get_rng_state(), global_state), "the caller's global RNG must not move"
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["encoder.conv_in.weight"], other["encoder.conv_in.weight"])


def test_dead_codes_are_restarted_and_the_adversarial_part_is_optional(tmp_path: Path, tiny_images: Path) -> None:
    output = tmp_path / "adversarial.pth"
    options = {**TINY, "crop_size": 32, "n_embed": 64}  # the PatchGAN needs at least 32x32 inputs
    stats = train_codebook(
        tiny_images,
        output,
        iterations=6,
        restart_every_iters=2,
        adversarial_weight=0.5,
        adversarial_start_iteration=3,
        stream=Silent(),
        **options,
    )
    assert stats["restarted_codes"] > 0  # 4 crops x 64 latents cannot use all 64 codes from the start
    records = read_log(tmp_path / "adversarial-log" / "log.jsonl")
    assert [record["restarted_codes"] for record in records if "restarted_codes" in record]  # at 2 and 4, not 6
    assert [record["iter"] for record in records if "restarted_codes" in record] == [2, 4]
    assert "discriminator" in [record for record in records if "loss" in record][-1]
    state_dict = torch.load(output, weights_only=True)["state_dict"]
    assert any(key.startswith("loss.discriminator.") for key in state_dict)
    build_vqgan(VQGANConfig(checkpoint=str(output)))  # taming's loss.* keys are ignored, as in last.ckpt


def test_errors_name_the_option_or_the_file(tmp_path: Path, tiny_images: Path) -> None:
    # iterations=1: should a check ever be missed, the test fails fast instead of training for long.
    with pytest.raises(ValueError, match="--crop-size 18 must be a multiple of 4"):
        train_codebook(tiny_images, tmp_path / "x.pth", iterations=1, **{**TINY, "crop_size": 18})
    with pytest.raises(ValueError, match="multiple of 32"):
        train_codebook(tiny_images, tmp_path / "x.pth", iterations=1, **{**TINY, "ch": 24})
    with pytest.raises(ValueError, match="too small for the discriminator"):
        train_codebook(tiny_images, tmp_path / "x.pth", iterations=1, adversarial_weight=0.1, **TINY)
    small = write_images(tmp_path / "small", 1, 12, 12)
    with pytest.raises(DatasetError, match=r"0000\.png.*smaller than the crop size 16"):
        train_codebook(small, tmp_path / "x.pth", iterations=1, **TINY)
    assert not (tmp_path / "x.pth").exists()
    assert [path.stem for path in image_paths("bundled")][:2] == ["brick", "camera"]


def test_command_line_runs_end_to_end(tmp_path: Path, tiny_images: Path, capsys) -> None:
    arguments = [
        "--output",
        str(tmp_path / "cli.pth"),
        "--iterations",
        "4",
        "--batch-size",
        "2",
        "--crop-size",
        "16",
        "--ch-mult",
        "1,2",
        "--z-channels",
        "4",
        "--embed-dim",
        "4",
        "--n-embed",
        "8",
        "--log-every",
        "2",
        "--evaluation-crops",
        "4",
        "--log-dir",
        str(tmp_path / "logs"),
        "--seed",
        "1",
    ]
    parser = argparse.ArgumentParser()
    add_train_codebook_arguments(parser)
    assert run_train_codebook_command(parser.parse_args([str(tiny_images), *arguments])) == 0
    assert "codes used" in capsys.readouterr().err
    checkpoint = torch.load(tmp_path / "cli.pth", weights_only=True)
    assert checkpoint["vqgan_config"]["ddconfig"]["ch_mult"] == [1, 2]
    assert checkpoint["training"]["seed"] == 1
    assert json.loads((tmp_path / "logs" / "log.jsonl").read_text().splitlines()[-1])["evaluation"]["used_codes"] >= 1

    # Through the `dckd` entry point (needs the whole CLI, which imports the demo module).
    pytest.importorskip("dckd.apps.demo")
    from dckd.apps.cli import main

    assert main(["train-codebook", str(tiny_images), *arguments, "--output", str(tmp_path / "main.pth")]) == 0
    first = torch.load(tmp_path / "cli.pth", weights_only=True)["state_dict"]
    again = torch.load(tmp_path / "main.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert main(["train-codebook", str(tiny_images), *arguments, "--crop-size", "15"]) == 2  # an error, not a traceback
