"""dckd and spandrel (the model loader of chaiNNer and ComfyUI), both ways. Runs only where spandrel imports: CI's
default environment lacks it (torchvision must match torch); `bash tools/spandrel_env.sh` makes an environment
where it does, and docs/interop.md records the last run (versions, date).

1. Students: SwinIR and NAFNet ``weights.pth`` and RCAN in the official layout (``official_state_dict``) are
   detected by spandrel and compute what dckd computes.
2. Teachers: ``teacher: {backbone: spandrel, checkpoint: FILE}`` and ``teacher: {checkpoint: FILE}`` with random
   weights of spandrel architectures dckd does not implement (ESRGAN, SPAN, HAT, ...) train a student; the scale
   is checked, size requirements are met by padding, precision support is respected, the file is read by dckd's
   safe reader only.
"""

from __future__ import annotations

import os

import pytest
import torch
import yaml
from conftest import tiny_edsr, tiny_run_config, tiny_swinir

spandrel = pytest.importorskip("spandrel", reason="spandrel is not installed (see tools/spandrel_env.sh)")

from spandrel.architectures.DRCT import DRCT  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.HAT import HAT  # noqa: E402
from spandrel.architectures.SeemoRe import SeemoRe  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402

from dckd.apps.cli import main  # noqa: E402
from dckd.config.schema import NetworkConfig, config_from_dict  # noqa: E402
from dckd.engine.checkpoints import save_weights  # noqa: E402
from dckd.engine.loop import train  # noqa: E402
from dckd.engine.setup import build_network, resolve_network_sources  # noqa: E402
from dckd.errors import CheckpointError, ConfigError  # noqa: E402
from dckd.files.weights import save_safetensors_atomic  # noqa: E402
from dckd.models.backbones import BACKBONES, official_state_dict  # noqa: E402
from dckd.models.spandrel_network import SpandrelNetwork  # noqa: E402

TOLERANCE = 1e-5
"""Largest absolute difference accepted between spandrel's and dckd's outputs, float32, images in [0, 1]."""

ARCHITECTURES = {
    # name: (constructor, x2 arguments); none of these is one of dckd's backbones
    "ESRGAN": (ESRGAN, dict(num_filters=16, num_blocks=2, scale=2)),
    "SPAN": (SPAN, dict(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2)),
    "HAT": (HAT, dict(img_size=32, embed_dim=30, depths=(2, 2), num_heads=(2, 2), window_size=8, upscale=2)),
    "DRCT": (
        DRCT,
        dict(
            img_size=32,
            embed_dim=24,
            depths=(2, 2),
            num_heads=(2, 2),
            window_size=8,
            upscale=2,
            gc=8,
            upsampler="pixelshuffle",
        ),
    ),
    "SeemoRe": (SeemoRe, dict(scale=2, num_experts=3, num_layers=2, embedding_dim=16)),
}


def random_weights(network: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state_dict of ``network`` after moving every parameter off its initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            spread = parameter.std().item() if parameter.numel() > 1 else 0.0
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * (0.1 * spread if spread > 0 else 0.01))
    return {key: value.clone() for key, value in network.state_dict().items()}


def community_file(tmp_path, name: str, **overrides) -> str:
    constructor, arguments = ARCHITECTURES[name]
    torch.manual_seed(0)
    path = tmp_path / f"{name.lower()}.pth"
    torch.save(random_weights(constructor(**{**arguments, **overrides})), path)
    return str(path)


def largest_difference(first: torch.Tensor, second: torch.Tensor) -> float:
    return (first.float() - second.float()).abs().max().item()


# ---- 1. students in spandrel -------------------------------------------------------------------------------
def saved_student(tmp_path, backbone: str, options: dict) -> tuple[torch.nn.Module, str]:
    """A dckd network saved as dckd saves a run's result (params, params_ema, network record)."""
    torch.manual_seed(0)
    student = BACKBONES[backbone](**options).eval()
    ema = BACKBONES[backbone](**options).eval()
    random_weights(student, 1)
    random_weights(ema, 2)
    path = save_weights(tmp_path / f"{backbone}.pth", student.state_dict(), ema.state_dict(), {"backbone": backbone})
    return ema, str(path)


def same_output(descriptor, network: torch.nn.Module, sizes) -> float:
    worst = 0.0
    descriptor.eval()  # spandrel returns its model in training mode (SwinIR's drop-path would be active)
    for height, width in sizes:
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        with torch.no_grad():
            expected = network(image.clone())
            worst = max(worst, largest_difference(descriptor.model(image.clone()), expected))
        worst = max(worst, largest_difference(descriptor(image.clone()), expected.clamp(0, 1)))
    return worst


def test_a_swinir_student_weights_file_loads_in_spandrel_with_the_same_output(tmp_path) -> None:
    options = {**tiny_swinir(scale=2)["options"], "window_size": 8}
    ema, path = saved_student(tmp_path, "swinir", options)
    descriptor = spandrel.ModelLoader().load_from_file(path)
    assert descriptor.architecture.id == "SwinIR" and descriptor.scale == 2
    assert same_output(descriptor, ema, [(16, 24), (19, 27)]) <= TOLERANCE  # spandrel reads params_ema


def test_a_nafnet_student_weights_file_loads_in_spandrel_with_the_same_output(tmp_path) -> None:
    options = dict(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    ema, path = saved_student(tmp_path, "nafnet", options)
    descriptor = spandrel.ModelLoader().load_from_file(path)
    assert descriptor.architecture.id == "NAFNet" and descriptor.scale == 1
    assert same_output(descriptor, ema, [(16, 24), (13, 18)]) <= TOLERANCE


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_an_rcan_student_loads_in_spandrel_in_the_official_layout(tmp_path, suffix) -> None:
    options = dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=3)
    ema, path = saved_student(tmp_path, "rcan", options)
    with pytest.raises(spandrel.UnsupportedModelError):  # BasicSR's RCAN keys: why the official layout is needed
        spandrel.ModelLoader().load_from_file(path)
    official = tmp_path / f"rcan_official{suffix}"
    if suffix == ".safetensors":
        save_safetensors_atomic(official_state_dict("rcan", ema), official)
    else:
        torch.save(official_state_dict("rcan", ema), official)
    descriptor = spandrel.ModelLoader().load_from_file(official)
    assert descriptor.architecture.id == "RCAN" and descriptor.scale == 3
    assert same_output(descriptor, ema, [(12, 16), (11, 13)]) <= TOLERANCE


# ---- 2. spandrel's architectures as teachers -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["ESRGAN", "SPAN", "HAT"])
def test_a_community_teacher_trains_a_student(tmp_path, image_folder, name, capsys) -> None:
    raw = tiny_run_config(tmp_path, image_folder, "logits")  # x2, patches of 12 pixels (HAT pads to 16)
    raw["teacher"] = {"checkpoint": community_file(tmp_path, name)}  # no backbone: spandrel detects it
    run_dir = train(config_from_dict(raw))
    assert (run_dir / "weights.pth").is_file()
    assert f"teacher: {name} (spandrel {spandrel.__version__}) from teacher checkpoint" in capsys.readouterr().err
    assert "backbone: spandrel" in (run_dir / "config.yaml").read_text()  # what was used, recorded
    log = [yaml.safe_load(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert any("kd" in record and record["kd"] > 0 for record in log)  # the teacher's output was distilled


def test_an_architecture_that_takes_one_image_at_a_time_gets_one_image_at_a_time(tmp_path, image_folder, capsys):
    # spandrel's SeemoRe fails on a batch of two (its call takes (1, C, H, W)); batch 4 trains all the same
    path = community_file(tmp_path, "SeemoRe")
    teacher = build_network(NetworkConfig(backbone="spandrel", checkpoint=path), "teacher", 2)
    assert not teacher.batched
    with pytest.raises(RuntimeError):
        teacher.run(torch.rand(2, 3, 16, 16), batched=True)
    image = torch.rand(3, 3, 16, 20)
    with torch.no_grad():
        together = teacher(image)
        for index in range(3):
            assert torch.equal(together[index : index + 1], teacher(image[index : index + 1]))
    spand = build_network(NetworkConfig(backbone="spandrel", checkpoint=community_file(tmp_path, "SPAN")), "t", 2)
    assert spand.batched  # most architectures take the batch in one call
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    raw["teacher"] = {"checkpoint": path}
    assert (train(config_from_dict(raw)) / "weights.pth").is_file()
    assert "one image at a time" in capsys.readouterr().err


def test_backbone_spandrel_and_no_backbone_build_the_same_teacher(tmp_path) -> None:
    path = community_file(tmp_path, "SPAN")
    config = config_from_dict(
        {"student": tiny_edsr(), "method": "logits", "data": {"scale": 2}, "teacher": {"checkpoint": path}}
    )
    implicit = build_network(resolve_network_sources(config).teacher, "teacher", 2)
    explicit = build_network(NetworkConfig(backbone="spandrel", checkpoint=path), "teacher", 2)
    image = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(implicit(image), explicit(image))


def test_a_teacher_of_another_scale_is_a_clear_error_before_anything_is_written(tmp_path, image_folder, capsys):
    raw = tiny_run_config(tmp_path, image_folder, "logits")  # data.scale 2
    raw["teacher"] = {"backbone": "spandrel", "checkpoint": community_file(tmp_path, "ESRGAN", scale=4)}
    with pytest.raises(ConfigError, match=r"data.scale is 2, but the teacher in .*esrgan.pth is a x4 ESRGAN"):
        train(config_from_dict(raw))
    assert not (tmp_path / "runs" / "run").exists()
    config_path = tmp_path / "config.yml"
    config_path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config_path)]) == 2
    assert "set data.scale: 4 or give a x2 teacher" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["HAT", "DRCT"])
def test_size_requirements_are_met_by_padding_and_cropped_back(tmp_path, name) -> None:
    path = community_file(tmp_path, name)
    teacher = build_network(NetworkConfig(backbone="spandrel", checkpoint=path), "teacher", 2)
    descriptor = spandrel.ModelLoader().load_from_file(path).eval()
    requirements = descriptor.size_requirements
    assert requirements.minimum > 13 or requirements.multiple_of > 1  # 13x21 needs padding for both
    image = torch.rand(2, 3, 13, 21, generator=torch.Generator().manual_seed(0))  # a batch of two, odd sides
    kept = image.clone()
    with torch.no_grad():
        output = teacher(image)
    assert output.shape == (2, 3, 26, 42) and torch.equal(image, kept)
    for index in range(2):  # spandrel's own call, one image at a time, clamps; the teacher does not
        expected = descriptor(image[index : index + 1].clone())
        assert largest_difference(output[index : index + 1].clamp(0, 1), expected) <= TOLERANCE
    if name == "DRCT":  # the bare model cannot take the odd size at all: the padding is needed
        with pytest.raises(RuntimeError):
            descriptor.model(image[:1].clone())


def test_a_spandrel_rcan_teacher_never_changes_the_batch_it_is_given(tmp_path) -> None:
    # spandrel's RCAN multiplies its input by 255 in place; the student must still see the batch as it was
    options = dict(num_in_ch=3, num_out_ch=3, num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=2)
    torch.manual_seed(0)
    ours = BACKBONES["rcan"](**options).eval()
    random_weights(ours)
    path = tmp_path / "rcan_official.pth"
    torch.save(official_state_dict("rcan", ours), path)
    teacher = build_network(NetworkConfig(backbone="spandrel", checkpoint=str(path)), "teacher", 2)
    assert teacher.architecture == "RCAN"
    image = torch.rand(1, 3, 12, 16)
    kept = image.clone()
    with torch.no_grad():
        output = teacher(image)
        assert torch.equal(image, kept)
        assert largest_difference(output, ours(image)) <= TOLERANCE  # and dckd's RCAN computes the same


def test_a_dckd_swinir_through_spandrel_is_the_same_teacher_as_through_dckd(tmp_path) -> None:
    options = {**tiny_swinir(scale=2)["options"], "window_size": 8}
    ema, path = saved_student(tmp_path, "swinir", options)
    through_spandrel = build_network(NetworkConfig(backbone="spandrel", checkpoint=path), "teacher", 2)
    through_dckd = build_network(NetworkConfig(backbone="swinir", options=options, checkpoint=path), "teacher", 2)
    image = torch.rand(1, 3, 19, 27)
    with torch.no_grad():  # no clamp, no drop-path: the same function (dckd's record is ignored by spandrel)
        assert largest_difference(through_spandrel.eval()(image), through_dckd.eval()(image)) <= TOLERANCE


def test_precisions_the_architecture_does_not_support_run_in_float32(tmp_path) -> None:
    hat = build_network(NetworkConfig(backbone="spandrel", checkpoint=community_file(tmp_path, "HAT")), "teacher")
    esrgan = build_network(NetworkConfig(backbone="spandrel", checkpoint=community_file(tmp_path, "ESRGAN")), "t")
    assert not hat.supports_float16 and hat.supports_bfloat16 and esrgan.supports_float16  # spandrel's flags
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        reference = hat(image)
        with torch.autocast("cpu", dtype=torch.float16):
            half = hat(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            brain = esrgan(image)
    assert half.dtype == torch.float32 and torch.equal(half, reference)
    assert brain.dtype == torch.bfloat16  # supported: autocast applies
    assert "float16 is not supported by HAT: the teacher runs in float32" in hat.summary("float16")


def test_files_spandrel_cannot_use_are_named(tmp_path) -> None:
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.weight": torch.zeros(4, 3, 3, 3)}, unknown)
    with pytest.raises(CheckpointError, match=r"unknown.pth.*does not recognise these weights \(keys encoder.weight\)"):
        build_network(NetworkConfig(backbone="spandrel", checkpoint=str(unknown)), "teacher")
    gray = community_file(tmp_path, "ESRGAN", in_nc=1, out_nc=1)
    with pytest.raises(CheckpointError, match="ESRGAN .* with 1 input and 1 output channels; dckd trains on RGB"):
        build_network(NetworkConfig(backbone="spandrel", checkpoint=gray), "teacher")
    constructor, arguments = ARCHITECTURES["ESRGAN"]
    weights = random_weights(constructor(**arguments))
    weights["model.0.weight"] = weights["model.0.weight"].to(torch.int32)  # would be cast silently
    integer = tmp_path / "integer.pth"
    torch.save(weights, integer)
    with pytest.raises(CheckpointError, match=r"never cast silently: model.0.weight \(torch.int32"):
        build_network(NetworkConfig(backbone="spandrel", checkpoint=str(integer)), "teacher")


def test_a_face_restorer_is_refused_as_a_teacher(tmp_path, monkeypatch) -> None:
    # GFPGAN-sized files are too large for the suite: the descriptor spandrel returns is relabelled FaceSR
    load = spandrel.ModelLoader.load_from_state_dict

    def as_face_restorer(self, state_dict):
        found = load(self, state_dict)
        return spandrel.ImageModelDescriptor(
            found.model,
            found.model.state_dict(),
            architecture=found.architecture,
            purpose="FaceSR",
            tags=[],
            supports_half=True,
            supports_bfloat16=True,
            scale=found.scale,
            input_channels=3,
            output_channels=3,
        )

    monkeypatch.setattr(spandrel.ModelLoader, "load_from_state_dict", as_face_restorer)
    path = community_file(tmp_path, "ESRGAN")
    with pytest.raises(CheckpointError, match=r"esrgan.pth: spandrel detected ESRGAN .*, a FaceSR network"):
        build_network(NetworkConfig(backbone="spandrel", checkpoint=path), "teacher", 2)


def test_spandrel_never_opens_the_file_and_a_malicious_one_is_refused(tmp_path, monkeypatch) -> None:
    def never(*arguments, **keywords):
        raise AssertionError("spandrel read a file itself")

    monkeypatch.setattr(spandrel.ModelLoader, "load_from_file", never)
    monkeypatch.setattr(spandrel.ModelLoader, "load_state_dict_from_file", never)
    teacher = build_network(NetworkConfig(backbone="spandrel", checkpoint=community_file(tmp_path, "SPAN")), "t", 2)
    assert isinstance(teacher, SpandrelNetwork)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    evil = tmp_path / "evil.pth"
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "x": Payload()}, evil)
    for teacher_spec in ({"checkpoint": str(evil)}, {"backbone": "spandrel", "checkpoint": str(evil)}):
        config = config_from_dict(
            {"student": tiny_edsr(), "method": "logits", "data": {"scale": 2}, "teacher": teacher_spec}
        )
        with pytest.raises(CheckpointError, match="refused"):
            build_network(resolve_network_sources(config).teacher, "teacher", 2)
    assert not marker.exists()


def test_the_teacher_output_cache_takes_a_spandrel_teacher(tmp_path, image_folder) -> None:
    raw = tiny_run_config(tmp_path, image_folder, "logits")
    raw["teacher"] = {"checkpoint": community_file(tmp_path, "HAT")}
    raw["teacher_cache"] = {"enabled": True, "directory": str(tmp_path / "cache")}
    run_dir = train(config_from_dict(raw))
    assert (run_dir / "weights.pth").is_file()
    assert len(list((tmp_path / "cache").glob("*/manifest.json"))) == 1


def test_fakd_takes_the_features_of_a_spandrel_teacher_by_their_paths(tmp_path, image_folder) -> None:
    raw = tiny_run_config(tmp_path, image_folder, "fakd")
    raw["teacher"] = {"checkpoint": community_file(tmp_path, "ESRGAN")}
    with pytest.raises(ConfigError, match="no recipe layers for the teacher's backbone 'spandrel'"):
        train(config_from_dict(raw))
    # the wrapper holds spandrel's network as ``model``: its modules are model.<spandrel's names> (ESRGAN: model.model.*)
    raw["fakd"] = {
        "student_layers": ["body.0", "conv_after_body"],
        "teacher_layers": ["model.model.1.sub.0", "model.model.1"],
    }
    run_dir = train(config_from_dict(raw))
    log = [yaml.safe_load(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert any(record.get("affinity", 0) > 0 for record in log)


def test_what_docs_interop_says_about_dckd_students_in_spandrel(tmp_path) -> None:
    """The notes of docs/interop.md on students in spandrel (spandrel 0.4.2); a failure here means spandrel
    changed and the page needs another look."""
    loader = spandrel.ModelLoader()
    swinir_options = {**tiny_swinir(scale=2)["options"], "window_size": 8}
    swinir, path = saved_student(tmp_path, "swinir", swinir_options)
    descriptor = loader.load_from_file(path)
    assert descriptor.model.training  # loaded in training mode
    assert descriptor.size_requirements.minimum == 16 and not descriptor.supports_half
    with torch.no_grad():  # spandrel's call pads to 16 first: where dckd pads less (window 8: 8 pixels) they differ
        small, padded_alike = torch.rand(1, 3, 6, 7), torch.rand(1, 3, 12, 14)
        assert largest_difference(descriptor(small.clone()), swinir(small).clamp(0, 1)) > 1e-3
        assert largest_difference(descriptor(padded_alike.clone()), swinir(padded_alike).clamp(0, 1)) <= TOLERANCE
    with pytest.raises(RuntimeError):  # bfloat16 at a size other than img_size (16)
        descriptor.model.eval().bfloat16()(torch.rand(1, 3, 24, 32).bfloat16())
    window7 = {**swinir_options, "window_size": 7, "img_size": 14}
    _, path7 = saved_student(tmp_path / "w7", "swinir", window7)
    assert loader.load_from_file(path7).model.img_range == 255.0  # read as a JPEG-artefact model
    tight = {**swinir_options, "img_size": 8, "depths": [2, 2]}  # img_size == window: no masks stored
    _, tight_path = saved_student(tmp_path / "tight", "swinir", tight)
    with pytest.raises(RuntimeError, match="attn_mask"):
        loader.load_from_file(tight_path)
    rcan = BACKBONES["rcan"](3, 3, num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=2)
    nafnet = BACKBONES["nafnet"](img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
    for state_dict in (official_state_dict("rcan", rcan), nafnet.state_dict()):
        assert not loader.load_from_state_dict(dict(state_dict)).supports_half
    edsr = BACKBONES["edsr"](**tiny_edsr()["options"])
    with pytest.raises(spandrel.UnsupportedModelError):
        loader.load_from_state_dict(edsr.state_dict())
    without_ema = save_weights(tmp_path / "no_ema.pth", swinir.state_dict(), None, {"backbone": "swinir"})
    image = torch.rand(1, 3, 16, 24)
    with torch.no_grad():  # a weights.pth without EMA: spandrel takes params
        assert largest_difference(loader.load_from_file(without_ema).eval().model(image), swinir(image)) <= TOLERANCE
    training_checkpoint = tmp_path / "iter_5.pth"
    torch.save({"iteration": 5, "student": swinir.state_dict(), "ema": swinir.state_dict()}, training_checkpoint)
    with pytest.raises(spandrel.UnsupportedModelError):
        loader.load_from_file(training_checkpoint)
