"""NAFNet and Restormer: equal to the official code on reference vectors, and the contract every backbone keeps.

Reference vectors: the shipped ``dckd/golden`` cases (nafnet_small, restormer_small) and the NAFNet set in
``tests/references/restoration_backbones`` written from the official NAFNet_arch.py by
``tools/references/make_restoration_backbones.py``. Restormer has no official source on this machine, so
beyond its shipped case it is pinned by properties (attention and norms against independent
formulations, padding against the official test-script procedure).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dckd.eval import selfcheck
from dckd.models.backbones import nafnet, restormer
from dckd.models.backbones.nafnet import LocalAvgPool2d, NAFNet, NAFNetLocal, to_local
from dckd.models.backbones.restormer import Attention, LayerNorm, Restormer, reflect_pad_bottom_right

GOLDEN = selfcheck.DEFAULT_DIR
GENERATED = Path(__file__).parent / "references" / "restoration_backbones"
MANIFEST_NAMES = {
    "nafnet_gopro_width32": "NAFNet-GoPro-width32 (teacher, deblurring)",
    "nafnet_width16": "NAFNet width16 (student; block split inferred from the paper's 2.7M count)",
    "restormer": "Restormer (teacher, deblurring/deraining)",
    "restormer_dim24": "Restormer dim24 (student; block split inferred from the paper's 3.8M count)",
}
# Parameter counts the spec gives (17.1M, 2.7M, 26.1M, 3.8M), to one decimal of a million.
PAPER_MILLIONS = {"nafnet_gopro_width32": 17.1, "nafnet_width16": 2.7, "restormer": 26.1, "restormer_dim24": 3.8}

SMALL_NAFNET = dict(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])
SMALL_RESTORMER = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8])


def preset_class(name: str) -> type[torch.nn.Module]:
    return NAFNet if name in nafnet.PRESETS else Restormer


def preset_config(name: str) -> dict:
    return (nafnet.PRESETS if name in nafnet.PRESETS else restormer.PRESETS)[name]


def randomised(network: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter a seeded non-trivial value: NAFNet's block scales start at zero, which would
    make every block an identity and hide both gradients and the TLC pooling."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.dim() == 4 and not name.endswith(("beta", "gamma")):
                parameter.copy_(noise / parameter[0].numel() ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.2 * noise)
    return network


def image(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ reference vectors


@pytest.mark.parametrize("name", ["nafnet_small", "restormer_small"])
def test_shipped_golden_case_matches_official(name: str) -> None:
    index = json.loads((GOLDEN / "index.json").read_text())
    result = selfcheck.check_network(GOLDEN, name, index[name])
    assert result.passed, f"{name}: max error {result.max_error:.3e} > {result.tolerance}"


def test_generated_nafnet_reference_set_passes() -> None:
    results = selfcheck.run_directory(GENERATED)
    assert len(results) >= 5, f"expected the generated NAFNet cases in {GENERATED}, found {len(results)}"
    failed = [f"{r.name}: {r.max_error:.3e} {r.detail}" for r in results if not r.passed]
    assert not failed, failed


# ------------------------------------------------------------------ presets


@pytest.mark.parametrize("name", list(MANIFEST_NAMES))
def test_preset_matches_manifest_key_for_key(name: str) -> None:
    manifest = json.loads((GOLDEN / "manifests.json").read_text())[MANIFEST_NAMES[name]]
    assert preset_config(name) == manifest["config"]
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        network = preset_class(name)(**preset_config(name))
    shapes = {key: list(value.shape) for key, value in network.state_dict().items()}
    assert shapes == manifest["state_dict"]
    millions = sum(parameter.numel() for parameter in network.parameters()) / 1e6
    assert round(millions, 1) == PAPER_MILLIONS[name]


@pytest.mark.parametrize("name", ["nafnet_width16", "restormer_dim24"])
def test_student_preset_runs_on_odd_size(name: str) -> None:
    network = preset_class(name)(**preset_config(name)).eval()
    with torch.no_grad():
        output = network(image((1, 3, 19, 13)))
    assert output.shape == (1, 3, 19, 13)
    assert torch.isfinite(output).all()


# ------------------------------------------------------------------ contract for both networks

NETWORKS = {
    "nafnet": lambda: NAFNet(**SMALL_NAFNET),
    "restormer": lambda: Restormer(**SMALL_RESTORMER),
    "restormer_biasfree": lambda: Restormer(**SMALL_RESTORMER, LayerNorm_type="BiasFree", bias=True),
}


@pytest.mark.parametrize("kind", list(NETWORKS))
@settings(max_examples=12, deadline=None)
@given(height=st.integers(1, 27), width=st.integers(1, 27), batch=st.integers(1, 2))
def test_any_size_gives_same_size_finite_output(kind: str, height: int, width: int, batch: int) -> None:
    network = randomised(NETWORKS[kind](), seed=1).eval()
    with torch.no_grad():
        output = network(image((batch, 3, height, width)))
    assert output.shape == (batch, 3, height, width)
    assert torch.isfinite(output).all()
    assert network.scale == 1


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_eval_output_is_deterministic(kind: str) -> None:
    network = randomised(NETWORKS[kind](), seed=2).eval()
    inputs = image((2, 3, 21, 14), seed=3)
    with torch.no_grad():
        assert torch.equal(network(inputs), network(inputs))


@pytest.mark.parametrize("kind", list(NETWORKS))
def test_gradients_reach_every_trainable_parameter(kind: str) -> None:
    network = randomised(NETWORKS[kind](), seed=4).train()
    output = network(image((1, 3, 13, 11), seed=5))
    (output - image((1, 3, 13, 11), seed=6)).pow(2).mean().backward()
    dead = [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("kind", ["nafnet", "restormer"])
@pytest.mark.parametrize("change", ["missing", "extra"])
def test_strict_loading_names_the_offending_key(kind: str, change: str) -> None:
    state = NETWORKS[kind]().state_dict()
    if change == "missing":
        key = "ending.bias" if kind == "nafnet" else "output.weight"
        del state[key]
    else:
        key = "intro.unexpected" if kind == "nafnet" else "patch_embed.unexpected"
        state[key] = torch.zeros(1)
    with pytest.raises(RuntimeError, match=key.replace(".", r"\.")):
        NETWORKS[kind]().load_state_dict(state, strict=True)


def test_restormer_rejects_unknown_layer_norm_type() -> None:
    with pytest.raises(ValueError, match="WithBais"):
        Restormer(**SMALL_RESTORMER, LayerNorm_type="WithBais")


def test_nafnet_rejects_unequal_level_counts() -> None:
    with pytest.raises(ValueError, match=r"enc_blk_nums \[1, 1\] and dec_blk_nums \[1\]"):
        NAFNet(width=8, enc_blk_nums=[1, 1], dec_blk_nums=[1])


# ------------------------------------------------------------------ padding


def test_nafnet_pads_with_zeros_right_and_bottom_then_crops() -> None:
    network = randomised(NAFNet(**SMALL_NAFNET), seed=7).eval()
    inputs = image((1, 3, 13, 18), seed=8)
    padded = F.pad(inputs, (0, 2, 0, 3))  # to 16 x 20, multiples of 2**2
    with torch.no_grad():
        assert torch.allclose(network(inputs), network(padded)[:, :, :13, :18], atol=1e-6)
    # Multiples of 2**levels are left untouched.
    assert torch.equal(network.check_image_size(padded), padded)
    assert network.check_image_size(inputs).shape == (1, 3, 16, 20)


def test_restormer_padding_is_a_no_op_on_multiples_of_8() -> None:
    network = randomised(Restormer(**SMALL_RESTORMER), seed=9).eval()
    inputs = image((1, 3, 16, 24), seed=10)
    with torch.no_grad():
        assert torch.equal(network(inputs), network.forward_unpadded(inputs))


def test_restormer_pads_like_the_official_test_scripts() -> None:
    network = randomised(Restormer(**SMALL_RESTORMER), seed=11).eval()
    inputs = image((1, 3, 13, 21), seed=12)
    # Official test.py: H, W up to the next multiple of 8, F.pad(..., 'reflect') right/bottom, crop back.
    official = F.pad(inputs, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        assert torch.allclose(network(inputs), network.forward_unpadded(official)[:, :, :13, :21], atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 9])
def test_reflect_padding_reaches_the_multiple_and_keeps_the_image(size: int) -> None:
    inputs = image((1, 2, size, size + 1), seed=13)
    pad_height, pad_width = (-size) % 8, (-(size + 1)) % 8
    padded = reflect_pad_bottom_right(inputs, pad_height, pad_width)
    assert padded.shape[-2:] == (size + pad_height, size + 1 + pad_width)
    assert torch.equal(padded[:, :, :size, : size + 1], inputs)
    if pad_height < size and pad_width < size + 1:  # where the one-call official reflection works
        assert torch.equal(padded, F.pad(inputs, (0, pad_width, 0, pad_height), mode="reflect"))


# ------------------------------------------------------------------ Restormer pieces against independent formulations


def test_restormer_attention_equals_per_head_formula() -> None:
    torch.manual_seed(14)
    attention = randomised(Attention(dim=12, num_heads=3, bias=True), seed=15)
    x = torch.randn(2, 12, 5, 7)
    with torch.no_grad():
        query, key, value = attention.qkv_dwconv(attention.qkv(x)).double().chunk(3, dim=1)
        heads = []
        for head in range(3):  # channels [4*head, 4*head + 4) form one head, as the official rearrange
            rows = slice(4 * head, 4 * head + 4)
            q = query[:, rows].flatten(2)  # (N, 4, H*W)
            k = key[:, rows].flatten(2)
            q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            weights = torch.softmax(torch.einsum("nip,njp->nij", q, k) * attention.temperature[head].double(), dim=-1)
            heads.append(torch.einsum("nij,njp->nip", weights, value[:, rows].flatten(2)))
        mixed = torch.cat(heads, 1).reshape(2, 12, 5, 7)
        expected = F.conv2d(mixed, attention.project_out.weight.double(), attention.project_out.bias.double())
        assert torch.allclose(attention(x).double(), expected, atol=1e-5)


def test_restormer_layer_norms_normalise_channels_per_pixel() -> None:
    x = torch.randn(2, 6, 4, 5) * 3 + 1
    with_bias = randomised(LayerNorm(6, "WithBias"), seed=16)
    bias_free = randomised(LayerNorm(6, "BiasFree"), seed=17)
    channels_last = x.permute(0, 2, 3, 1)  # (N, H, W, C), the layout F.layer_norm normalises
    expected = F.layer_norm(channels_last, (6,), with_bias.body.weight, with_bias.body.bias, eps=1e-5)
    expected = expected.permute(0, 3, 1, 2)
    with torch.no_grad():
        assert torch.allclose(with_bias(x), expected, atol=1e-5)
        # Bias-free: scaled by the standard deviation only, not centred.
        deviation = torch.sqrt(x.double().var(1, keepdim=True, unbiased=False) + 1e-5)
        expected_free = x.double() / deviation * bias_free.body.weight.double().view(1, -1, 1, 1)
        assert torch.allclose(bias_free(x).double(), expected_free, atol=1e-5)
    assert "body.bias" not in bias_free.state_dict()


def test_restormer_dual_pixel_task_maps_six_channels_to_three() -> None:
    network = Restormer(inp_channels=6, out_channels=3, dual_pixel_task=True, **SMALL_RESTORMER).eval()
    assert network.state_dict()["skip_conv.weight"].shape == (16, 8, 1, 1)
    with torch.no_grad():
        assert network(image((1, 6, 16, 16))).shape == (1, 3, 16, 16)


# ------------------------------------------------------------------ TLC (test-time local converter)


def naive_local_mean(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Official TLC pooling written pixel by pixel: every output pixel is the mean of the kernel window
    that is centred on it ((k-1)//2 before) and shifted to lie inside the map (the replicate padding)."""
    _, _, height, width = x.shape
    k1, k2 = min(kernel[0], height), min(kernel[1], width)
    out = torch.empty_like(x, dtype=torch.float64)
    for row in range(height):
        top = min(max(row - (k1 - 1) // 2, 0), height - k1)
        for column in range(width):
            left = min(max(column - (k2 - 1) // 2, 0), width - k2)
            out[:, :, row, column] = x[:, :, top : top + k1, left : left + k2].double().mean(dim=(-2, -1))
    return out


@pytest.mark.parametrize("kernel", [(3, 4), (6, 2), (7, 5), (2, 9)])
def test_local_pooling_equals_pixelwise_window_means(kernel: tuple[int, int]) -> None:
    x = torch.randn(2, 3, 7, 9)
    out = LocalAvgPool2d(kernel)(x)
    if kernel[0] >= 7 and kernel[1] >= 9:
        assert out.shape == (2, 3, 1, 1)
    else:
        assert out.shape == x.shape
        assert torch.allclose(out.double(), naive_local_mean(x, kernel), atol=1e-5)


def test_local_pooling_covering_the_map_is_global_pooling() -> None:
    x = torch.randn(1, 4, 6, 5)
    assert torch.equal(LocalAvgPool2d((6, 5))(x), F.adaptive_avg_pool2d(x, 1))


def test_tlc_kernels_are_one_and_a_half_training_feature_maps() -> None:
    """The official converter runs a training-size input and sets, per pooling layer, kernel =
    feature_side * int(1.5 * train_side) // train_side; record the feature sides with hooks and compare."""
    train_size = (1, 3, 30, 44)  # not a multiple of 4: the official dummy pass sees the padded 32 x 44
    network = NAFNet(**SMALL_NAFNET)
    seen: dict[str, tuple[int, int]] = {}  # block name -> (height, width) its pooling sees
    hooks = []
    for name, block in network.named_modules():
        if isinstance(block, nafnet.NAFBlock):

            def record(module: torch.nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                seen[name] = tuple(args[0].shape[-2:])

            hooks.append(block.sca[0].register_forward_hook(record))
    with torch.no_grad():
        network(torch.rand(train_size))
    for hook in hooks:
        hook.remove()
    to_local(network, train_size=train_size)
    blocks = {name: block for name, block in network.named_modules() if isinstance(block, nafnet.NAFBlock)}
    kernels = {name: block.sca[0].kernel_size for name, block in blocks.items()}
    assert len(kernels) == 5
    assert kernels == {name: (h * 45 // 30, w * 66 // 44) for name, (h, w) in seen.items()}
    assert kernels["encoders.0.0"] == (48, 66)  # full resolution: 1.5 x the padded 32 x 44 map
    assert kernels["middle_blks.0"] == (12, 16)  # 8 x 11 at the lowest level


def test_tlc_equals_plain_nafnet_up_to_one_and_a_half_training_size() -> None:
    plain = randomised(NAFNet(**SMALL_NAFNET), seed=18).eval()
    local = to_local(copy.deepcopy(plain), train_size=(1, 3, 32, 32))
    assert local.state_dict().keys() == plain.state_dict().keys()
    with torch.no_grad():
        for height, width in [(32, 32), (48, 40), (29, 45)]:  # padded sides <= 48 = 1.5 x 32
            inputs = image((1, 3, height, width), seed=height)
            assert torch.equal(local(inputs), plain(inputs)), (height, width)
        # Beyond 1.5x the windows no longer cover the maps and TLC uses local statistics.
        inputs = image((1, 3, 64, 64), seed=19)
        assert (local(inputs) - plain(inputs)).abs().max() > 1e-3


def test_tlc_loads_official_weights_and_fast_variant_agrees_at_training_size() -> None:
    plain = randomised(NAFNet(**SMALL_NAFNET), seed=20).eval()
    local = NAFNetLocal(**SMALL_NAFNET, train_size=(1, 3, 24, 24), fast_imp=True).eval()
    local.load_state_dict(plain.state_dict(), strict=True)
    with torch.no_grad():
        inputs = image((1, 3, 24, 24), seed=21)
        assert torch.equal(local(inputs), plain(inputs))
        large = local(image((1, 3, 60, 80), seed=22))
    assert large.shape == (1, 3, 60, 80) and torch.isfinite(large).all()
