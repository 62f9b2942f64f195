"""Files for other tools and teachers from other tools, checked without spandrel installed (CI's default
environment): RCAN's official layout both ways, the spandrel wrapper's padding and precision with a stand-in
model, the config rules of ``backbone: spandrel`` and of a teacher given only by its checkpoint, and the errors
that say what to install. tests/test_spandrel.py runs the same paths with spandrel itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_edsr, tiny_run_config, tiny_swinir
from torch import nn

import dckd
from dckd.apps.cli import main
from dckd.config.schema import config_from_dict
from dckd.engine.checkpoints import save_weights
from dckd.engine.loop import train
from dckd.engine.setup import build_network, resolve_network_sources
from dckd.errors import CheckpointError, ConfigError
from dckd.files.weights import save_safetensors_atomic
from dckd.models.backbones import BACKBONES, official_state_dict, rcan
from dckd.models.backbones.common import drop_mean_shift, mean_shift_state_dict
from dckd.models.padding import pad_bottom_right
from dckd.models.spandrel_network import SpandrelNetwork, padding_for


def tiny_rcan(**overrides) -> nn.Module:
    options = dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_group=2, num_block=3, squeeze_factor=4, upscale=2)
    torch.manual_seed(0)
    network = BACKBONES["rcan"](**{**options, **overrides}).eval()
    with torch.no_grad():  # no parameter left at a value a wrong mapping could also produce
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return network


# ---- RCAN: the official EDSR-PyTorch layout, written and read back ----------------------------------------
@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_rcan_official_layout_round_trips_both_ways(upscale) -> None:
    network = tiny_rcan(upscale=upscale)
    ours = network.state_dict()
    official = official_state_dict("rcan", network)
    assert {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias", "head.0.weight"} <= set(official)
    assert "body.0.body.0.body.3.conv_du.0.weight" in official and "body.2.weight" in official  # conv_after_body
    assert "body.1.body.3.weight" in official  # the group conv after num_block=3 RCABs
    assert not any(key.startswith(("conv_first", "upsample", "conv_last")) for key in official)
    # BasicSR -> official -> BasicSR: every tensor back under its own name
    back = rcan.convert_edsr_pytorch_state_dict(official, num_group=2, num_block=3)
    assert set(back) == set(ours) and all(torch.equal(back[key], ours[key]) for key in ours)
    # official -> BasicSR -> official: the same file again
    again = rcan.to_edsr_pytorch_state_dict(back, num_group=2, num_block=3)
    assert list(again) == list(official) and all(torch.equal(again[key], official[key]) for key in official)
    # and the network read back from the official file computes the same function
    rebuilt = BACKBONES["rcan"](3, 3, num_feat=16, num_group=2, num_block=3, squeeze_factor=4, upscale=upscale)
    rebuilt.load_state_dict(rcan.convert_edsr_pytorch_state_dict(official, 2, 3), strict=True)
    image = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(image), network(image))


def test_an_official_rcan_file_loads_back_into_dckd_with_its_own_mean(tmp_path) -> None:
    network = tiny_rcan(rgb_mean=(0.5, 0.4, 0.3))
    path = tmp_path / "rcan_official.safetensors"
    save_safetensors_atomic(official_state_dict("rcan", network), path)
    options = dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_group=2, num_block=3, squeeze_factor=4, upscale=2)
    loaded = dckd.load_network(path, backbone="rcan", options={**options, "rgb_mean": [0.5, 0.4, 0.3]}, scale=2)
    image = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(image), network(image))
    with pytest.raises(
        CheckpointError, match=r"rcan_official.safetensors for .*does not match the expected mean shift"
    ):
        dckd.load_network(path, backbone="rcan", options=options, scale=2)


def test_the_mean_shift_written_is_the_one_read() -> None:
    for img_range, mean in ((255.0, (0.4488, 0.4371, 0.4040)), (1.0, (0.5, 0.5, 0.5))):
        written = mean_shift_state_dict(img_range, mean)
        assert written["sub_mean.bias"].tolist() == pytest.approx([-img_range * value for value in mean], rel=1e-6)
        head = torch.ones(2)
        kept = drop_mean_shift({**written, "head.0.weight": head}, img_range, mean)
        assert list(kept) == ["head.0.weight"] and kept["head.0.weight"] is head
        with pytest.raises(ValueError, match="does not match the expected mean shift"):
            drop_mean_shift(written, 2 * img_range, mean)
    with pytest.raises(ValueError, match="one value per RGB channel"):
        mean_shift_state_dict(255.0, (0.5,))


def test_rcan_conversion_refuses_what_it_cannot_map() -> None:
    network = tiny_rcan()
    ours = network.state_dict()
    with pytest.raises(KeyError, match="extra.weight"):
        rcan.to_edsr_pytorch_state_dict({**ours, "extra.weight": torch.zeros(1)}, 2, 3)
    with pytest.raises(KeyError, match=r"body\.2\.residual_group"):  # a group beyond num_group
        rcan.to_edsr_pytorch_state_dict({**ours, "body.2.residual_group.0.rcab.0.weight": torch.zeros(1)}, 2, 3)
    with pytest.raises(KeyError, match="already an EDSR-PyTorch key"):
        rcan.to_edsr_pytorch_state_dict(official_state_dict("rcan", network), 2, 3)


def test_official_state_dict_refuses_networks_the_official_code_would_read_differently() -> None:
    with pytest.raises(ValueError, match="res_scale"):
        official_state_dict("rcan", tiny_rcan(res_scale=0.1))
    with pytest.raises(ValueError, match="img_range 1"):
        official_state_dict("rcan", tiny_rcan(img_range=1.0))
    with pytest.raises(ValueError, match="maps 1 to 1 channels"):
        official_state_dict("rcan", tiny_rcan(num_in_ch=1, num_out_ch=1, rgb_mean=(0.5,)))
    with pytest.raises(ValueError, match="has no official layout.*swinir, nafnet, restormer, rcan"):
        official_state_dict("edsr", BACKBONES["edsr"](**tiny_edsr()["options"]))
    with pytest.raises(ValueError, match="not a dckd 'rcan' network"):
        official_state_dict("rcan", BACKBONES["edsr"](**tiny_edsr()["options"]))


def test_swinir_and_nafnet_are_written_in_their_own_layout() -> None:
    swinir = BACKBONES["swinir"](**tiny_swinir()["options"])
    nafnet = BACKBONES["nafnet"](img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    for backbone, network in (("swinir", swinir), ("nafnet", nafnet)):
        written = official_state_dict(backbone, network)
        ours = network.state_dict()
        assert list(written) == list(ours) and all(torch.equal(written[key], ours[key]) for key in ours)


# ---- SpandrelNetwork with a stand-in model (no spandrel needed) --------------------------------------------
class ScaleByPixelShuffle(nn.Module):
    """x2 SR that needs sides of a multiple of 4 (like a model with two downsampling levels) and, like spandrel's
    RCAN, multiplies its input in place."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise RuntimeError(f"shape {tuple(x.shape)} is not a multiple of 4")
        x *= 1.0  # in place, as spandrel's RCAN does with rgb_range
        x.add_(0.0)
        return self.shuffle(self.conv(x))


def stand_in(**requirements) -> SpandrelNetwork:
    torch.manual_seed(0)
    return SpandrelNetwork(
        ScaleByPixelShuffle(), lambda model, image: model(image), "StandIn", 2, **requirements
    ).eval()


def test_padding_for_meets_minimum_multiple_and_square() -> None:
    assert padding_for(13, 21, 0, 1, False) == (0, 0)
    assert padding_for(13, 21, 16, 1, False) == (3, 0)
    assert padding_for(13, 21, 0, 8, False) == (3, 3)
    assert padding_for(13, 21, 16, 8, True) == (11, 3)
    assert padding_for(40, 21, 32, 16, False) == (8, 11)


def test_pad_bottom_right_reflects_then_replicates() -> None:
    image = torch.arange(3.0).view(1, 1, 1, 3)
    padded = pad_bottom_right(image, 0, 4)  # reflect reaches 2 pixels, replication the rest
    assert padded.flatten().tolist() == [0, 1, 2, 1, 0, 0, 0]
    assert pad_bottom_right(image, 0, 0) is image
    tall = pad_bottom_right(torch.arange(4.0).view(1, 1, 4, 1), 2, 0)
    assert tall.flatten().tolist() == [0, 1, 2, 3, 2, 1]


def test_spandrel_network_pads_crops_and_never_changes_its_input() -> None:
    network = stand_in(multiple_of=4, minimum_size=8)
    image = torch.rand(2, 3, 5, 7)  # a batch of two, odd sides under the minimum
    kept = image.clone()
    with torch.no_grad():
        output = network(image)
    assert output.shape == (2, 3, 10, 14)
    assert torch.equal(image, kept)
    with torch.no_grad():  # the crop of the model's output on the padded image
        expected = network.model(pad_bottom_right(image.clone(), 3, 1))[..., :10, :14]
    assert torch.allclose(output, expected, rtol=0, atol=1e-6)
    aligned = torch.rand(1, 3, 8, 8)  # no padding needed: the model still gets a copy
    kept = aligned.clone()
    with torch.no_grad():
        network(aligned)
    assert torch.equal(aligned, kept)
    with pytest.raises(RuntimeError, match="not a multiple of 4"):
        network.model(torch.rand(1, 3, 5, 7))  # the bare model: what the padding is for


class OneImageOnly(nn.Module):
    """A model whose result depends on the rest of the batch (as a routing across a batch would)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2) * x.mean()


def test_a_batch_runs_one_image_at_a_time_when_the_model_mixes_images() -> None:
    mixing = SpandrelNetwork(OneImageOnly(), lambda model, image: model(image), "Mixing", 2).eval()
    assert mixing.check_batches() is False
    images = torch.rand(3, 3, 5, 6)
    together = mixing(images)
    assert all(torch.equal(together[index : index + 1], mixing(images[index : index + 1])) for index in range(3))
    assert "one image at a time" in mixing.summary()
    plain = stand_in(multiple_of=4)
    assert plain.check_batches() is True and "one image at a time" not in plain.summary()


def test_spandrel_network_runs_float32_under_an_unsupported_autocast() -> None:
    image = torch.rand(1, 3, 8, 8)
    supported, unsupported = stand_in(), stand_in(supports_bfloat16=False)
    with torch.no_grad():
        reference = supported(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = supported(image)
            slow = unsupported(image)
    assert fast.dtype == torch.bfloat16  # autocast applies where the architecture supports it
    assert slow.dtype == torch.float32 and torch.equal(slow, reference)
    assert "bfloat16 is not supported by StandIn: the teacher runs in float32" in unsupported.summary("bfloat16")
    assert "not supported" not in supported.summary("bfloat16")


# ---- configs -------------------------------------------------------------------------------------------------
def test_backbone_spandrel_options_are_checked(tmp_path, image_folder) -> None:
    base = tiny_run_config(tmp_path, image_folder, "logits")
    cases = [
        ({"backbone": "spandrel"}, "backbone: spandrel detects the architecture from a weights file"),
        ({"backbone": "spandrel", "checkpoint": "x.pth", "options": {"scale": 2}}, "spandrel reads the architecture"),
        ({"backbone": "spandrel", "preset": "swinir_s_x2", "checkpoint": "x.pth"}, "contradicts backbone: spandrel"),
        ({"options": {"num_feat": 8}, "checkpoint": "x.pth"}, "give the backbone"),
        ({}, "give a preset or a backbone"),
    ]
    for teacher, message in cases:
        with pytest.raises(ConfigError, match=message):
            config_from_dict({**base, "teacher": teacher})
    with pytest.raises(ConfigError, match="spandrel loads frozen teachers only"):
        config_from_dict({**base, "student": {"backbone": "spandrel", "checkpoint": "x.pth"}})


def test_a_teacher_given_by_a_dckd_weights_file_alone_uses_its_record(tmp_path, image_folder) -> None:
    torch.manual_seed(1)
    teacher_spec = tiny_edsr(features=12, blocks=2)
    teacher = BACKBONES["edsr"](**teacher_spec["options"])
    path = save_weights(tmp_path / "teacher.pth", teacher.state_dict(), None, {**teacher_spec, "scale": 2})
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    raw["teacher"] = {"checkpoint": str(path)}
    config = resolve_network_sources(config_from_dict(raw))
    assert (config.teacher.backbone, config.teacher.options) == ("edsr", teacher_spec["options"])
    built = build_network(config.teacher, "teacher")
    assert all(torch.equal(built.state_dict()[key], value) for key, value in teacher.state_dict().items())
    run_dir = train(config_from_dict(raw))  # the engine resolves it too, and records what it used
    assert "backbone: edsr" in (run_dir / "config.yaml").read_text()
    # a record of another scale is found by the config check
    raw["data"] = {**raw["data"], "scale": 3}
    with pytest.raises(ConfigError, match="data.scale is 3"):
        resolve_network_sources(config_from_dict(raw))


def test_a_file_without_record_needs_spandrel_and_says_what_to_install(tmp_path, image_folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if not installed, also where it is
    path = tmp_path / "community_x2.pth"
    torch.save({"conv_first.weight": torch.zeros(4, 3, 3, 3)}, path)
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    for teacher in ({"checkpoint": str(path)}, {"backbone": "spandrel", "checkpoint": str(path)}):
        raw["teacher"] = teacher
        with pytest.raises(ConfigError) as caught:
            train(config_from_dict(raw))
        message = str(caught.value)
        assert str(path) in message and "pip install spandrel" in message
        assert "spandrel 0.4.2 with torch 2.14.1 and torchvision 0.29.1" in message
    assert "dckd lets spandrel detect its architecture" in message or "letting spandrel detect" in message
    assert not (tmp_path / "runs").exists()  # nothing written
    # the command line: one line, exit status 2
    config_path = tmp_path / "config.yml"
    raw["teacher"] = {"checkpoint": str(path)}
    config_path.write_text(__import__("yaml").safe_dump(raw))
    assert main(["train", str(config_path)]) == 2
    error = capsys.readouterr().err
    assert "does not say which network it holds" in error and "pip install spandrel" in error
    assert not (tmp_path / "runs").exists()
    # a student file without record is never sent to spandrel
    raw["student"] = {"checkpoint": str(path)}
    with pytest.raises(ConfigError, match=r"student\.checkpoint .* set student\.preset or student\.backbone"):
        resolve_network_sources(config_from_dict(raw))


def test_a_spandrel_that_does_not_import_is_named_with_its_error(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "fake_site"
    fake.mkdir()
    (fake / "spandrel.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.delitem(sys.modules, "spandrel", raising=False)
    monkeypatch.syspath_prepend(str(fake))
    path = tmp_path / "community.pth"
    torch.save({"head.weight": torch.zeros(1)}, path)
    spec = config_from_dict(
        {
            "student": tiny_edsr(),
            "method": "logits",
            "data": {"scale": 2},
            "teacher": {"backbone": "spandrel", "checkpoint": str(path)},
        }
    ).teacher
    with pytest.raises(ConfigError) as caught:
        build_network(spec, "teacher")
    message = str(caught.value)
    assert "installed but does not import (RuntimeError: operator torchvision::nms does not exist)" in message
    assert f"torch here is {torch.__version__}" in message and "tools/spandrel_env.sh" in message


def test_importing_dckd_imports_neither_spandrel_nor_torchvision() -> None:
    code = (
        "import sys, dckd, dckd.api, dckd.apps.cli, dckd.engine.loop, dckd.models.spandrel_network; "
        "print([name for name in ('spandrel', 'torchvision') if name in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_teacher_file_without_record_reaches_the_engine_from_the_api(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "spandrel", None)
    path = tmp_path / "community.safetensors"
    from safetensors.torch import save_file

    save_file({"head.weight": torch.zeros(2)}, str(path))
    student = BACKBONES["edsr"](**tiny_edsr()["options"])
    with pytest.raises(ConfigError, match=r"teacher\.checkpoint .*community\.safetensors.*pip install spandrel"):
        dckd.distill(student, path, "bundled", method="logits", total_iters=1, output_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_the_spandrel_environment_script_is_valid_bash() -> None:
    script = Path(__file__).resolve().parents[1] / "tools" / "spandrel_env.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
