"""FAKD as its official code trains it: 0.5 L1 to the ground truth, 0.5 L1 to the teacher, and 10/255 (the
official 10 on [0, 255] images, in our [0, 1] units) x the spatial-affinity L1 summed over three feature pairs
(after 1/3 and 2/3 of the body and the upsampler's input)."""

from __future__ import annotations

import pytest
import torch

from dckd.config.schema import config_from_dict
from dckd.engine.setup import build_method, construct_network
from dckd.errors import ConfigError
from dckd.losses.affinity import affinity_loss, spatial_affinity
from dckd.losses.pixel import l1_loss
from dckd.models.backbones import FAKD_FEATURES, PRESETS

TINY_RCAN = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "squeeze_factor": 4, "upscale": 2}


def test_defaults_are_the_official_recipe_in_our_units() -> None:
    options = config_from_dict(
        {
            "method": "fakd",
            "student": {"preset": "rcan_student_x2"},
            "teacher": {"preset": "rcan_x2", "random_init": True},
            "data": {"scale": 2},
        }
    ).fakd
    assert (options.reconstruction_weight, options.kd_weight) == (0.5, 0.5)
    assert options.affinity_weight == pytest.approx(10 / 255)
    assert (options.affinity_reduction, options.default_layers) == ("sum", "fakd")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("rcan_x4", ["body.2", "body.6", "upsample:input"]),  # official: groups 3 and 7, body tail + skip
        ("rcan_student_x2", ["body.2", "body.6", "upsample:input"]),
        ("swinir_m_x4", ["layers.1", "layers.3", "conv_before_upsample:input"]),
        ("swinir_s_x3", ["layers.0", "layers.2", "conv_before_upsample:input"]),
        ("swinir_light_x4", ["layers.0", "layers.2", "upsample:input"]),
    ],
)
def test_recipe_layers_of_the_paper_networks(preset: str, expected: list[str]) -> None:
    backbone, options = PRESETS[preset]
    with torch.device("meta"):
        network = construct_network(backbone, options)
    assert FAKD_FEATURES[backbone](network) == expected


def test_edsr_layers_follow_the_official_thirds() -> None:
    with torch.device("meta"):
        teacher = construct_network("edsr", {"num_feat": 8, "num_block": 32})
        student = construct_network("edsr", {"num_feat": 8, "num_block": 16})
        tiny = construct_network("edsr", {"num_feat": 8, "num_block": 2})
    assert FAKD_FEATURES["edsr"](teacher) == ["body.9", "body.20", "upsample:input"]  # blocks split 10/11/11
    assert FAKD_FEATURES["edsr"](student) == ["body.4", "body.9", "upsample:input"]  # 5/5/6
    assert FAKD_FEATURES["edsr"](tiny) == ["body.0:input", "body.0", "upsample:input"]  # 0/1/1: the head's output


def _rcan_method(student_groups: int, **options):
    torch.manual_seed(0)
    student = construct_network("rcan", {**TINY_RCAN, "num_group": student_groups})
    teacher = construct_network("rcan", {**TINY_RCAN, "num_feat": 12, "num_group": 4}).eval().requires_grad_(False)
    raw = {
        "method": "fakd",
        "student": {"backbone": "rcan", "options": {**TINY_RCAN, "num_group": student_groups}},
        "teacher": {"backbone": "rcan", "options": {**TINY_RCAN, "num_feat": 12, "num_group": 4}, "random_init": True},
        "data": {"scale": 2},
        "train": {"ema_decay": 0.0},
        "fakd": options,
    }
    return build_method(config_from_dict(raw), student, teacher, None, torch.device("cpu")), student, teacher


def _features(network, lq: torch.Tensor, groups: tuple[int, int]) -> list[torch.Tensor]:
    """By hand: the outputs of two residual groups and the upsampler's input (body tail + global skip)."""
    x = (lq - network.mean) * network.img_range
    head = network.conv_first(x)
    outputs, h = [], head
    for index, group in enumerate(network.body):
        h = group(h)
        if index in groups:
            outputs.append(h)
    return [*outputs, network.conv_after_body(h) + head]


def test_loss_is_the_official_total() -> None:
    method, student, teacher = _rcan_method(3)
    assert method.student_layers == ["body.0", "body.1", "upsample:input"]  # round(1) - 1, round(2) - 1
    assert method.teacher_layers == ["body.0", "body.2", "upsample:input"]  # round(4/3) - 1, round(8/3) - 1
    generator = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 24, 24, generator=generator)
    lq = torch.nn.functional.avg_pool2d(gt, 2)
    result = method({"lq": lq, "gt": gt})
    with torch.no_grad():
        output, target = student(lq), teacher(lq)
        pairs = zip(_features(student, lq, (0, 1)), _features(teacher, lq, (0, 2)))
        affinity = sum((spatial_affinity(s) - spatial_affinity(t)).abs().mean() for s, t in pairs)
    torch.testing.assert_close(result["reconstruction"], 0.5 * l1_loss(output, gt))
    torch.testing.assert_close(result["kd"], 0.5 * l1_loss(output, target))
    torch.testing.assert_close(result["affinity"], 10 / 255 * affinity, rtol=1e-5, atol=1e-8)
    mean, _, _ = _rcan_method(3, affinity_reduction="mean")
    torch.testing.assert_close(mean({"lq": lq, "gt": gt})["affinity"], 10 / 255 * affinity / 3, rtol=1e-5, atol=1e-8)


def test_evenly_paired_layers_stay_available_and_short_bodies_are_refused() -> None:
    method, _, _ = _rcan_method(2, default_layers="evenly_paired")
    assert method.student_layers == ["body.0", "body.1"] and method.teacher_layers == ["body.1", "body.3"]
    with pytest.raises(ConfigError, match="has 2 residual groups; FAKD's recipe compares the features after 1/3"):
        _rcan_method(2)


def test_affinity_reduction_sums_or_averages_the_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    student = [torch.rand(2, 4, 5, 5, generator=generator) for _ in range(3)]
    teacher = [torch.rand(2, 6, 5, 5, generator=generator) for _ in range(3)]
    single = [affinity_loss([s], [t]) for s, t in zip(student, teacher)]
    torch.testing.assert_close(affinity_loss(student, teacher), sum(single))
    torch.testing.assert_close(affinity_loss(student, teacher, "mean"), sum(single) / 3)
    with pytest.raises(ValueError, match="reduction 'max'"):
        affinity_loss(student, teacher, "max")
