"""``dckd export``: every backbone to every format, verified against PyTorch; failures leave no file.

Also the export code paths of the backbones (``dckd.models.padding.exporting()``): forced on in eager mode they
give the eager outputs (bit-identical padding; NAFNet-TLC pooling within rounding).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import dckd
import dckd.models.backbones.nafnet as nafnet
import dckd.models.backbones.restormer as restormer
import dckd.models.backbones.swinir as swinir
import dckd.models.padding as padding
from dckd.apps import export
from dckd.apps.cli import main
from dckd.engine.checkpoints import network_spec, save_weights
from dckd.errors import CheckpointError, ExportError
from dckd.eval.profile import photo_batch
from dckd.models.backbones import BACKBONES

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


def _export_benchmark():
    """benchmarks/export_backbones.py, whose tiny configurations the tests check (one list for both)."""
    spec = importlib.util.spec_from_file_location(
        "export_backbones", Path(__file__).resolve().parents[1] / "benchmarks" / "export_backbones.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIGS = _export_benchmark().TINY
TLC_TRAIN_SIZE = 16  # level-0 window 24: the checks include a 33x29 input, which takes the local branch


def build(name: str) -> torch.nn.Module:
    """A tiny backbone with fixed random weights; ``nafnet_tlc``: NAFNet after ``to_local``."""
    torch.manual_seed(0)
    network = BACKBONES[name.removesuffix("_tlc")](**CONFIGS[name.removesuffix("_tlc")])
    with torch.no_grad():  # NAFNet's beta/gamma start at zero, which makes its blocks the identity
        for parameter_name, parameter in network.named_parameters():
            if parameter_name.endswith(("beta", "gamma")):
                parameter.normal_(0, 0.5)
    if name.endswith("_tlc"):
        nafnet.to_local(network, train_size=(1, 3, TLC_TRAIN_SIZE, TLC_TRAIN_SIZE))
    return network.eval()


def record(name: str) -> dict:
    return {"backbone": name, "options": CONFIGS[name]}


def quiet(text: str) -> None:
    pass


# --------------------------------------------------------------------------------------------------
# The backbones' export paths equal their eager paths
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def force_exporting(monkeypatch):
    def force(value: bool) -> None:
        for module in (padding, swinir, restormer, nafnet):
            monkeypatch.setattr(module, "exporting", lambda: value)

    return force


def test_export_padding_equals_eager_padding_bit_for_bit(force_exporting) -> None:
    for size, multiple in itertools.product(range(1, 20), (2, 4, 7, 8)):
        image = torch.randn(1, 2, size, size + 3)
        force_exporting(False)
        eager = padding.pad_to_multiple(image, multiple)
        force_exporting(True)
        assert torch.equal(padding.pad_to_multiple(image, multiple), eager), (size, multiple)
        pad_height, pad_width = (-size) % multiple, (-(size + 3)) % multiple
        reflected = image.index_select(-1, padding.pad_indices(size + 3, pad_width, image.device, "reflect"))
        reflected = reflected.index_select(-2, padding.pad_indices(size, pad_height, image.device, "reflect"))
        assert torch.equal(reflected, restormer.reflect_pad_bottom_right(image, pad_height, pad_width))


def test_export_tlc_pooling_equals_eager_pooling(force_exporting) -> None:
    worst = 0.0
    for kernel in ((3, 5), (8, 8), (48, 48)):
        pool = nafnet.LocalAvgPool2d(kernel)
        for height, width in itertools.product((1, 2, 5, 13, 40), (1, 4, 9, 48, 50)):
            features = torch.randn(2, 3, height, width)
            force_exporting(False)
            eager = pool(features).expand(2, 3, height, width)
            force_exporting(True)
            worst = max(worst, (pool(features) - eager).abs().max().item())
    assert worst < 1e-5
    # float16: sums over a 300x300 map exceed float16's range (65504); the export path sums in float32
    ones = torch.ones(1, 2, 300, 300, dtype=torch.float16)
    force_exporting(True)
    assert torch.equal(nafnet.LocalAvgPool2d((384, 384))(ones), torch.ones_like(ones))
    assert not torch.isfinite(ones.cumsum(-1).cumsum(-2)).all()


@pytest.mark.parametrize("name", ["swinir", "restormer", "nafnet_tlc"])
def test_backbone_export_paths_equal_eager_outputs(name: str, force_exporting) -> None:
    network = build(name)
    for shape in ((1, 37, 45), (2, 64, 48), (1, 3, 3), (1, 16, 16), (1, 1, 9)):
        images = photo_batch(*shape)
        with torch.no_grad():
            force_exporting(False)
            eager = network(images)
            force_exporting(True)
            exported_path = network(images)
        if name == "nafnet_tlc":  # cumulative sums instead of adaptive_avg_pool2d in the global case
            assert (eager - exported_path).abs().max().item() < 1e-5, shape
        else:
            assert torch.equal(eager, exported_path), shape


# --------------------------------------------------------------------------------------------------
# Every backbone, every format
# --------------------------------------------------------------------------------------------------
FORMAT_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
CASES = [
    (name, format)
    for name in ("swinir", "rcan", "edsr", "nafnet", "nafnet_tlc", "restormer")
    for format in ("onnx", "torchscript", "safetensors")
    if not (name == "nafnet_tlc" and format == "safetensors")  # TLC is no weight: nothing to store
]


@pytest.mark.parametrize(("name", "format"), CASES)
def test_every_backbone_exports_and_verifies(name: str, format: str, tmp_path: Path) -> None:
    network = build(name)
    path = tmp_path / f"{name}{FORMAT_SUFFIX[format]}"
    result = export.export_network(network, path, format, record=record(name.removesuffix("_tlc")), say=quiet)
    assert path.is_file()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    assert result.max_difference <= export.TOLERANCE["float32"]
    shapes = [check.shape for check in result.checks]
    if format == "safetensors":
        assert result.max_difference == 0.0  # the same float32 weights, loaded by dckd's loader
        return
    assert len({shape[0] for shape in shapes}) == 2 and len({shape[2:] for shape in shapes}) == len(shapes)
    assert any(side % 2 for shape in shapes for side in shape[2:])  # odd sizes
    if name == "nafnet_tlc":  # one size beyond 1.5x the TLC training size: the local pooling branch
        assert any(min(shape[2:]) > 1.5 * TLC_TRAIN_SIZE for shape in shapes)
    if format == "onnx":
        model = onnx.load(str(path))
        dims = [dim.dim_param for dim in model.graph.input[0].type.tensor_type.shape.dim]
        assert dims[0] and dims[2] and dims[3]  # dynamic batch, height, width
        assert [entry.version for entry in model.opset_import if entry.domain == ""] == [17]


@pytest.mark.parametrize("name", ["swinir", "nafnet_tlc", "restormer"])
def test_half_onnx_export_verifies_within_the_float16_tolerance(name: str, tmp_path: Path) -> None:
    path = tmp_path / "half.onnx"
    result = export.export_network(build(name), path, "onnx", half=True, say=quiet)
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert result.tolerance == export.TOLERANCE["float16"] == 5e-3
    assert 0 < result.max_difference <= 5e-3


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_half_torchscript_and_safetensors(tmp_path: Path) -> None:
    network = build("edsr")
    result = export.export_network(network, tmp_path / "half.pt", "torchscript", half=True, say=quiet)
    assert 0 < result.max_difference <= 5e-3
    loaded = torch.jit.load(str(tmp_path / "half.pt"))
    assert loaded(photo_batch(1, 9, 11).half()).dtype == torch.float16
    path = tmp_path / "half.safetensors"
    export.export_network(network, path, "safetensors", record=record("edsr"), half=True, say=quiet)
    assert {tensor.dtype for tensor in load_file(str(path)).values()} == {torch.float16}


class ChannelLayerNorm(torch.nn.Module):
    """conv -> LayerNorm over channels -> conv: LayerNormalization has no ONNX form below opset 17."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm, self.out = (
            torch.nn.Conv2d(3, 4, 3, padding=1),
            torch.nn.LayerNorm(4),
            torch.nn.Conv2d(4, 3, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def test_the_dynamo_exporter_verifies_and_refuses_opsets_it_cannot_write(tmp_path: Path, capfd) -> None:
    pytest.importorskip("onnxscript")
    result = export.export_network(build("edsr"), tmp_path / "dynamo.onnx", "onnx", exporter="dynamo", say=quiet)
    assert result.opset == 18 and result.max_difference <= 1e-4
    assert sorted({check.shape[0] for check in result.checks}) == [1, 2]  # the batch stays dynamic
    # asked for 16, it keeps 18 when the conversion fails (and only logs it): dckd refuses the file
    with pytest.raises(ExportError, match="wrote opset 18 when opset 16 was asked.*--exporter torchscript"):
        export.export_network(ChannelLayerNorm(), tmp_path / "old.onnx", "onnx", exporter="dynamo", opset=16)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["dynamo.onnx"]
    assert "Traceback" not in capfd.readouterr().err  # the exporter's logged traceback is not shown


# --------------------------------------------------------------------------------------------------
# Failures: clear message, no file
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_an_export_that_bakes_the_input_size_fails_and_leaves_the_old_file(
    format: str, tmp_path: Path, monkeypatch
) -> None:
    network = build("nafnet_tlc")
    path = tmp_path / f"model{FORMAT_SUFFIX[format]}"
    path.write_bytes(b"the user's file")
    monkeypatch.setattr(nafnet, "exporting", lambda: False)  # the unpatched TLC pooling: branches on the size
    with pytest.raises(ExportError) as raised:
        export.export_network(network, path, format, overwrite=True, say=quiet)
    message = str(raised.value)
    assert "does not run on a 1x3x5x7 input" in message
    assert "nafnet.py" in message and "kernel_height >= height" in message  # the line that baked the size
    assert "The file was not written" in message
    assert path.read_bytes() == b"the user's file"
    assert [entry.name for entry in tmp_path.iterdir()] == ["model" + FORMAT_SUFFIX[format]]


class SizeBranch(torch.nn.Module):
    """A user network whose forward branches on the input size in Python."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2:
            x = x * 0.5
        return self.conv(x)


def test_a_silently_wrong_graph_is_caught_and_its_line_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    with pytest.raises(ExportError) as raised:
        export.export_network(SizeBranch(), tmp_path / "branch.onnx", "onnx", say=quiet)
    message = str(raised.value)
    assert "on a 2x3x64x48 input, more than the tolerance 0.0001" in message
    assert "At the traced size it differs by only" in message
    assert "`if x.shape[-1] % 2:`" in message
    assert list(tmp_path.iterdir()) == []


def test_a_zero_tolerance_fails_on_arithmetic_not_on_size(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="the cause is the arithmetic, not the input size"):
        export.export_network(build("rcan"), tmp_path / "exact.onnx", "onnx", tolerance=0.0, say=quiet)
    assert list(tmp_path.iterdir()) == []


def test_an_operation_without_an_onnx_form_is_named(tmp_path: Path, capfd) -> None:
    with pytest.raises(ExportError) as raised:
        export.export_network(build("swinir"), tmp_path / "old.onnx", "onnx", opset=13, say=quiet)
    message = str(raised.value)
    assert "'aten::scaled_dot_product_attention' to ONNX opset version 13" in message
    assert "try a higher --opset" in message
    assert list(tmp_path.iterdir()) == []
    printed = capfd.readouterr()
    assert "Torch IR graph" not in printed.out + printed.err  # the exporter's graph dump is not shown
    assert not torch._C._jit_is_onnx_log_enabled()  # nor left switched on (torch 2.13 leaves it on)


def test_fast_tlc_is_refused_before_any_work_and_tlc_is_no_weight(tmp_path: Path) -> None:
    network = nafnet.to_local(build("nafnet"), train_size=(1, 3, 16, 16), fast_imp=True)
    with pytest.raises(ExportError, match="fast_imp=True"):
        export.export_network(network, tmp_path / "fast.onnx", "onnx", say=quiet)
    with pytest.raises(ExportError, match="TLC pooling, which is no weight"):
        export.export_network(build("nafnet_tlc"), tmp_path / "tlc.safetensors", "safetensors", record=record("nafnet"))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# safetensors: metadata, and loading by dckd test / load_network / plain PyTorch
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def weights_file(tmp_path: Path) -> Path:
    network = build("edsr")
    path = tmp_path / "weights.pth"
    save_weights(path, network.state_dict(), None, record("edsr"))
    return path


def test_safetensors_round_trip_through_dckd_test_and_load_network(weights_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "student.safetensors"
    assert main(["export", str(weights_file), str(out)]) == 0
    assert "checked with dckd's loader" in capsys.readouterr().out
    with safe_open(str(out), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == "dckd-weights" and metadata["architecture"] == "edsr"
    assert json.loads(metadata["options"]) == CONFIGS["edsr"] and metadata["scale"] == "3"
    assert metadata["dckd_version"] == dckd.__version__ and "BasicSR" in metadata["key_layout"]
    loaded = dckd.load_network(out)
    images = photo_batch(1, 10, 13)
    with torch.no_grad():
        assert torch.equal(loaded(images), build("edsr")(images))
    # anyone with the architecture's code: plain keys, strict load
    plain = BACKBONES[metadata["architecture"]](**json.loads(metadata["options"]))
    plain.load_state_dict(load_file(str(out)), strict=True)
    for command in (["test", str(weights_file), "bundled"], ["test", str(out), "bundled"]):
        assert main([*command, "--json", str(tmp_path / f"{Path(command[1]).suffix[1:]}.json")]) == 0
    results = [json.loads((tmp_path / f"{suffix}.json").read_text()) for suffix in ("pth", "safetensors")]
    assert results[0]["datasets"] == results[1]["datasets"]


def test_cli_export_onnx_prints_the_checks(weights_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "student.onnx"
    assert main(["export", str(weights_file), str(out), "--opset", "18"]) == 0
    printed = capsys.readouterr().out
    assert "ONNX opset 18" in printed and "input 2x3x64x48" in printed and "<= tolerance 0.0001" in printed
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    output = session.run(None, {"input": photo_batch(3, 7, 9).numpy()})[0]
    assert output.shape == (3, 3, 21, 27)


def test_cli_export_protects_files_and_checks_its_options(weights_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "student.onnx"
    out.write_bytes(b"keep")
    assert main(["export", str(weights_file), str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    same = tmp_path / "weights.pth"  # the weights file itself, even with --overwrite
    assert main(["export", str(weights_file), str(same), "--format", "torchscript", "--overwrite"]) == 2
    assert "is the weights file being exported" in capsys.readouterr().err
    assert main(["export", str(weights_file), str(tmp_path / "x.bin")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["export", str(weights_file), str(tmp_path / "x.onnx"), "--format", "torchscript"]) == 2
    assert "must end with .pt" in capsys.readouterr().err
    assert main(["export", str(weights_file), str(tmp_path / "x.pt"), "--opset", "17"]) == 2
    assert "options of ONNX export" in capsys.readouterr().err
    assert main(["export", str(weights_file), str(tmp_path / "x.safetensors"), "--tlc", "64"]) == 2
    assert "--tlc changes no weight" in capsys.readouterr().err
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["student.onnx", "weights.pth"]


def test_safetensors_export_of_an_official_checkpoint_needs_the_preset(tmp_path: Path, capsys) -> None:
    network = BACKBONES["edsr"](**CONFIGS["edsr"])
    official = tmp_path / "official.pth"
    torch.save({"params": network.state_dict()}, official)
    out = tmp_path / "official.safetensors"
    assert main(["export", str(official), str(out)]) == 2  # no record: which network is it?
    assert "--preset" in capsys.readouterr().err and not out.exists()


def test_safetensors_metadata_is_read_strictly(tmp_path: Path) -> None:
    state = build("edsr").state_dict()
    plain = tmp_path / "plain.safetensors"  # from another tool: no dckd metadata, the architecture is unknown
    save_file(state, str(plain))
    assert network_spec(plain) is None
    broken = tmp_path / "broken.safetensors"
    metadata = {"format": "dckd-weights", "architecture": "edsr", "options": "{not json", "scale": "3"}
    save_file(state, str(broken), metadata=metadata)
    with pytest.raises(CheckpointError, match="broken.safetensors: metadata 'options'"):
        network_spec(broken)
    save_file(state, str(broken), metadata={**metadata, "options": "[1, 2]"})
    with pytest.raises(CheckpointError, match="must be a JSON object"):
        network_spec(broken)
    save_file(state, str(broken), metadata={"format": "dckd-weights", "architecture": "edsr"})
    with pytest.raises(CheckpointError, match="without options, scale"):
        network_spec(broken)
    with pytest.raises(CheckpointError, match="does not exist"):
        network_spec(tmp_path / "missing.safetensors")


def test_safetensors_in_the_original_layout_reads_back_and_refuses_edsr(tmp_path) -> None:
    """RCAN's original (EDSR-PyTorch) layout, the one spandrel reads: dckd loads it back with the same output."""
    import torch as _torch

    from dckd.apps.cli import main as cli_main
    from dckd.engine.checkpoints import save_weights
    from dckd.engine.setup import construct_network, network_from_weights

    options = {"num_feat": 16, "num_group": 2, "num_block": 1, "squeeze_factor": 4, "upscale": 2}
    _torch.manual_seed(0)
    network = construct_network("rcan", options).eval()
    weights = tmp_path / "weights.pth"
    save_weights(weights, network.state_dict(), None, {"backbone": "rcan", "options": options, "scale": 2})
    out = tmp_path / "rcan.safetensors"
    assert cli_main(["export", str(weights), str(out), "--layout", "original"]) == 0
    from safetensors.torch import load_file

    keys = set(load_file(str(out)))
    assert "head.0.weight" in keys and "sub_mean.weight" in keys and "conv_first.weight" not in keys
    loaded = network_from_weights(str(out)).eval()
    image = _torch.rand(1, 3, 11, 13)
    with _torch.no_grad():
        assert (loaded(image) - network(image)).abs().max() < 1e-5
    edsr_options = {"num_feat": 8, "num_block": 1, "upscale": 2}
    edsr = construct_network("edsr", edsr_options)
    edsr_weights = tmp_path / "edsr.pth"
    save_weights(edsr_weights, edsr.state_dict(), None, {"backbone": "edsr", "options": edsr_options, "scale": 2})
    assert cli_main(["export", str(edsr_weights), str(tmp_path / "edsr.safetensors"), "--layout", "original"]) == 2
    assert not (tmp_path / "edsr.safetensors").exists()
