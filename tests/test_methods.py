"""Every method with tiny stand-in networks: one optimisation step changes only the student, the loss
dict has the documented keys, a weight-0 term is never computed, the history model follows its rule."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY_VQGAN, tiny_edsr
from torch import nn

from dckd.config.schema import config_from_dict
from dckd.engine.setup import build_method, construct_network
from dckd.methods.dckd.history import HistoryModel, HistorySchedule
from dckd.methods.dckd.invertible import InvertibleAugmentation
from dckd.models.vqgan import VQGANEncoder

SCALE = 2


def networks(seed: int = 0):
    torch.manual_seed(seed)
    student = construct_network("edsr", tiny_edsr(SCALE)["options"])
    teacher = construct_network("edsr", tiny_edsr(SCALE, features=12, blocks=2)["options"]).eval().requires_grad_(False)
    vqgan = VQGANEncoder(**TINY_VQGAN).eval().requires_grad_(False)
    return student, teacher, vqgan


def batch(seed: int = 1, size: int = 3, patch: int = 12) -> dict:
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(size, 3, patch * SCALE, patch * SCALE, generator=generator)
    lq = torch.nn.functional.avg_pool2d(gt, SCALE)
    return {"lq": lq, "gt": gt}


def make(method: str, student, teacher, vqgan, **options):
    raw = {"method": method, "student": tiny_edsr(SCALE), "data": {"scale": SCALE}, "train": {"ema_decay": 0.0}}
    if method in ("logits", "fakd", "dckd"):
        raw["teacher"] = {**tiny_edsr(SCALE, features=12, blocks=2), "random_init": True}
    if method in ("dckd", "mclir"):
        raw["vqgan"] = {"checkpoint": "unused.pth"}
    if method == "dckd" or method == "mclir":
        options.setdefault("history", {"source": "student", "initial_interval_iters": 1})
    if options:
        raw[method] = options
    return build_method(config_from_dict(raw), student, teacher, vqgan, torch.device("cpu"))


ALL_TERMS = {
    "scratch": ({}, {"reconstruction"}),
    "logits": ({}, {"reconstruction", "kd"}),
    "fakd": ({"kd_weight": 0.5}, {"reconstruction", "kd", "affinity"}),
    "dckd": (
        {"lcr_weight": 1.0, "upcycling_weight": 0.5},
        {"reconstruction", "kd", "contrastive", "codebook", "lcr", "upcycling"},
    ),
    "mclir": ({}, {"reconstruction", "model_contrast"}),
}


def parameters_of(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in network.state_dict().items()}


@pytest.mark.parametrize("method_name", sorted(ALL_TERMS))
def test_one_step_changes_only_the_student(method_name: str) -> None:
    student, teacher, vqgan = networks()
    options, expected_terms = ALL_TERMS[method_name]
    method = make(method_name, student, teacher, vqgan, **options)
    history = getattr(method, "history", None)
    frozen = {"teacher": teacher, "vqgan": vqgan}
    if history is not None:
        frozen["history"] = history.network
    before = {name: parameters_of(network) for name, network in frozen.items()}
    student_before = parameters_of(student)

    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    result = method(batch())
    assert set(result) == {"loss", "output"} | expected_terms
    assert set(expected_terms) <= set(type(method).loss_names)
    torch.testing.assert_close(result["loss"], sum(result[name] for name in expected_terms))
    for name in expected_terms:
        assert torch.isfinite(result[name]) and result[name].item() > 0, name
    result["loss"].backward()
    optimizer.step()

    for name, network in frozen.items():
        for key, value in network.state_dict().items():
            assert torch.equal(value, before[name][key]), f"{name}.{key} changed"
            assert not any(p.requires_grad for p in network.parameters()), name
    changed = [key for key, value in student.state_dict().items() if not torch.equal(value, student_before[key])]
    assert changed, "the student did not change"


class CallCounter:
    def __init__(self, module: nn.Module) -> None:
        self.calls = 0
        module.register_forward_pre_hook(self._hook)

    def _hook(self, *_args) -> None:
        self.calls += 1


def test_weight_zero_terms_are_never_computed() -> None:
    student, teacher, vqgan = networks()
    teacher_calls, vqgan_calls = CallCounter(teacher), CallCounter(vqgan.encoder.conv_in)

    only_reconstruction = make(
        "dckd", student, teacher, vqgan, kd_weight=0.0, contrastive_weight=0.0, codebook_weight=0.0
    )
    assert only_reconstruction.history is None and only_reconstruction.negatives is None
    assert only_reconstruction.vqgan is None
    result = only_reconstruction(batch())
    assert set(result) == {"loss", "output", "reconstruction"}
    assert teacher_calls.calls == 0 and vqgan_calls.calls == 0

    # Codebook only: one VQGAN pass for the teacher output, one for the student; no history model.
    codebook_only = make("dckd", student, teacher, vqgan, kd_weight=0.0, contrastive_weight=0.0)
    result = codebook_only(batch())
    assert set(result) == {"loss", "output", "reconstruction", "codebook"}
    assert codebook_only.history is None
    assert teacher_calls.calls == 1 and vqgan_calls.calls == 2

    # Contrastive only: the history model runs once on all negatives (batched).
    contrastive_only = make("dckd", student, teacher, vqgan, kd_weight=0.0, codebook_weight=0.0)
    history_calls = CallCounter(contrastive_only.history.network)
    result = contrastive_only(batch())
    assert set(result) == {"loss", "output", "reconstruction", "contrastive"}
    assert history_calls.calls == 1 and vqgan_calls.calls == 4

    mclir = make("mclir", student, teacher, vqgan, contrast_weight=0.0)
    history_calls = CallCounter(mclir.history.network)
    assert set(mclir(batch())) == {"loss", "output", "reconstruction"}
    assert history_calls.calls == 0 and vqgan_calls.calls == 4


def test_every_weight_zero_is_an_error() -> None:
    student, teacher, vqgan = networks()
    method = make("logits", student, teacher, vqgan, reconstruction_weight=0.0, kd_weight=0.0)
    with pytest.raises(ValueError, match="every loss weight is 0"):
        method(batch())


def test_contrastive_gradient_reaches_the_student_only_through_the_anchor() -> None:
    student, teacher, vqgan = networks()
    method = make("dckd", student, teacher, vqgan, reconstruction_weight=0.0, kd_weight=0.0, codebook_weight=0.0)
    # Make the history network differ from the student so the negatives are not the anchor.
    with torch.no_grad():
        for parameter in method.history.network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    captured = {}
    original = method.vqgan.features

    def spy(images):
        features = original(images)
        captured.setdefault("calls", []).append((images.requires_grad, [f.requires_grad for f in features]))
        return features

    method.vqgan.features = spy
    result = method(batch())
    # Frozen branch (teacher output + negatives) carries no graph; the anchor does.
    frozen_call, anchor_call = captured["calls"]
    assert frozen_call == (False, [False] * 5)
    assert anchor_call[0] and all(anchor_call[1])
    result["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_fakd_sends_a_gradient_to_the_student_body() -> None:
    student, teacher, vqgan = networks()
    method = make("fakd", student, teacher, vqgan, reconstruction_weight=0.0, kd_weight=0.0)
    method(batch())["loss"].backward()
    body_gradients = [p.grad for name, p in student.named_parameters() if name.startswith("body.")]
    assert body_gradients and all(g is not None and g.abs().sum() > 0 for g in body_gradients)


class Equivariant(nn.Module):
    """A per-pixel colour map followed by nearest upsampling: commutes with flips and transposes."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)
        self.scale = SCALE

    def forward(self, x):
        return nn.functional.interpolate(self.mix(x), scale_factor=SCALE, mode="nearest")


def test_teacher_side_lcr_equals_kd_for_an_equivariant_teacher() -> None:
    student, _, vqgan = networks()
    teacher = Equivariant().eval().requires_grad_(False)
    method = make(
        "dckd",
        student,
        teacher,
        vqgan,
        contrastive_weight=0.0,
        codebook_weight=0.0,
        lcr_weight=1.0,
        lcr_probability=1.0,
        lcr_operations=["vflip", "hflip", "transpose"],
    )
    result = method(batch())
    torch.testing.assert_close(result["lcr"], result["kd"])


def test_invertible_augmentation_round_trip() -> None:
    augmentation = InvertibleAugmentation(
        ["transpose", "invert", "hflip", "vflip"], 0.5, torch.Generator().manual_seed(0)
    )
    x = torch.rand(16, 3, 8, 8)
    plan = augmentation.draw(16)
    assert 0 < plan.float().mean() < 1
    assert torch.equal(augmentation.invert(augmentation.apply(x, plan), plan), x)
    with pytest.raises(ValueError, match="square"):
        augmentation.apply(torch.rand(2, 3, 4, 6), torch.ones(2, 4, dtype=torch.bool))


def test_history_schedule_is_defined_for_any_length() -> None:
    schedule = HistorySchedule(1000, 1000, 100000)
    assert [schedule.interval(t) for t in (1, 100000, 100001, 200000, 200001, 300000, 300001, 10**6)] == [
        1000,
        1000,
        2000,
        2000,
        3000,
        3000,
        4000,
        10000,
    ]
    updates = [t for t in range(1, 300001) if schedule.is_update_step(t)]
    assert len(updates) == 100 + 50 + 34 and updates[:2] == [1000, 2000] and 100000 in updates and 102000 in updates


def test_history_update_formula_and_state_round_trip(tmp_path) -> None:
    student, _, _ = networks()
    history = HistoryModel(student, decay=0.1, schedule=HistorySchedule(2, 0, 10), source="student")
    initial = parameters_of(history.network)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(1.0)
    assert not history.maybe_update(1, student, None)  # not an update step
    assert history.maybe_update(2, student, None)
    for name, value in history.network.state_dict().items():
        torch.testing.assert_close(value, 0.1 * initial[name] + 0.9 * student.state_dict()[name])
    path = tmp_path / "history.pth"
    torch.save(history.state_dict(), path)
    restored = HistoryModel(copy.deepcopy(student), 0.1, HistorySchedule(2, 0, 10), "student")
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert restored.updates == 1
    for name, value in history.network.state_dict().items():
        assert torch.equal(value, restored.network.state_dict()[name])
    with pytest.raises(RuntimeError, match="EMA"):
        HistoryModel(student, 0.1, HistorySchedule(1, 0, 10), "ema").maybe_update(1, student, None)


def test_dckd_state_restores_the_negatives_bit_for_bit() -> None:
    student, teacher, vqgan = networks()
    first = make("dckd", student, teacher, vqgan, degradations=["mix"], lcr_weight=1.0)
    first(batch())  # advance the generators
    state = copy.deepcopy(first.state_dict())
    expected = first(batch())
    second = make("dckd", student, teacher, vqgan, degradations=["mix"], lcr_weight=1.0)
    second.load_state_dict(state)
    again = second(batch())
    for name in ("contrastive", "codebook", "lcr"):
        assert torch.equal(expected[name], again[name]), name


def test_contrastive_schedule_beyond_the_paper_skips_then_ramps_and_resumes() -> None:
    student, teacher, vqgan = networks()
    method = make("dckd", student, teacher, vqgan, contrastive_start_iters=2, contrastive_ramp_iters=4)
    history_calls = CallCounter(method.history.network)
    for iteration in (1, 2):  # off: not computed, the history model does not run
        assert "contrastive" not in method(batch())
        method.after_step(iteration, student, None)
    assert history_calls.calls == 0
    plain = make("dckd", student, teacher, vqgan)
    reference = plain(batch())["contrastive"]
    plain.generator.set_state(method.generator.get_state())
    factors = []
    for iteration in (3, 4, 5, 6, 7):
        factors.append(method.contrastive_factor())
        assert "contrastive" in method(batch())
        method.after_step(iteration, student, None)
    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert history_calls.calls == 5 and reference.item() > 0
    restored = make("dckd", student, teacher, vqgan, contrastive_start_iters=2, contrastive_ramp_iters=4)
    restored.load_state_dict(copy.deepcopy(method.state_dict()))
    assert restored.steps == 7 and restored.contrastive_factor() == 1.0


def test_chunked_frozen_vqgan_passes_give_the_same_features_and_logits() -> None:
    from dckd.methods.dckd.feature_space import VQGANSpace

    _, _, vqgan = networks()
    images = torch.rand(7, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    whole, chunked = VQGANSpace(vqgan, "minus_one_one"), VQGANSpace(vqgan, "minus_one_one", chunk_images=3)
    with torch.no_grad():
        (features, logits), (chunk_features, chunk_logits) = (
            whole.features_and_code_logits(images),
            chunked.features_and_code_logits(images),
        )
        assert len(chunked._chunks(images)) == 3
        for level, (a, b) in enumerate(zip(features, chunk_features)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5, msg=f"level {level}")  # other conv algorithms
        torch.testing.assert_close(chunk_logits, logits, rtol=1e-5, atol=1e-4)
        for a, b in zip(whole.features(images), chunked.features(images)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert len(chunked._chunks(images.requires_grad_())) == 1  # a pass with gradients is never split
