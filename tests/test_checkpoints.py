"""Official checkpoints: every manifest's exact keys load strictly into its preset, in every wrapper
people use; a missing or extra key is an error naming it; files are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dckd.config.schema import NetworkConfig, VQGANConfig
from dckd.engine.setup import build_network, build_vqgan
from dckd.errors import CheckpointError
from dckd.eval.selfcheck import DEFAULT_DIR
from dckd.files.weights import atomic_write, read_checkpoint, save_torch_atomic

MANIFESTS = json.loads((DEFAULT_DIR / "manifests.json").read_text())
PRESET_OF_MANIFEST = {
    "SwinIR-M_x2 (teacher, classical SR)": "swinir_m_x2",
    "SwinIR-S_x2 (DCKD student)": "swinir_s_x2",
    "SwinIR-M_x3 (teacher, classical SR)": "swinir_m_x3",
    "SwinIR-S_x3 (DCKD student)": "swinir_s_x3",
    "SwinIR-M_x4 (teacher, classical SR)": "swinir_m_x4",
    "SwinIR-S_x4 (DCKD student)": "swinir_s_x4",
    "SwinIR-light_x4 (official lightweight)": "swinir_light_x4",
    "RCAN_x4 (teacher, BasicSR key layout)": "rcan_x4",
    "NAFNet-GoPro-width32 (teacher, deblurring)": "nafnet_gopro_width32",
    "NAFNet width16 (student; block split inferred from the paper's 2.7M count)": "nafnet_width16",
    "Restormer (teacher, deblurring/deraining)": "restormer",
    "Restormer dim24 (student; block split inferred from the paper's 3.8M count)": "restormer_dim24",
}
VQGAN_MANIFEST = "VQGAN_f16_n1024 (encoder, quant_conv and codebook as used by DCKD)"
WRAPPERS = ("plain.pth", "params_ema.pth", "params.pth", "state_dict.ckpt", "model_module.pt", "weights.safetensors")


def manifest_tensors(name: str) -> dict[str, torch.Tensor]:
    """A state_dict with exactly the manifest's keys and shapes (values do not matter for loading; integer
    buffers such as SwinIR's relative_position_index are integers, as in the official files)."""
    generator = torch.Generator().manual_seed(0)
    return {
        key: torch.zeros(shape, dtype=torch.int64)
        if key.endswith("relative_position_index")
        else torch.randn(shape, generator=generator).half()
        if len(shape)
        else torch.tensor(0.5)
        for key, shape in MANIFESTS[name]["state_dict"].items()
    }


def write(state: dict[str, torch.Tensor], path: Path) -> Path:
    wrapper = path.name
    if wrapper == "weights.safetensors":
        save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    elif wrapper == "plain.pth":
        torch.save(state, path)
    elif wrapper == "params_ema.pth":
        torch.save({"params_ema": state, "params": {key: value * 0 for key, value in state.items()}}, path)
    elif wrapper == "params.pth":
        torch.save({"params": state}, path)
    elif wrapper == "state_dict.ckpt":
        torch.save({"state_dict": state, "epoch": 3, "global_step": 1000, "optimizer_states": []}, path)
    elif wrapper == "model_module.pt":
        torch.save({"model": {f"module.{key}": value for key, value in state.items()}}, path)
    return path


def test_presets_equal_the_manifests() -> None:
    assert set(PRESET_OF_MANIFEST) | {VQGAN_MANIFEST} == set(MANIFESTS)
    for manifest, preset in PRESET_OF_MANIFEST.items():
        with torch.device("meta"):
            network = build_network(NetworkConfig(preset=preset))
        shapes = {key: list(value.shape) for key, value in network.state_dict().items()}
        assert shapes == MANIFESTS[manifest]["state_dict"], preset


@pytest.mark.parametrize("index", range(len(PRESET_OF_MANIFEST)))
def test_every_manifest_loads_strictly_into_its_preset(tmp_path: Path, index: int) -> None:
    manifest, preset = list(PRESET_OF_MANIFEST.items())[index]
    state = manifest_tensors(manifest)
    path = write(state, tmp_path / WRAPPERS[index % len(WRAPPERS)])  # each manifest in another wrapper
    network = build_network(NetworkConfig(preset=preset, checkpoint=str(path)))
    key = next(key for key in state if key.endswith("weight"))
    expected = state[key].float()
    if path.name == "params_ema.pth":  # the EMA entry wins over params
        assert network.state_dict()[key].abs().sum() > 0
    torch.testing.assert_close(network.state_dict()[key], expected)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_every_wrapper_loads_and_mismatches_name_the_key(tmp_path: Path, wrapper: str) -> None:
    manifest = "SwinIR-S_x4 (DCKD student)"
    state = manifest_tensors(manifest)
    network = build_network(NetworkConfig(preset="swinir_s_x4", checkpoint=str(write(state, tmp_path / wrapper))))
    torch.testing.assert_close(network.state_dict()["conv_first.weight"], state["conv_first.weight"].float())

    missing = {key: value for key, value in state.items() if key != "layers.2.conv.weight"}
    (tmp_path / "missing").mkdir()
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): layers\.2\.conv\.weight") as error:
        build_network(
            NetworkConfig(preset="swinir_s_x4", checkpoint=str(write(missing, tmp_path / "missing" / wrapper)))
        )
    assert "SwinIR" in str(error.value) and "swinir" in str(error.value)
    extra = {**state, "layers.9.conv.weight": torch.zeros(3)}
    (tmp_path / "extra").mkdir()
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): layers\.9\.conv\.weight"):
        build_network(NetworkConfig(preset="swinir_s_x4", checkpoint=str(write(extra, tmp_path / "extra" / wrapper))))


def test_wrong_shape_and_wrong_entry_are_named(tmp_path: Path) -> None:
    state = manifest_tensors("SwinIR-S_x4 (DCKD student)")
    wrong = {**state, "conv_first.weight": torch.zeros(60, 3, 5, 5)}
    with pytest.raises(CheckpointError, match=r"wrong shapes .*conv_first\.weight \(60, 3, 5, 5\) != \(60, 3, 3, 3\)"):
        build_network(NetworkConfig(preset="swinir_s_x4", checkpoint=str(write(wrong, tmp_path / "plain.pth"))))
    path = write(state, tmp_path / "params.pth")
    with pytest.raises(CheckpointError, match=r"no entry 'params_ema'; top-level entries: params"):
        build_network(NetworkConfig(preset="swinir_s_x4", checkpoint=str(path), checkpoint_key="params_ema"))
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(tmp_path / "empty.pth")


def test_official_rcan_layout_loads_through_the_documented_conversion(tmp_path: Path) -> None:
    """An RCAN checkpoint with EDSR-PyTorch names (head.0, body.N.body.M..., tail.0.0, sub_mean) loads."""
    options = {"num_feat": 8, "num_group": 2, "num_block": 2, "squeeze_factor": 4, "upscale": 2}
    reference = build_network(NetworkConfig(backbone="rcan", options={"num_in_ch": 3, "num_out_ch": 3, **options}))
    official = {}
    for key, value in reference.state_dict().items():
        name = key.replace("conv_first", "head.0").replace("conv_last", "tail.1").replace("conv_after_body", "body.2")
        name = (
            name.replace("upsample.", "tail.0.")
            .replace(".residual_group.", ".body.")
            .replace(".rcab.3.attention.1", ".body.3.conv_du.0")
        )
        name = name.replace(".rcab.3.attention.3", ".body.3.conv_du.2").replace(".rcab.", ".body.")
        if key.startswith("body.") and ".conv." in key:
            name = key.replace(".conv.", f".body.{options['num_block']}.")
        official[name] = value
    mean = torch.tensor([0.4488, 0.4371, 0.4040]) * 255
    official.update(
        {
            "sub_mean.weight": torch.eye(3).view(3, 3, 1, 1),
            "sub_mean.bias": -mean,
            "add_mean.weight": torch.eye(3).view(3, 3, 1, 1),
            "add_mean.bias": mean,
        }
    )
    path = tmp_path / "RCAN_BIX2.pt"
    torch.save(official, path)
    loaded = build_network(
        NetworkConfig(backbone="rcan", options={"num_in_ch": 3, "num_out_ch": 3, **options}, checkpoint=str(path))
    )
    image = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image), reference(image))


def test_vqgan_manifest_loads_from_a_lightning_checkpoint_with_extra_weights(tmp_path: Path) -> None:
    state = manifest_tensors(VQGAN_MANIFEST)
    state.update(
        {
            "decoder.conv_in.weight": torch.zeros(1),
            "loss.discriminator.main.0.weight": torch.zeros(1),
            "post_quant_conv.weight": torch.zeros(1),
        }
    )
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "global_step": 5}, path)
    encoder = build_vqgan(VQGANConfig(checkpoint=str(path)))
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    del state["quant_conv.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"quant_conv\.weight"):
        build_vqgan(VQGANConfig(checkpoint=str(path)))


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "file.pth"
    save_torch_atomic({"a": torch.ones(1)}, path)

    def failing(temporary: Path) -> None:
        temporary.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing)
    assert torch.load(path, weights_only=True)["a"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file.pth"]


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        path = save_torch_atomic({"a": torch.ones(1)}, tmp_path / "weights.pth")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
