"""Super-resolution backbones (SwinIR, RCAN, EDSR): the same functions and checkpoint layouts as BasicSR.

- number for number: the shipped golden cases and the generated set in tests/references/sr_backbones
  (both produced by BasicSR's own arch files; regenerate the latter with
  tools/references/make_sr_backbones.py, never from a test);
- key for key: every preset's state_dict against dckd/golden/manifests.json, or against the BasicSR
  layout written out below where the manifest has no entry;
- official RCAN / EDSR-PyTorch checkpoints: a state_dict in that layout (key names of the official code,
  written out below) converts, loads strictly and computes what the official forward computes;
- contracts: any H x W, every scale and upsampler, no NaN, eval determinism, gradients everywhere;
- SwinIR internals: SDPA attention == explicit softmax, padding, shift-mask caching.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dckd.eval import selfcheck
from dckd.models.backbones import common, edsr, rcan, swinir
from dckd.models.backbones.edsr import EDSR
from dckd.models.backbones.rcan import RCAN
from dckd.models.backbones.swinir import SwinIR

GOLDEN = selfcheck.DEFAULT_DIR
GENERATED = Path(__file__).parent / "references" / "sr_backbones"
MANIFESTS = json.loads((GOLDEN / "manifests.json").read_text())
SWINIR_MANIFEST = {
    "swinir_m_x2": "SwinIR-M_x2 (teacher, classical SR)",
    "swinir_m_x3": "SwinIR-M_x3 (teacher, classical SR)",
    "swinir_m_x4": "SwinIR-M_x4 (teacher, classical SR)",
    "swinir_s_x2": "SwinIR-S_x2 (DCKD student)",
    "swinir_s_x3": "SwinIR-S_x3 (DCKD student)",
    "swinir_s_x4": "SwinIR-S_x4 (DCKD student)",
    "swinir_light_x4": "SwinIR-light_x4 (official lightweight)",
}
RCAN_MANIFEST = "RCAN_x4 (teacher, BasicSR key layout)"


def tiny_swinir(**overrides) -> SwinIR:
    """A SwinIR small enough for CPU tests: window 4, img_size 8, two RSTBs of two blocks."""
    config = dict(
        upscale=2,
        in_chans=3,
        img_size=8,
        window_size=4,
        img_range=1.0,
        depths=[2, 2],
        embed_dim=8,
        num_heads=[2, 2],
        mlp_ratio=2,
        upsampler="pixelshuffle",
        resi_connection="1conv",
        drop_path_rate=0.0,
    )
    config.update(overrides)
    return SwinIR(**config)


def shapes(state_dict: dict[str, torch.Tensor]) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in state_dict.items()]


def build_on_meta(factory):
    """Build a full-size network without allocating or initialising its weights (only shapes are needed)."""
    with torch.device("meta"):
        return factory()


# ----------------------------------------------------------------------------------------------------
# Reference vectors from BasicSR


@pytest.mark.parametrize("name", ["swinir_small_x2", "swinir_small_x4_direct", "rcan_small_x3"])
def test_shipped_golden_case(name):
    case = json.loads((GOLDEN / "index.json").read_text())[name]
    result = selfcheck.check_network(GOLDEN, name, case)
    assert result.passed, f"{name}: max error {result.max_error:.3e} > {result.tolerance:.0e} {result.detail}"


def test_generated_reference_set_passes():
    results = selfcheck.run_directory(GENERATED)
    assert {result.kind for result in results} == {"swinir", "rcan"}
    assert len(results) >= 9
    failed = [f"{r.name}: {r.max_error:.3e} {r.detail}" for r in results if not r.passed]
    assert not failed, failed


# ----------------------------------------------------------------------------------------------------
# Presets: configs and state_dict layouts


@pytest.mark.parametrize("preset", sorted(SWINIR_MANIFEST))
def test_swinir_preset_matches_manifest(preset):
    entry = MANIFESTS[SWINIR_MANIFEST[preset]]
    assert swinir.PRESETS[preset] == entry["config"]
    network = build_on_meta(lambda: SwinIR(**swinir.PRESETS[preset]))
    assert shapes(network.state_dict()) == [(key, shape) for key, shape in entry["state_dict"].items()]
    assert network.scale == entry["config"]["upscale"] and network.size_multiple == entry["config"]["window_size"]


def test_swinir_presets_are_exactly_the_manifest_ones():
    assert set(swinir.PRESETS) == set(SWINIR_MANIFEST)


def rcan_basicsr_layout(num_feat: int, num_group: int, num_block: int, squeeze_factor: int, upscale: int) -> list:
    """BasicSR RCAN keys and shapes, written out from basicsr/archs/rcan_arch.py."""
    layout = [("conv_first.weight", [num_feat, 3, 3, 3]), ("conv_first.bias", [num_feat])]
    squeezed = num_feat // squeeze_factor
    for group in range(num_group):
        for block in range(num_block):
            prefix = f"body.{group}.residual_group.{block}.rcab"
            layout += [
                (f"{prefix}.0.weight", [num_feat, num_feat, 3, 3]),
                (f"{prefix}.0.bias", [num_feat]),
                (f"{prefix}.2.weight", [num_feat, num_feat, 3, 3]),
                (f"{prefix}.2.bias", [num_feat]),
                (f"{prefix}.3.attention.1.weight", [squeezed, num_feat, 1, 1]),
                (f"{prefix}.3.attention.1.bias", [squeezed]),
                (f"{prefix}.3.attention.3.weight", [num_feat, squeezed, 1, 1]),
                (f"{prefix}.3.attention.3.bias", [num_feat]),
            ]
        layout += [(f"body.{group}.conv.weight", [num_feat, num_feat, 3, 3]), (f"body.{group}.conv.bias", [num_feat])]
    layout += [("conv_after_body.weight", [num_feat, num_feat, 3, 3]), ("conv_after_body.bias", [num_feat])]
    return (
        layout
        + upsample_layout(num_feat, upscale, "upsample")
        + [("conv_last.weight", [3, num_feat, 3, 3]), ("conv_last.bias", [3])]
    )


def upsample_layout(num_feat: int, upscale: int, prefix: str) -> list:
    """Pixel-shuffle upsampler keys: one conv per x2 step at indices 0, 2, ..., or one x3 conv."""
    if upscale == 3:
        return [(f"{prefix}.0.weight", [9 * num_feat, num_feat, 3, 3]), (f"{prefix}.0.bias", [9 * num_feat])]
    layout = []
    for step in range(int(math.log2(upscale))):
        layout += [
            (f"{prefix}.{2 * step}.weight", [4 * num_feat, num_feat, 3, 3]),
            (f"{prefix}.{2 * step}.bias", [4 * num_feat]),
        ]
    return layout


def edsr_basicsr_layout(num_feat: int, num_block: int, upscale: int) -> list:
    """BasicSR EDSR keys and shapes, written out from basicsr/archs/edsr_arch.py."""
    layout = [("conv_first.weight", [num_feat, 3, 3, 3]), ("conv_first.bias", [num_feat])]
    for block in range(num_block):
        for conv in ("conv1", "conv2"):
            layout += [
                (f"body.{block}.{conv}.weight", [num_feat, num_feat, 3, 3]),
                (f"body.{block}.{conv}.bias", [num_feat]),
            ]
    layout += [("conv_after_body.weight", [num_feat, num_feat, 3, 3]), ("conv_after_body.bias", [num_feat])]
    return (
        layout
        + upsample_layout(num_feat, upscale, "upsample")
        + [("conv_last.weight", [3, num_feat, 3, 3]), ("conv_last.bias", [3])]
    )


def test_rcan_x4_preset_matches_manifest_and_layout_generator():
    entry = MANIFESTS[RCAN_MANIFEST]
    assert rcan.PRESETS["rcan_x4"] == entry["config"]
    expected = list(entry["state_dict"].items())
    # The written-out layout must agree with the manifest, so it can stand in where there is none.
    assert rcan_basicsr_layout(**entry["config"]) == expected
    network = build_on_meta(lambda: RCAN(num_in_ch=3, num_out_ch=3, **rcan.PRESETS["rcan_x4"]))
    assert shapes(network.state_dict()) == expected


@pytest.mark.parametrize("preset", sorted(rcan.PRESETS))
def test_rcan_presets_layout(preset):
    config = rcan.PRESETS[preset]
    assert (config["num_feat"], config["num_group"], config["squeeze_factor"]) == (64, 10, 16)
    assert config["num_block"] == (6 if "student" in preset else 20)
    assert config["upscale"] == int(preset[-1])
    network = build_on_meta(lambda: RCAN(num_in_ch=3, num_out_ch=3, **config))
    assert shapes(network.state_dict()) == rcan_basicsr_layout(**config)


@pytest.mark.parametrize("preset", sorted(edsr.PRESETS))
def test_edsr_presets_layout(preset):
    config = edsr.PRESETS[preset]
    baseline = preset.startswith("edsr_baseline")
    assert (config["num_feat"], config["num_block"], config["res_scale"]) == (
        (64, 16, 1) if baseline else (256, 32, 0.1)
    )
    network = build_on_meta(lambda: EDSR(num_in_ch=3, num_out_ch=3, **config))
    assert shapes(network.state_dict()) == edsr_basicsr_layout(
        config["num_feat"], config["num_block"], config["upscale"]
    )
    assert network.body[0].res_scale == config["res_scale"]


def test_published_parameter_counts():
    """Sizes the papers report: SwinIR-M 11.9M (x4), SwinIR-light 0.93M (BasicSR), RCAN 15.6M, EDSR 43M."""

    def millions(factory) -> float:
        return sum(parameter.numel() for parameter in build_on_meta(factory).parameters()) / 1e6

    assert millions(lambda: SwinIR(**swinir.PRESETS["swinir_m_x4"])) == pytest.approx(11.90, abs=0.01)
    assert millions(lambda: RCAN(3, 3, **rcan.PRESETS["rcan_x4"])) == pytest.approx(15.59, abs=0.01)
    assert millions(lambda: EDSR(3, 3, **edsr.PRESETS["edsr_x4"])) == pytest.approx(43.09, abs=0.01)
    assert millions(lambda: EDSR(3, 3, **edsr.PRESETS["edsr_baseline_x4"])) == pytest.approx(1.52, abs=0.01)


# ----------------------------------------------------------------------------------------------------
# Contracts: shapes, NaN, determinism, gradients

SWINIR_VARIANTS = [
    ("pixelshuffle", 2),
    ("pixelshuffle", 3),
    ("pixelshuffle", 4),
    ("pixelshuffledirect", 2),
    ("pixelshuffledirect", 3),
    ("pixelshuffledirect", 4),
    ("nearest+conv", 4),
    ("", 1),
]


@pytest.mark.parametrize("upsampler, upscale", SWINIR_VARIANTS)
def test_swinir_any_size_every_upsampler(upsampler, upscale):
    torch.manual_seed(0)
    network = tiny_swinir(
        upsampler=upsampler, upscale=upscale, resi_connection="3conv" if upscale == 3 else "1conv"
    ).eval()
    assert network.scale == upscale and network.size_multiple == 4
    image = torch.rand(2, 3, 7, 13)  # neither side a multiple of the window
    with torch.no_grad():
        first, second = network(image), network(image)
    assert first.shape == (2, 3, 7 * upscale, 13 * upscale)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


@pytest.mark.parametrize("network_class", [RCAN, EDSR])
@pytest.mark.parametrize("upscale", [2, 3, 4, 8])
def test_cnn_any_size_every_scale(network_class, upscale):
    torch.manual_seed(0)
    options = dict(num_group=2, num_block=1, squeeze_factor=4) if network_class is RCAN else dict(num_block=2)
    network = network_class(num_in_ch=3, num_out_ch=3, num_feat=8, upscale=upscale, **options).eval()
    assert network.scale == upscale and network.size_multiple == 1
    image = torch.rand(2, 3, 5, 7)
    with torch.no_grad():
        first, second = network(image), network(image)
    assert first.shape == (2, 3, 5 * upscale, 7 * upscale)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: tiny_swinir(upsampler="pixelshuffle", resi_connection="3conv", ape=True),
        lambda: tiny_swinir(upsampler="pixelshuffledirect", upscale=3),
        lambda: tiny_swinir(upsampler="nearest+conv", upscale=4),
        lambda: tiny_swinir(upsampler="", upscale=1),
        lambda: RCAN(3, 3, num_feat=8, num_group=2, num_block=2, squeeze_factor=4, upscale=2),
        lambda: EDSR(3, 3, num_feat=8, num_block=2, upscale=3),
    ],
    ids=["swinir_3conv_ape", "swinir_direct", "swinir_nearest", "swinir_denoise", "rcan", "edsr"],
)
def test_gradients_reach_every_parameter(factory):
    torch.manual_seed(0)
    network = factory().train()
    image = torch.rand(2, 3, 8, 8)  # 8 = img_size, so that ape's position embedding applies
    output = network(image)
    (output * torch.randn_like(output)).sum().backward()
    missing = [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"


def test_swinir_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny_swinir().train()
    checkpointed = tiny_swinir(use_checkpoint=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    image = torch.rand(1, 3, 12, 8)
    gradients = []
    for network in (plain, checkpointed):
        network(image).square().sum().backward()
        gradients.append(network.layers[0].residual_group.blocks[1].attn.qkv.weight.grad)
    torch.testing.assert_close(gradients[0], gradients[1])


def test_swinir_drop_path_is_active_in_training_only():
    torch.manual_seed(0)
    network = tiny_swinir(drop_path_rate=0.5)
    image = torch.rand(4, 3, 8, 8)
    network.eval()
    with torch.no_grad():
        assert torch.equal(network(image), network(image))
        network.train()
        assert not torch.equal(network(image), network(image))


# ----------------------------------------------------------------------------------------------------
# SwinIR: attention, padding, shift masks


@pytest.mark.parametrize("shifted", [False, True])
def test_sdpa_window_attention_equals_explicit_softmax(shifted):
    """SDPA with the bias (+ mask) as attn_mask == BasicSR's softmax(q*scale @ k^T + bias + mask) @ v."""
    torch.manual_seed(0)
    window, heads, dim, batch = 4, 2, 8, 2
    attention = swinir.WindowAttention(dim, window, heads, qk_scale=0.3).eval()
    with torch.no_grad():
        attention.relative_position_bias_table.normal_()  # large enough that a wrong index shows
    mask = swinir.shift_window_mask(8, 12, window, window // 2)  # (6 windows, 16, 16)
    windows = torch.randn(batch * mask.shape[0], window * window, dim)
    with torch.no_grad():
        output = attention(windows, mask if shifted else None)

        tokens = window * window
        qkv = attention.qkv(windows).reshape(-1, tokens, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        logits = (qkv[0] * 0.3) @ qkv[1].transpose(-2, -1)  # (B*nW, heads, T, T)
        # bias[h, i, j] = table[(yi - yj + w - 1) * (2w - 1) + (xi - xj + w - 1), h], written out directly
        table = attention.relative_position_bias_table
        bias = torch.empty(heads, tokens, tokens)
        for i in range(tokens):
            for j in range(tokens):
                dy, dx = i // window - j // window, i % window - j % window
                bias[:, i, j] = table[(dy + window - 1) * (2 * window - 1) + dx + window - 1]
        logits = logits + bias
        if shifted:
            logits = (logits.view(batch, -1, heads, tokens, tokens) + mask[None, :, None]).view(
                -1, heads, tokens, tokens
            )
        expected = (logits.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(-1, tokens, dim)
        expected = attention.proj(expected)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)


def test_head_dim_padding_for_fused_gpu_kernels_is_exact():
    """On CUDA, heads of 30 (SwinIR-M) or 10 (SwinIR-S) channels are zero-padded to a multiple of 8."""
    torch.manual_seed(0)
    query, key, value = torch.randn(3, 4, 2, 16, 10).unbind(0)
    bias = torch.randn(1, 2, 16, 16)
    padded = swinir.pad_head_dim((query, key, value), 8)
    assert all(tensor.shape == (4, 2, 16, 16) for tensor in padded)
    expected = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=0.3)
    output = F.scaled_dot_product_attention(*padded, attn_mask=bias, scale=0.3)[..., :10]
    torch.testing.assert_close(output, expected, rtol=1e-6, atol=1e-6)
    assert swinir.pad_head_dim((query,), 5)[0] is query


def test_relative_position_bias_is_contiguous():
    """GPU SDPA kernels refuse a mask whose last dimension has stride != 1 and fall back to the slow path."""
    attention = swinir.WindowAttention(12, 4, 3)
    assert attention.relative_position_bias().is_contiguous()


def test_shift_mask_separates_regions_glued_by_the_roll():
    mask = swinir.shift_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the top-left window holds one region only
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    # In the last window tokens (0,0) and (3,3) came from opposite corners of the image before the roll.
    assert mask[3, 0, 15] == -100.0 and mask[3, 0, 0] == 0.0


def test_pad_to_multiple_reflects_and_falls_back_to_replicate():
    image = torch.arange(2 * 5.0).view(1, 1, 2, 5)
    padded = common.pad_to_multiple(image, 4)  # width 5 -> 8 (pad 3 < 5: reflect), height 2 -> 4 (pad 2: replicate)
    assert padded.shape == (1, 1, 4, 8)
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    assert torch.equal(padded[0, 0, 2], padded[0, 0, 1]) and torch.equal(padded[0, 0, 3], padded[0, 0, 1])
    assert common.pad_to_multiple(image, 1) is image


def test_swinir_padding_is_reflect_and_crop_back():
    torch.manual_seed(0)
    network = tiny_swinir().eval()
    image = torch.rand(1, 3, 6, 10)
    with torch.no_grad():
        output = network(image)
        manual = network(F.pad(image, (0, 2, 0, 2), mode="reflect"))[..., :12, :20]
    torch.testing.assert_close(output, manual, rtol=0, atol=1e-6)


def test_swinir_padding_is_a_no_op_on_multiples(monkeypatch):
    torch.manual_seed(0)
    network = tiny_swinir().eval()
    image = torch.rand(1, 3, 12, 8)
    with torch.no_grad():
        padded_path = network(image)
        monkeypatch.setattr(swinir, "pad_to_multiple", lambda x, multiple: x)
        unpadded_path = network(image)
    assert torch.equal(padded_path, unpadded_path)


def test_swinir_shift_mask_is_cached_per_size_and_matches_fresh_masks(monkeypatch):
    torch.manual_seed(0)
    network = tiny_swinir().eval()
    image = torch.rand(1, 3, 12, 16)  # not img_size (8): masks are needed at run time
    calls = []
    original = swinir.shift_window_mask
    monkeypatch.setattr(swinir, "shift_window_mask", lambda *args: calls.append(args) or original(*args))
    with torch.no_grad():
        cached = network(image)
        assert calls == [(12, 16, 4, 2)]
        network(image)
        assert len(calls) == 1, "the second forward of the same size recomputed the mask"
        network(torch.rand(1, 3, 8, 8))  # img_size: the stored attn_mask buffers serve, nothing is computed
        assert len(calls) == 1
        # Each block computes its own mask when none is passed in (BasicSR's behaviour): same numbers.
        monkeypatch.setattr(network, "shift_mask", lambda size, device: None)
        fresh = network(image)
    assert len(calls) == 1 + 2  # one per shifted block (two RSTBs, one shifted block each)
    assert torch.equal(cached, fresh)


def test_swinir_shift_mask_cache_is_bounded():
    network = tiny_swinir()
    for height in range(12, 12 + 4 * (swinir.SHIFT_MASK_CACHE_SIZE + 2), 4):
        network.shift_mask((height, 8), torch.device("cpu"))
    assert len(network._shift_mask_cache) == swinir.SHIFT_MASK_CACHE_SIZE
    assert network.shift_mask((8, 8), torch.device("cpu")) is None  # img_size: the blocks' buffers serve


def test_swinir_mean_is_not_in_the_state_dict():
    network = tiny_swinir()
    assert "mean" not in network.state_dict() and "mean" in dict(network.named_buffers())


# ----------------------------------------------------------------------------------------------------
# Official RCAN / EDSR-PyTorch checkpoints


def edsr_pytorch_rcan_layout(num_feat: int, num_group: int, num_block: int, reduction: int, scale: int) -> dict:
    """Keys and shapes of the official RCAN model (EDSR-PyTorch style, as spandrel's RCAN defines it):
    sub_mean, add_mean, head.0, body.{g}.body.{b}.body.{0,2,3.conv_du.0,3.conv_du.2},
    body.{g}.body.{num_block}, body.{num_group}, tail.0.{i}, tail.1."""
    layout = edsr_pytorch_common_head(num_feat)
    squeezed = num_feat // reduction
    for group in range(num_group):
        for block in range(num_block):
            prefix = f"body.{group}.body.{block}.body"
            layout.update(
                {
                    f"{prefix}.0.weight": (num_feat, num_feat, 3, 3),
                    f"{prefix}.0.bias": (num_feat,),
                    f"{prefix}.2.weight": (num_feat, num_feat, 3, 3),
                    f"{prefix}.2.bias": (num_feat,),
                    f"{prefix}.3.conv_du.0.weight": (squeezed, num_feat, 1, 1),
                    f"{prefix}.3.conv_du.0.bias": (squeezed,),
                    f"{prefix}.3.conv_du.2.weight": (num_feat, squeezed, 1, 1),
                    f"{prefix}.3.conv_du.2.bias": (num_feat,),
                }
            )
        layout.update(
            {
                f"body.{group}.body.{num_block}.weight": (num_feat, num_feat, 3, 3),
                f"body.{group}.body.{num_block}.bias": (num_feat,),
            }
        )
    layout.update({f"body.{num_group}.weight": (num_feat, num_feat, 3, 3), f"body.{num_group}.bias": (num_feat,)})
    return layout | edsr_pytorch_tail(num_feat, scale)


def edsr_pytorch_edsr_layout(num_feat: int, num_block: int, scale: int) -> dict:
    """Keys and shapes of the official EDSR-PyTorch EDSR model."""
    layout = edsr_pytorch_common_head(num_feat)
    for block in range(num_block):
        for conv in (0, 2):
            layout.update(
                {
                    f"body.{block}.body.{conv}.weight": (num_feat, num_feat, 3, 3),
                    f"body.{block}.body.{conv}.bias": (num_feat,),
                }
            )
    layout.update({f"body.{num_block}.weight": (num_feat, num_feat, 3, 3), f"body.{num_block}.bias": (num_feat,)})
    return layout | edsr_pytorch_tail(num_feat, scale)


def edsr_pytorch_common_head(num_feat: int) -> dict:
    return {
        "sub_mean.weight": (3, 3, 1, 1),
        "sub_mean.bias": (3,),
        "add_mean.weight": (3, 3, 1, 1),
        "add_mean.bias": (3,),
        "head.0.weight": (num_feat, 3, 3, 3),
        "head.0.bias": (num_feat,),
    }


def edsr_pytorch_tail(num_feat: int, scale: int) -> dict:
    tail = {}
    steps = [(0, 9)] if scale == 3 else [(2 * step, 4) for step in range(int(math.log2(scale)))]
    for index, factor in steps:
        tail.update(
            {
                f"tail.0.{index}.weight": (factor * num_feat, num_feat, 3, 3),
                f"tail.0.{index}.bias": (factor * num_feat,),
            }
        )
    return tail | {"tail.1.weight": (3, num_feat, 3, 3), "tail.1.bias": (3,)}


def random_official_state_dict(layout: dict, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights in ``layout``; the mean-shift convs hold the official DIV2K shift on [0, 255]."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for key, shape in layout.items():
        noise = torch.randn(shape, generator=generator)
        state_dict[key] = noise / math.prod(shape[1:]) ** 0.5 if len(shape) == 4 else 0.1 * noise
    mean = torch.tensor(common.DIV2K_RGB_MEAN)
    for prefix, sign in (("sub_mean", -1), ("add_mean", 1)):
        state_dict[f"{prefix}.weight"] = torch.eye(3).view(3, 3, 1, 1)
        state_dict[f"{prefix}.bias"] = sign * 255 * mean
    return state_dict


def conv(x: torch.Tensor, state_dict: dict, name: str) -> torch.Tensor:
    weight = state_dict[f"{name}.weight"]
    return F.conv2d(x, weight, state_dict[f"{name}.bias"], padding=weight.shape[-1] // 2)


def official_tail(x: torch.Tensor, state_dict: dict, scale: int) -> torch.Tensor:
    steps = [(0, 3)] if scale == 3 else [(2 * step, 2) for step in range(int(math.log2(scale)))]
    for index, factor in steps:
        x = F.pixel_shuffle(conv(x, state_dict, f"tail.0.{index}"), factor)
    return conv(x, state_dict, "tail.1")


def official_rcan_forward(
    state_dict: dict, image: torch.Tensor, num_group: int, num_block: int, scale: int
) -> torch.Tensor:
    """The official RCAN forward (yulunzhang/RCAN, EDSR-PyTorch names), written functionally."""
    x = conv(image * 255, state_dict, "sub_mean")
    x = conv(x, state_dict, "head.0")
    features = x
    for group in range(num_group):
        group_input = features
        for block in range(num_block):
            prefix = f"body.{group}.body.{block}.body"
            residual = conv(F.relu(conv(features, state_dict, f"{prefix}.0")), state_dict, f"{prefix}.2")
            weights = F.adaptive_avg_pool2d(residual, 1)
            weights = torch.sigmoid(
                conv(F.relu(conv(weights, state_dict, f"{prefix}.3.conv_du.0")), state_dict, f"{prefix}.3.conv_du.2")
            )
            features = residual * weights + features
        features = conv(features, state_dict, f"body.{group}.body.{num_block}") + group_input
    features = conv(features, state_dict, f"body.{num_group}") + x
    return conv(official_tail(features, state_dict, scale), state_dict, "add_mean") / 255


def official_edsr_forward(
    state_dict: dict, image: torch.Tensor, num_block: int, scale: int, res_scale: float
) -> torch.Tensor:
    """The official EDSR-PyTorch forward, written functionally."""
    x = conv(conv(image * 255, state_dict, "sub_mean"), state_dict, "head.0")
    features = x
    for block in range(num_block):
        residual = conv(F.relu(conv(features, state_dict, f"body.{block}.body.0")), state_dict, f"body.{block}.body.2")
        features = features + residual * res_scale
    features = conv(features, state_dict, f"body.{num_block}") + x
    return conv(official_tail(features, state_dict, scale), state_dict, "add_mean") / 255


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_official_rcan_checkpoint_converts_loads_and_matches(scale):
    num_feat, num_group, num_block, reduction = 16, 2, 3, 4
    official = random_official_state_dict(
        edsr_pytorch_rcan_layout(num_feat, num_group, num_block, reduction, scale), scale
    )
    assert rcan.is_edsr_pytorch_layout(official) and not edsr.is_edsr_pytorch_layout(official)
    converted = rcan.convert_edsr_pytorch_state_dict(official, num_group=num_group, num_block=num_block)
    assert not rcan.is_edsr_pytorch_layout(converted)
    network = RCAN(
        3, 3, num_feat=num_feat, num_group=num_group, num_block=num_block, squeeze_factor=reduction, upscale=scale
    )
    network.load_state_dict(converted, strict=True)
    image = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            network.eval()(image),
            official_rcan_forward(official, image, num_group, num_block, scale),
            rtol=1e-5,
            atol=1e-5,
        )
    assert len(official) == len(converted) + 4  # only the mean shift is dropped


def test_rcan_x4_official_layout_converts_to_the_manifest():
    official = edsr_pytorch_rcan_layout(64, 10, 20, 16, 4)
    official = {key: torch.empty(shape, device="meta") for key, shape in official.items()}
    del official["sub_mean.weight"], official["sub_mean.bias"], official["add_mean.weight"], official["add_mean.bias"]
    converted = rcan.convert_edsr_pytorch_state_dict(official, num_group=10, num_block=20)
    assert sorted(shapes(converted)) == sorted(MANIFESTS[RCAN_MANIFEST]["state_dict"].items())


@pytest.mark.parametrize("scale, res_scale", [(2, 1.0), (3, 0.1), (4, 0.1)])
def test_official_edsr_checkpoint_converts_loads_and_matches(scale, res_scale):
    num_feat, num_block = 16, 3
    official = random_official_state_dict(edsr_pytorch_edsr_layout(num_feat, num_block, scale), scale)
    assert edsr.is_edsr_pytorch_layout(official) and not rcan.is_edsr_pytorch_layout(official)
    converted = edsr.convert_edsr_pytorch_state_dict(official, num_block=num_block)
    network = EDSR(3, 3, num_feat=num_feat, num_block=num_block, upscale=scale, res_scale=res_scale)
    network.load_state_dict(converted, strict=True)
    image = torch.rand(1, 3, 5, 9, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            network.eval()(image),
            official_edsr_forward(official, image, num_block, scale, res_scale),
            rtol=1e-5,
            atol=1e-5,
        )


def test_conversion_is_pure():
    official = random_official_state_dict(edsr_pytorch_edsr_layout(8, 1, 2), 0)
    keys = list(official)
    converted = edsr.convert_edsr_pytorch_state_dict(official, num_block=1)
    assert list(official) == keys
    assert converted["conv_first.weight"] is official["head.0.weight"]


@pytest.mark.parametrize(
    "mutate, error, fragment",
    [
        (
            lambda sd: sd.update({"body.0.body.0.body.9.weight": torch.zeros(1)}),
            KeyError,
            "body.0.body.0.body.9.weight",
        ),
        (lambda sd: sd.update({"module.head.0.weight": torch.zeros(1)}), KeyError, "module.head.0.weight"),
        (
            lambda sd: sd.update({"body.5.body.0.body.0.weight": torch.zeros(1)}),
            KeyError,
            "body.5.body.0.body.0.weight",
        ),
        (lambda sd: sd.__setitem__("sub_mean.bias", torch.zeros(3)), ValueError, "sub_mean.bias"),
        (
            lambda sd: sd.__setitem__("add_mean.weight", 2 * torch.eye(3).view(3, 3, 1, 1)),
            ValueError,
            "add_mean.weight",
        ),
        (lambda sd: sd.pop("add_mean.bias"), KeyError, "add_mean.weight"),
    ],
    ids=["unknown_layer", "prefixed", "group_beyond_num_group", "wrong_mean", "wrong_std", "unpaired_mean"],
)
def test_rcan_conversion_errors_name_the_key(mutate, error, fragment):
    official = random_official_state_dict(edsr_pytorch_rcan_layout(8, 2, 2, 4, 2), 0)
    mutate(official)
    with pytest.raises(error, match=fragment.replace(".", r"\.")):
        rcan.convert_edsr_pytorch_state_dict(official, num_group=2, num_block=2)


def test_rcan_conversion_with_wrong_block_count_names_a_key():
    official = random_official_state_dict(edsr_pytorch_rcan_layout(8, 2, 3, 4, 2), 0)
    with pytest.raises(KeyError, match=r"body\.0\.body\.2\.body\.0\.weight"):  # block 2 seen as the group conv
        rcan.convert_edsr_pytorch_state_dict(official, num_group=2, num_block=2)
    with pytest.raises(KeyError, match=r"body\.0\.body\.3\.weight"):  # the group conv seen as block 3
        rcan.convert_edsr_pytorch_state_dict(official, num_group=2, num_block=4)


def test_edsr_conversion_errors_name_the_key():
    official = random_official_state_dict(edsr_pytorch_edsr_layout(8, 2, 2), 0)
    with pytest.raises(KeyError, match=r"body\.1\.body\.0\.weight"):
        edsr.convert_edsr_pytorch_state_dict(official, num_block=1)
    official["sub_mean.bias"] = -torch.tensor([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"sub_mean\.bias"):
        edsr.convert_edsr_pytorch_state_dict(official, num_block=2)


def test_missing_key_is_named_by_strict_loading():
    official = random_official_state_dict(edsr_pytorch_rcan_layout(8, 1, 1, 4, 2), 0)
    del official["body.0.body.0.body.3.conv_du.2.bias"]
    converted = rcan.convert_edsr_pytorch_state_dict(official, num_group=1, num_block=1)
    network = RCAN(3, 3, num_feat=8, num_group=1, num_block=1, squeeze_factor=4, upscale=2)
    with pytest.raises(RuntimeError, match=r"body\.0\.residual_group\.0\.rcab\.3\.attention\.3\.bias"):
        network.load_state_dict(converted, strict=True)


def test_layout_detectors_reject_basicsr_layouts():
    assert not rcan.is_edsr_pytorch_layout(
        RCAN(3, 3, num_feat=8, num_group=1, num_block=1, squeeze_factor=4).state_dict()
    )
    assert not edsr.is_edsr_pytorch_layout(EDSR(3, 3, num_feat=8, num_block=1).state_dict())


# ----------------------------------------------------------------------------------------------------
# Constructor errors


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda: tiny_swinir(upsampler="bicubic"), "upsampler='bicubic'"),
        (lambda: tiny_swinir(resi_connection="2conv"), "resi_connection='2conv'"),
        (lambda: tiny_swinir(upsampler="nearest+conv", upscale=2), "upscale=2"),
        (lambda: tiny_swinir(upsampler="pixelshuffle", upscale=5), "upscale=5"),
        (lambda: tiny_swinir(depths=[2, 2], num_heads=[2]), "num_heads=[2]"),
        (lambda: tiny_swinir(embed_dim=8, num_heads=[3, 3]), "num_heads=3"),
        (lambda: RCAN(3, 3, upscale=6), "upscale=6"),
        (lambda: EDSR(3, 3, upscale=5), "upscale=5"),
        (lambda: EDSR(1, 1, rgb_mean=(0.1, 0.2, 0.3)), "rgb_mean has 3 values"),
    ],
)
def test_constructor_errors_name_the_option(build, fragment):
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        build()
