"""Tests of the frozen VQGAN encoder (dckd/vqgan.py), its safe loading, and the trainable autoencoder
(dckd/codebook_model.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dckd.errors import CheckpointError
from dckd.eval import selfcheck
from dckd.files.safe_pickle import Placeholder, safe_torch_load
from dckd.losses.autoencoder import adversarial_factor, autoencoder_loss, discriminator_hinge_loss
from dckd.models.vq_autoencoder import NLayerDiscriminator, VQAutoencoder, code_usage
from dckd.models.vqgan import (
    VQGANEncoder,
    code_distribution_from_latent,
    load_vqgan_encoder,
    taming_f16_1024_config,
)

GOLDEN = selfcheck.DEFAULT_DIR
GENERATED = Path(__file__).parent / "references" / "vqgan"
# Small but complete: 3 levels (32, 32, 64 channels), attention at level 2 and in the mid block.
SMALL_DDCONFIG = dict(
    in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 2], num_res_blocks=1, attn_resolutions=[8],
    resolution=32, z_channels=16, dropout=0.0, double_z=False,
)  # fmt: skip
SMALL = dict(embed_dim=8, n_embed=32, ddconfig=SMALL_DDCONFIG)


def small_encoder(seed: int = 0) -> VQGANEncoder:
    torch.manual_seed(seed)
    encoder = VQGANEncoder(**SMALL).eval()
    with torch.no_grad():  # larger latents and codes than the default init, so distributions are not uniform
        encoder.quant_conv.weight.mul_(4.0)
        encoder.quantize.embedding.weight.normal_(0.0, 1.0)
    return encoder


def images(batch: int = 2, height: int = 24, width: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --------------------------------------------------------------------------- reference vectors


def test_shipped_golden_case_passes() -> None:
    index = json.loads((GOLDEN / "index.json").read_text())
    result = selfcheck.check_vqgan(GOLDEN, "vqgan_small", index["vqgan_small"])
    assert result.passed, result


def test_generated_reference_set_passes() -> None:
    results = selfcheck.run_directory(GENERATED)
    assert len(results) >= 4 and all(result.kind == "vqgan" for result in results)
    failed = [result for result in results if not result.passed]
    assert not failed, failed


def test_f16_config_matches_manifest_key_for_key() -> None:
    manifests = json.loads((GOLDEN / "manifests.json").read_text())
    (entry,) = [value for name, value in manifests.items() if name.startswith("VQGAN_f16_n1024")]
    config = taming_f16_1024_config()
    assert config == entry["config"]
    with torch.device("meta"):  # shapes only: no 120 MB allocation
        encoder = VQGANEncoder(**config)
        features = encoder.features(torch.empty(1, 3, 64, 96))
        autoencoder = VQAutoencoder(**config)
    shapes = {key: list(value.shape) for key, value in encoder.state_dict().items()}
    assert shapes == entry["state_dict"]
    assert list(shapes) == list(entry["state_dict"])  # same order as taming's, too
    assert {key: list(value.shape) for key, value in autoencoder.encoder_state_dict().items()} == entry["state_dict"]
    # the spec's five maps: 128ch@H, 128ch@H/2, 256ch@H/4, 256ch@H/8, 512ch@H/16
    assert [tuple(feature.shape) for feature in features] == [
        (1, 128, 64, 96), (1, 128, 32, 48), (1, 256, 16, 24), (1, 256, 8, 12), (1, 512, 4, 6)
    ]  # fmt: skip


# --------------------------------------------------------------------------- one pass, gradients, state


def test_one_pass_equals_separate_calls_and_runs_the_encoder_once() -> None:
    encoder, x = small_encoder(), images()
    calls = []
    encoder.encoder.conv_in.register_forward_hook(lambda *_: calls.append(1))
    features, distribution = encoder.features_and_code_distribution(x)
    assert len(calls) == 1
    separate_features = encoder.features(x)
    separate_distribution = encoder.code_distribution(x)
    assert len(features) == len(separate_features) == 3
    for joint, alone in zip(features, separate_features):
        torch.testing.assert_close(joint, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(distribution, separate_distribution, rtol=0, atol=1e-6)
    latent_features, latent = encoder.features_and_latent(x)
    torch.testing.assert_close(latent, encoder.encode(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(latent_features, features, rtol=0, atol=0)
    assert distribution.shape == (2 * 6 * 8, 32)
    assert distribution.max() > 0.2  # not a near-uniform distribution, so the comparison means something


def test_features_stop_after_the_last_levels_first_block() -> None:
    encoder = small_encoder()
    ran = []
    encoder.encoder.down[2].attn[0].register_forward_hook(lambda *_: ran.append("attn"))
    encoder.encoder.mid.block_1.register_forward_hook(lambda *_: ran.append("mid"))
    features = encoder.features(images())
    assert ran == []
    assert [tuple(feature.shape) for feature in features] == [(2, 32, 24, 32), (2, 32, 12, 16), (2, 64, 6, 8)]
    encoder.features_and_code_distribution(images())
    assert ran == ["attn", "mid"]


def test_gradients_reach_the_input_but_not_frozen_weights() -> None:
    encoder = small_encoder().requires_grad_(False)
    x = images().requires_grad_(True)
    features, distribution = encoder.features_and_code_distribution(x)
    target = torch.softmax(torch.randn_like(distribution), dim=1)
    loss = sum(feature.abs().mean() for feature in features) - (target * distribution.clamp_min(1e-12).log()).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in encoder.parameters())


def test_no_state_changes_between_train_and_eval() -> None:
    encoder, x = small_encoder(), images()
    assert list(encoder.buffers()) == []
    with torch.no_grad():
        evaluated = encoder.features_and_code_distribution(x)
        trained = encoder.train().features_and_code_distribution(x)
    for a, b in zip(evaluated[0] + [evaluated[1]], trained[0] + [trained[1]]):
        assert torch.equal(a, b)


def test_code_distribution_rows_and_stability_at_large_latents() -> None:
    generator = torch.Generator().manual_seed(3)
    latent = 40 * torch.randn(2, 16, 3, 5, generator=generator)  # |z|^2 ~ 1e4: float32 cancellation territory
    codebook = 40 * torch.randn(64, 16, generator=generator)
    codebook[:10] = latent.permute(0, 2, 3, 1).reshape(-1, 16)[:10] + 0.3  # some rows close to a code
    distribution = code_distribution_from_latent(latent, codebook)
    rows = latent.double().permute(0, 2, 3, 1).reshape(-1, 16)  # (n, y, x) order
    exact = torch.softmax(-torch.cdist(rows, codebook.double()).square(), dim=1)
    assert distribution.dtype == torch.float32 and distribution.shape == (30, 64)
    assert (distribution.double() - exact).abs().max() < 1e-4
    # row (n=1, y=2, x=3) is row 1*15 + 2*5 + 3
    single = latent[1, :, 2, 3].double()
    expected = torch.softmax(-(single - codebook.double()).square().sum(dim=1), dim=0)
    assert (distribution[1 * 15 + 2 * 5 + 3].double() - expected).abs().max() < 1e-4


def test_ddconfig_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="ch_multt"):
        VQGANEncoder(8, 32, {**SMALL_DDCONFIG, "ch_multt": [1]})
    with pytest.raises(ValueError, match="z_channels"):
        VQGANEncoder(8, 32, {key: value for key, value in SMALL_DDCONFIG.items() if key != "z_channels"})
    with pytest.raises(ValueError, match="double_z"):
        VQGANEncoder(8, 32, {**SMALL_DDCONFIG, "double_z": True})


# --------------------------------------------------------------------------- loading

EXECUTION_MARKER_NAME = "executed.txt"


def record_execution(path: str) -> None:
    """What a pickled payload would run if the loader executed it: leaves a file behind."""
    Path(path).write_text("the pickle ran code")


class LightningLikeCallback:
    """A custom class (think ModelCheckpoint) whose unpickling, if executed, calls ``record_execution``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return record_execution, (self.marker,)


class AttributeDict(dict):
    """Like Lightning's hyper-parameter container: a dict subclass pickled with SETITEMS and BUILD."""


class RunsShellCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def taming_like_state_dict(encoder: VQGANEncoder) -> dict[str, torch.Tensor]:
    """The encoder's weights plus decoder, post_quant_conv and discriminator keys a last.ckpt also holds."""
    state = dict(encoder.state_dict())
    state["decoder.conv_in.weight"] = torch.randn(32, 16, 3, 3)
    state["post_quant_conv.weight"] = torch.randn(16, 8, 1, 1)
    state["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["loss.perceptual_loss.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    return state


def test_loads_lightning_checkpoint_without_executing_its_objects(tmp_path: Path) -> None:
    source, x = small_encoder(seed=5), images()
    marker = tmp_path / EXECUTION_MARKER_NAME
    hyper_parameters = AttributeDict(lr=4.5e-6, ddconfig=SMALL_DDCONFIG)
    hyper_parameters.extra = "attribute"
    checkpoint = {
        "epoch": 3,
        "global_step": 1234,
        "pytorch-lightning_version": "1.0.8",
        "state_dict": taming_like_state_dict(source),
        "callbacks": {
            LightningLikeCallback: {"best_model_score": torch.tensor(0.5)},
            "instance": LightningLikeCallback(str(marker)),
        },
        "hyper_parameters": hyper_parameters,
        "numpy_scalar": np.float64(1.5),
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4}]}],
    }
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint, path)

    loaded = safe_torch_load(path)
    assert not marker.exists()
    assert isinstance(loaded["callbacks"]["instance"], Placeholder)
    assert isinstance(loaded["hyper_parameters"], Placeholder)
    assert loaded["global_step"] == 1234 and loaded["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-4
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], value), key

    encoder = load_vqgan_encoder(path, **SMALL)
    assert not marker.exists()
    assert not encoder.training and not any(parameter.requires_grad for parameter in encoder.parameters())
    with torch.no_grad():
        for ours, theirs in zip(encoder.features(x), source.features(x)):
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_plain_state_dicts(tmp_path: Path, suffix: str) -> None:
    source, x = small_encoder(seed=6), images()
    path = tmp_path / f"vqgan{suffix}"
    state = taming_like_state_dict(source)
    if suffix == ".safetensors":
        save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    else:
        torch.save(state, path)
    encoder = load_vqgan_encoder(path, **SMALL)
    with torch.no_grad():
        torch.testing.assert_close(encoder.code_distribution(x), source.code_distribution(x), rtol=0, atol=0)


def test_refuses_a_pickle_that_would_run_a_shell_command(tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "malicious.ckpt"
    torch.save({"state_dict": small_encoder().state_dict(), "payload": RunsShellCommand(f"touch {marker}")}, path)
    with pytest.raises(CheckpointError, match=r"(os|posix|nt)\.system"):
        safe_torch_load(path)
    with pytest.raises(CheckpointError):
        load_vqgan_encoder(path, **SMALL)
    assert not marker.exists()


def test_strict_loading_names_the_offending_key(tmp_path: Path) -> None:
    state = taming_like_state_dict(small_encoder())
    encoder = VQGANEncoder(**SMALL)

    missing = {key: value for key, value in state.items() if key != "encoder.mid.attn_1.q.weight"}
    with pytest.raises(CheckpointError, match=r"encoder\.mid\.attn_1\.q\.weight.*\(64, 64, 1, 1\)"):
        encoder.load_taming_state_dict(missing)
    wrong_shape = {**state, "quantize.embedding.weight": torch.zeros(16, 8)}
    with pytest.raises(CheckpointError, match=r"quantize\.embedding\.weight.*\(16, 8\).*\(32, 8\)"):
        encoder.load_taming_state_dict(wrong_shape)
    unexpected = {**state, "model.encoder.conv_in.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"model\.encoder\.conv_in\.weight"):
        encoder.load_taming_state_dict(unexpected)

    path = tmp_path / "missing.pth"
    torch.save(missing, path)
    with pytest.raises(CheckpointError, match=r"missing\.pth.*encoder\.mid\.attn_1\.q\.weight"):
        load_vqgan_encoder(path, **SMALL)
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_state_dict)
    with pytest.raises(CheckpointError, match="expected a mapping of weights"):
        load_vqgan_encoder(not_a_state_dict, **SMALL)


# --------------------------------------------------------------------------- trainable autoencoder

TINY = dict(
    embed_dim=8, n_embed=16,
    ddconfig=dict(in_channels=3, out_ch=3, ch=32, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8],
                  resolution=16, z_channels=8, dropout=0.0, double_z=False),
)  # fmt: skip


def structured_images(count: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth colour ramps with a random direction and offset per image, in [-1, 1]: (count, 3, size, size)."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-1, 1, size)
    direction = torch.rand(count, 3, 2, 1, 1, generator=generator) * 2 - 1
    offset = torch.rand(count, 3, 1, 1, generator=generator) - 0.5
    image = direction[:, :, 0] * ramp.view(1, 1, size, 1) + direction[:, :, 1] * ramp.view(1, 1, 1, size) + offset
    return image.clamp(-1, 1)


def test_autoencoder_encoder_part_loads_into_vqgan_encoder() -> None:
    torch.manual_seed(0)
    autoencoder = VQAutoencoder(**SMALL).eval()
    x = images()
    encoder = VQGANEncoder(**SMALL).eval()
    encoder.load_state_dict(autoencoder.encoder_state_dict(), strict=True)
    also = VQGANEncoder(**SMALL)
    also.load_taming_state_dict(autoencoder.state_dict())  # decoder and post_quant_conv are skipped
    with torch.no_grad():
        for ours, theirs in zip(encoder.features(x), autoencoder.encoder.forward_with_features(x)[0]):
            assert torch.equal(ours, theirs)
        assert torch.equal(encoder.encode(x), autoencoder.encode(x))
        assert torch.equal(also.encode(x), autoencoder.encode(x))
        # the argmax of the soft assignment is the quantizer's hard choice
        _, _, indices = autoencoder(x)
        assert torch.equal(encoder.code_distribution(x).argmax(dim=1), indices.reshape(-1))


def test_autoencoder_training_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    model = VQAutoencoder(**TINY)
    x = structured_images()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        reconstruction, codebook_loss, indices = model(x)
        terms = autoencoder_loss(x, reconstruction, codebook_loss)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["loss"].item())
    assert set(terms) == {"loss", "reconstruction", "codebook"}
    assert reconstruction.shape == x.shape and indices.shape == (4, 8, 8) and int(indices.max()) < 16
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses


def test_straight_through_gradient_and_quantizer_loss_terms() -> None:
    torch.manual_seed(1)
    model = VQAutoencoder(**TINY)
    x = structured_images()
    reconstruction, codebook_loss, _ = model(x)
    (reconstruction - x).abs().mean().backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0  # through the quantizer by straight-through
    latent = model.encode(x).detach().requires_grad_(True)
    quantised, loss, indices = model.quantize(latent)
    nearest = model.quantize.embedding.weight[indices].permute(0, 3, 1, 2)
    difference = (nearest.detach() - latent.detach()).square().mean()
    torch.testing.assert_close(loss, difference * 1.25)  # codebook + 0.25 * commitment, equal in value
    torch.testing.assert_close(quantised, nearest)
    loss.backward()
    torch.testing.assert_close(latent.grad, 0.25 * 2 * (latent - nearest).detach() / latent.numel())


def test_code_usage_and_dead_code_restart() -> None:
    uniform = code_usage(torch.arange(16).repeat(3), 16)
    collapsed = code_usage(torch.full((40,), 5), 16)
    torch.testing.assert_close(uniform["perplexity"], torch.tensor(16.0))
    torch.testing.assert_close(collapsed["perplexity"], torch.tensor(1.0))
    assert uniform["used_fraction"] == 1.0 and collapsed["used_fraction"] == 1 / 16

    model = VQAutoencoder(**TINY)
    before = model.quantize.embedding.weight.detach().clone()
    latents = torch.randn(2, 8, 4, 4)
    restarted = model.quantize.restart_unused_codes(collapsed["counts"], latents, torch.Generator().manual_seed(0))
    after = model.quantize.embedding.weight.detach()
    rows = latents.permute(0, 2, 3, 1).reshape(-1, 8)
    assert restarted == 15
    assert torch.equal(after[5], before[5])
    for code in [index for index in range(16) if index != 5]:
        assert (after[code] - rows).abs().sum(dim=1).min() == 0  # now one of the encoder outputs
    with pytest.raises(ValueError, match=r"counts must have shape \(16,\)"):
        model.quantize.restart_unused_codes(torch.zeros(4), latents)


def test_adversarial_term_with_adaptive_weight() -> None:
    torch.manual_seed(2)
    model = VQAutoencoder(**TINY)
    discriminator = NLayerDiscriminator(input_channels=3, base_channels=8, num_layers=2)
    x = structured_images()
    reconstruction, codebook_loss, _ = model(x)
    assert adversarial_factor(step=9, start_step=10) == 0.0 and adversarial_factor(step=10, start_step=10) == 1.0
    terms = autoencoder_loss(
        x, reconstruction, codebook_loss, fake_logits=discriminator(reconstruction), last_layer=model.last_layer
    )
    assert set(terms) == {"loss", "reconstruction", "codebook", "generator", "adaptive_weight"}
    expected = terms["reconstruction"] + terms["codebook"] + terms["adaptive_weight"] * terms["generator"]
    torch.testing.assert_close(terms["loss"], expected)
    assert 0 < terms["adaptive_weight"].item() < 1e4 and not terms["adaptive_weight"].requires_grad
    terms["loss"].backward()
    assert model.decoder.conv_out.weight.grad is not None
    confident = discriminator_hinge_loss(torch.full((2,), 2.0), torch.full((2,), -2.0))
    torch.testing.assert_close(confident, torch.tensor(0.0))
    torch.testing.assert_close(discriminator_hinge_loss(torch.zeros(2), torch.zeros(2)), torch.tensor(1.0))
    with pytest.raises(ValueError, match="last_layer"):
        autoencoder_loss(x, reconstruction, codebook_loss, fake_logits=torch.zeros(1))
