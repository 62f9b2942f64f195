"""Every loss: pinned values from the official code's reference vectors, and its defining properties."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dckd.eval import selfcheck
from dckd.losses.affinity import affinity_loss, spatial_affinity
from dckd.losses.codebook import codebook_cross_entropy
from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.losses.pixel import charbonnier_loss, l1_loss

GOLDEN = selfcheck.DEFAULT_DIR


def test_pinned_values_of_the_released_code() -> None:
    index = json.loads((GOLDEN / "index.json").read_text())
    result = selfcheck.check_losses(GOLDEN, "losses", index["losses"])
    assert result.passed, result


def test_contrastive_pinned_value_in_float32_through_the_training_function() -> None:
    """The same function training calls, on float32 tensors stacked as training stacks them."""
    index = json.loads((GOLDEN / "index.json").read_text())["losses"]["contrastive"]
    tensors = load_file(str(GOLDEN / "losses.safetensors"))
    levels, items = index["levels"], 2 + index["num_neg"]
    anchor = [tensors[f"level{level}.item0"] for level in range(levels)]
    positive = [tensors[f"level{level}.item1"] for level in range(levels)]
    negatives = [
        torch.cat([tensors[f"level{level}.item{item}"] for item in range(2, items)]) for level in range(levels)
    ]
    value = index["loss_weight"] * contrastive_ratio_loss(anchor, positive, negatives, index["layer_weights"])
    assert abs(value.item() - index["value"]) / index["value"] < 1e-5


def random_levels(batch: int = 2, negatives: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 8, 8), (6, 4, 4), (8, 2, 2)]
    anchor = [torch.rand(batch, *shape, generator=generator) for shape in shapes]
    positive = [torch.rand(batch, *shape, generator=generator) for shape in shapes]
    negative = [torch.rand(negatives * batch, *shape, generator=generator) for shape in shapes]
    return anchor, positive, negative


def test_contrastive_is_zero_at_the_positive_and_falls_towards_it() -> None:
    anchor, positive, negatives = random_levels()
    weights = [0.25, 0.5, 1.0]
    assert contrastive_ratio_loss(positive, positive, negatives, weights).item() == 0
    values = []
    for t in (0.0, 0.25, 0.5, 0.75, 0.95):
        moved = [(1 - t) * a + t * p for a, p in zip(anchor, positive)]
        values.append(contrastive_ratio_loss(moved, positive, negatives, weights).item())
    assert all(later < earlier for earlier, later in zip(values, values[1:]))


def test_contrastive_gradient_flows_only_through_the_anchor() -> None:
    anchor, positive, negatives = random_levels()
    for tensor in anchor + positive + negatives:
        tensor.requires_grad_(True)
    contrastive_ratio_loss(anchor, positive, negatives, [1, 1, 1]).backward()
    assert all(tensor.grad is not None and tensor.grad.abs().sum() > 0 for tensor in anchor)
    assert all(tensor.grad is None for tensor in positive + negatives)


def test_contrastive_stacking_equals_a_loop_over_negatives() -> None:
    anchor, positive, negatives = random_levels(batch=3, negatives=4)
    weights = [0.5, 0.25, 1.0]
    expected = 0
    for level, weight in enumerate(weights):
        a, p = anchor[level], positive[level]
        blocks = negatives[level].chunk(4)
        expected += weight * (a - p).abs().mean() / (sum((a - n).abs().mean() for n in blocks) + 1e-7)
    torch.testing.assert_close(contrastive_ratio_loss(anchor, positive, negatives, weights), expected)
    with pytest.raises(ValueError, match="levels"):
        contrastive_ratio_loss(anchor, positive, negatives, [1.0])


def distributions(rows: int = 10, codes: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.softmax(3 * torch.randn(rows, codes, generator=generator), -1)
    student_logits = 3 * torch.randn(rows, codes, generator=generator)
    return teacher, torch.log_softmax(student_logits, -1)


def test_paper_cross_entropy_is_minimal_when_the_student_matches() -> None:
    teacher, student_log = distributions()
    at_teacher = codebook_cross_entropy(teacher.log(), teacher, "paper")
    assert at_teacher < codebook_cross_entropy(student_log, teacher, "paper")
    entropy = -(teacher * teacher.log()).sum(-1).mean()
    torch.testing.assert_close(at_teacher, entropy)


def test_released_cross_entropy_is_the_double_softmax() -> None:
    teacher, student_log = distributions()
    probabilities = student_log.exp()
    expected = torch.nn.functional.cross_entropy(probabilities, teacher)  # soft targets, as the released code
    torch.testing.assert_close(codebook_cross_entropy(student_log, teacher, "released"), expected)
    with pytest.raises(ValueError, match="formula"):
        codebook_cross_entropy(student_log, teacher, "other")


def test_codebook_gradient_reaches_only_the_student() -> None:
    teacher, student_log = distributions()
    logits = student_log.clone().requires_grad_(True)
    teacher = teacher.clone().requires_grad_(True)
    codebook_cross_entropy(torch.log_softmax(logits, -1), teacher, "paper").backward()
    assert logits.grad.abs().sum() > 0 and teacher.grad is None


def test_pixel_losses() -> None:
    x, y = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    assert l1_loss(x, x).item() == 0
    torch.testing.assert_close(l1_loss(x, y), (x - y).abs().mean())
    torch.testing.assert_close(charbonnier_loss(x, y, eps=0.0), (x - y).abs().mean())
    assert charbonnier_loss(x, x).item() == pytest.approx(1e-6)


def test_spatial_affinity_is_cosine_similarity_and_width_free() -> None:
    features = torch.rand(2, 5, 3, 4)
    affinity = spatial_affinity(features)
    assert affinity.shape == (2, 12, 12)
    torch.testing.assert_close(torch.diagonal(affinity, dim1=1, dim2=2), torch.ones(2, 12), atol=1e-5, rtol=0)
    tokens = features.flatten(2).transpose(1, 2)  # (N, L, C) like SwinIR layer outputs
    torch.testing.assert_close(spatial_affinity(tokens), affinity)
    wide = torch.cat([features, features], dim=1)  # same directions, twice the channels
    torch.testing.assert_close(affinity_loss([features], [wide]), torch.tensor(0.0), atol=1e-6, rtol=0)
    student = torch.rand(2, 5, 3, 4, requires_grad=True)
    teacher = torch.rand(2, 7, 3, 4, requires_grad=True)
    affinity_loss([student], [teacher]).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
