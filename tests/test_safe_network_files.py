"""Networks read from files: a file never decides which code runs, its sizes are checked before anything is
allocated, its tensors must be what the architecture expects, and any path that is not a checkpoint file is
a one-line error (issue 11, sections 1 and 6)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_VQGAN, tiny_edsr, tiny_run_config, tiny_swinir, write_images
from file_tree import snapshot
from safetensors.torch import save_file

import dckd
from dckd.apps.cli import main
from dckd.config.schema import NetworkConfig
from dckd.engine.checkpoints import save_weights
from dckd.engine.setup import build_network, construct_network, network_from_weights, record_from_file
from dckd.errors import CheckpointError, ConfigError
from dckd.eval import selfcheck
from dckd.files.safe_pickle import Placeholder
from dckd.files.weights import read_checkpoint
from dckd.models.vqgan import VQGANEncoder, load_vqgan_encoder

ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def edsr_state(scale: int = 2) -> tuple[dict, dict]:
    record = tiny_edsr(scale=scale)
    torch.manual_seed(0)
    return construct_network(record["backbone"], record["options"]).state_dict(), record


def run_dckd(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dckd", *arguments], cwd=cwd, env=ENVIRONMENT, capture_output=True, text=True
    )


# ----------------------------------------------------------------------------------------------------
# 1. A file never names code


@pytest.mark.parametrize(
    "named, command",
    [
        ("evil:Thing", "test"),
        ("evil.sub:Thing", "infer"),
        ("this:Zen", "infer"),
        ("os:system", None),
        ("builtins:eval", None),
        ("subprocess:Popen", None),
    ],
)
def test_a_weights_record_naming_code_is_refused_and_never_imported(
    tmp_path: Path, named: str, command: str | None, monkeypatch, capsys
) -> None:
    """The record names a module in the working directory (which would leave a marker when imported), the stdlib
    module ``this`` (prints the Zen of Python when imported) or a callable: dckd imports none of them, exits 2
    and says which class the file names and what to pass. ``python -m dckd`` runs with the working directory on
    sys.path, so there an import would succeed."""
    (tmp_path / "evil").mkdir()
    payload = "import pathlib\npathlib.Path('IMPORTED').write_text('x')\nclass Thing: pass\n"
    (tmp_path / "evil.py").write_text(payload)
    (tmp_path / "evil" / "__init__.py").write_text(payload)
    (tmp_path / "evil" / "sub.py").write_text(payload)
    state, _ = edsr_state()
    save_weights(tmp_path / "weights.pth", state, None, {"backbone": named, "options": {}, "scale": 2})
    write_images(tmp_path / "images", 1, 12, 12)
    before = snapshot(tmp_path)
    arguments = {"test": ["test", "weights.pth", "bundled"], "infer": ["infer", "weights.pth", "images", "out"]}
    if command is not None:  # a fresh process, as a user runs it
        result = run_dckd(arguments[command], tmp_path)
        code, error, output = result.returncode, result.stderr, result.stdout
    else:
        monkeypatch.chdir(tmp_path)
        code = main(arguments["infer"])
        captured = capsys.readouterr()
        error, output = captured.err, captured.out
    assert code == 2, error
    assert f"holds the class '{named}'" in error and f"--backbone {named}" in error
    assert "Traceback" not in error and "Beautiful is better" not in output + error
    assert not (tmp_path / "IMPORTED").exists()
    assert snapshot(tmp_path) == before


def test_a_record_naming_a_users_class_loads_only_when_the_user_names_it(tmp_path: Path, monkeypatch) -> None:
    module = tmp_path / "users_nets.py"
    module.write_text(
        "import torch\n"
        "class Doubler(torch.nn.Module):\n"
        "    def __init__(self, channels=3):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(channels, channels * 4, 3, padding=1)\n"
        "    def forward(self, x):\n"
        "        return torch.nn.functional.pixel_shuffle(self.conv(x), 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    state = {"conv.weight": torch.zeros(12, 3, 3, 3), "conv.bias": torch.zeros(12)}
    path = tmp_path / "weights.pth"
    save_weights(path, state, None, {"backbone": "users_nets:Doubler", "options": {"channels": 3}, "scale": 2})
    monkeypatch.delitem(sys.modules, "users_nets", raising=False)
    with pytest.raises(CheckpointError, match=r"holds the class 'users_nets:Doubler'.*--backbone users_nets:Doubler"):
        network_from_weights(str(path))
    assert "users_nets" not in sys.modules
    network = dckd.load_network(path, backbone="users_nets:Doubler")  # the user names it: options from the file
    assert type(network).__name__ == "Doubler" and network(torch.zeros(1, 3, 5, 7)).shape == (1, 3, 10, 14)
    with pytest.raises(CheckpointError, match=r"holds the class 'users_nets:Doubler'"):
        network_from_weights(str(path), backbone="edsr", options=tiny_edsr()["options"])
    edsr_weights = tmp_path / "edsr.pth"
    save_weights(edsr_weights, edsr_state()[0], None, {**tiny_edsr(), "scale": 2})
    with pytest.raises(ConfigError, match=r"holds a 'edsr' network, but --backbone users_nets:Doubler names"):
        network_from_weights(str(edsr_weights), backbone="users_nets:Doubler")


def test_record_values_must_be_plain_data(tmp_path: Path) -> None:
    """An object in the record (the restricted unpickler turns it into an inert placeholder) is refused, and so
    are records of the wrong shape."""
    state, record = edsr_state()

    class NormLayer:  # pickled by reference: a global the weights-only loader refuses
        pass

    globals()["NormLayer"] = NormLayer
    NormLayer.__qualname__ = "NormLayer"
    path = tmp_path / "object.pth"
    torch.save({"params": state, "network": {"backbone": "edsr", "options": {"norm": NormLayer()}}}, path)
    with pytest.raises(CheckpointError, match=r"network option\.norm: a Placeholder\w* object"):
        network_from_weights(str(path))
    assert isinstance(read_checkpoint(path)["network"]["options"]["norm"], Placeholder)
    for bad, message in [
        (["edsr"], "is a list"),
        ({"backbone": 3}, "names no backbone"),
        ({"backbone": "edsr", "options": [1]}, "options are a list"),
        ({"backbone": "edsr", "options": {}, "scale": 0}, "scale is 0"),
        ({"backbone": "edsr", "options": {}, "code": "x"}, "unknown entries"),
        ({"backbone": "edsr", "options": {"num_feat": float("nan")}}, "not a finite number"),
        ({"backbone": "resnet50", "options": {}}, "unknown backbone 'resnet50'"),
    ]:
        with pytest.raises(CheckpointError, match=message):
            record_from_file(bad, "weights w.pth")


def test_distill_refuses_a_teacher_file_naming_a_class(tmp_path: Path) -> None:
    state, _ = edsr_state()
    path = tmp_path / "teacher.pth"
    save_weights(path, state, None, {"backbone": "os.path:join", "options": {}, "scale": 2})
    with pytest.raises(CheckpointError, match=r"holds the class 'os\.path:join'"):
        dckd.distill(construct_network("edsr", tiny_edsr()["options"]), str(path), "bundled", "logits")
    assert not (Path.cwd() / "runs" / "logits").exists()


class _Zen:
    """Pickled under the name ``this._Zen`` (see ``test_restricted_unpickler_never_imports``)."""

    def __reduce__(self):
        return (_Zen, ())


class _Eval:
    def __reduce__(self):
        return (eval, ("print('EVALUATED')",))


def test_restricted_unpickler_never_imports_or_calls_what_a_file_names(tmp_path: Path, monkeypatch) -> None:
    """Lightning-style checkpoints go through the restricted unpickler: a global naming the stdlib ``this`` or a
    module in the working directory becomes an inert placeholder (never imported); builtins.eval and os.system
    are refused. Loading runs in a fresh process whose working directory holds the hostile module."""
    fake = types.ModuleType("this")
    fake._Zen = _Zen
    _Zen.__module__, _Zen.__qualname__ = "this", "_Zen"
    monkeypatch.setitem(sys.modules, "this", fake)
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callback": _Zen()}, tmp_path / "zen.ckpt")
    _Zen.__module__, _Zen.__qualname__ = "hostile", "_Zen"
    monkeypatch.setitem(sys.modules, "hostile", types.SimpleNamespace(_Zen=_Zen))
    torch.save({"state_dict": {"w": torch.zeros(2)}, "callback": _Zen()}, tmp_path / "local.ckpt")
    monkeypatch.undo()
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Eval()}, tmp_path / "eval.ckpt")
    (tmp_path / "hostile.py").write_text("print('IMPORTED hostile')\nclass _Zen: pass\n")
    script = (
        "import sys\n"
        "from dckd.files.weights import read_checkpoint\n"
        "from dckd.errors import CheckpointError\n"
        "for name in ('zen.ckpt', 'local.ckpt', 'eval.ckpt'):\n"
        "    try:\n"
        "        content = read_checkpoint(name)\n"
        "        print(name, 'loaded', type(content['callback']).__name__, content['state_dict']['w'].shape)\n"
        "    except CheckpointError as error:\n"
        "        print(name, 'refused', error)\n"
        "print('modules', 'this' in sys.modules, 'hostile' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=ENVIRONMENT, capture_output=True, text=True
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 4, result.stdout
    assert "zen.ckpt loaded Placeholder torch.Size([2])" in lines
    assert "local.ckpt loaded Placeholder torch.Size([2])" in lines
    assert any(line.startswith("eval.ckpt refused") and "builtin__.eval, which can run code" in line for line in lines)
    assert "modules False False" in lines
    assert "Beautiful is better" not in result.stdout and "IMPORTED" not in result.stdout
    assert "EVALUATED" not in result.stdout


def test_vqgan_metadata_sizes_are_checked_before_anything_is_built(tmp_path: Path) -> None:
    """``vqgan_config`` in a codebook checkpoint picks the architecture: wrong types, absurd sizes and sizes that
    do not describe the file's tensors are errors naming the option, before the encoder is allocated."""
    torch.manual_seed(0)
    state = VQGANEncoder(**TINY_VQGAN).state_dict()
    huge = json.loads(json.dumps(TINY_VQGAN))
    huge["ddconfig"]["ch"] = 32 * 4096  # some hundred billion parameters
    cases = [
        ({**TINY_VQGAN, "embed_dim": 8.0}, r"embed_dim=8\.0: expected an integer"),
        ({**TINY_VQGAN, "ddconfig": "ch=32"}, r"ddconfig='ch=32': expected a mapping"),
        ({**TINY_VQGAN, "ddconfig": {**TINY_VQGAN["ddconfig"], "ch_mult": [1, -1]}}, r"ddconfig\.ch_mult"),
        ({**TINY_VQGAN, "ddconfig": {**TINY_VQGAN["ddconfig"], "ch": 33}}, r"ddconfig\.ch=33"),
        (huge, r"more than the 1,073,741,824"),
        ({**TINY_VQGAN, "n_embed": 64}, r"quantize\.embedding\.weight.*\(16, 8\).*\(64, 8\)"),
        ([1, 2], r"vqgan_config is a list"),
    ]
    for metadata, message in cases:
        path = tmp_path / "codebook.pth"
        torch.save({"state_dict": state, "vqgan_config": metadata}, path)
        with pytest.raises((CheckpointError, ConfigError), match=message):
            load_vqgan_encoder(path)
    as_integers = {key: value.to(torch.int32) for key, value in state.items()}
    torch.save({"state_dict": as_integers, "vqgan_config": TINY_VQGAN}, tmp_path / "integers.pth")
    with pytest.raises(CheckpointError, match=r"never cast silently.*encoder\.conv_in\.weight \(torch\.int32"):
        load_vqgan_encoder(tmp_path / "integers.pth")


@pytest.mark.parametrize("network_type", ["evil:Thing", "evil.Thing", "os.system"])
def test_a_published_options_file_cannot_name_a_network_class(
    tmp_path: Path, network_type: str, monkeypatch, capsys
) -> None:
    """BasicSR option files name networks by ``type``, mapped through a fixed table to dckd's backbones."""
    (tmp_path / "evil.py").write_text("import pathlib\npathlib.Path('IMPORTED').write_text('x')\nclass Thing: pass\n")
    options = {
        "name": "x",
        "model_type": "SRModel",
        "scale": 2,
        "network_g": {"type": network_type},
        "train": {"total_iter": 1, "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}},
    }
    (tmp_path / "train.yml").write_text(yaml.safe_dump(options))
    test_options = {
        "name": "x",
        "model_type": "SRModel",
        "scale": 2,
        "network_g": {"type": network_type},
        "path": {"pretrain_network_g": "weights.pth"},
        "datasets": {"test_1": {"type": "PairedImageDataset", "dataroot_gt": "gt", "dataroot_lq": "lq"}},
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_options))
    (tmp_path / "weights.pth").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = snapshot(tmp_path)
    assert main(["train", "train.yml", "--dry-run"]) == 2
    assert f"network_g.type: network type '{network_type}' is not supported" in capsys.readouterr().err
    assert main(["test", "test.yml"]) == 2  # a BasicSR test file too
    assert f"network_g.type: network type '{network_type}' is not supported" in capsys.readouterr().err
    assert "evil" not in sys.modules and snapshot(tmp_path) == before


def test_a_reference_index_cannot_name_files_outside_its_folder_or_absurd_sizes(tmp_path: Path) -> None:
    outside = tmp_path / "secret.safetensors"
    save_file({"input": torch.zeros(1, 3, 4, 4)}, str(outside))
    references = tmp_path / "references"
    references.mkdir()
    (references / "link.safetensors").symlink_to(outside)
    save_file(
        {"input": torch.zeros(1, 3, 8, 8), "output": torch.zeros(1, 3, 16, 16)}, str(references / "t.safetensors")
    )
    config = {**tiny_edsr()["options"], "num_feat": 1 << 20}
    index = {
        "absolute": {"kind": "rcan", "file": str(outside), "config": {}},
        "parent": {"kind": "rcan", "file": "../secret.safetensors", "config": {}},
        "link": {"kind": "rcan", "file": "link.safetensors", "config": {}},
        "huge": {"kind": "rcan", "file": "t.safetensors", "config": {**config, "num_group": 1, "num_block": 1}},
        "negative": {
            "kind": "swinir",
            "file": "t.safetensors",
            "config": tiny_swinir()["options"] | {"depths": [1, -1]},
        },
    }
    (references / "index.json").write_text(json.dumps(index))
    results = {result.name: result for result in selfcheck.run_directory(references)}
    for name in ("absolute", "parent", "link"):
        assert not results[name].passed and "outside the reference directory" in results[name].detail
    assert "more than the 1,073,741,824" in results["huge"].detail
    assert "depths=[1, -1]: item 1 is -1" in results["negative"].detail


# ----------------------------------------------------------------------------------------------------
# 6. Sizes checked before building; tensors of the right kind


@pytest.mark.parametrize(
    "backbone, options, message",
    [
        ("edsr", {"num_block": -3}, r"num_block=-3: expected an integer >= 1"),
        ("edsr", {"num_feat": 0}, r"num_feat=0: expected an integer >= 1"),
        ("edsr", {"num_feat": 1e6}, r"num_feat=1000000\.0: expected an integer"),
        ("edsr", {"num_feat": True}, r"num_feat=True"),
        ("edsr", {"res_scale": float("inf")}, r"res_scale=inf"),
        ("rcan", {"num_feat": 8, "squeeze_factor": 16}, r"squeeze_factor=16: must not exceed num_feat=8"),
        ("rcan", {"num_group": 0}, r"num_group=0"),
        ("swinir", {}, r"img_size=64 .*multiple of window_size=7"),
        ("swinir", {"depths": [2, 0], "num_heads": [2, 2], "img_size": 16, "window_size": 4}, r"depths=\[2, 0\]"),
        ("swinir", {"embed_dim": 10, "num_heads": [3], "depths": [1], "img_size": 8, "window_size": 8}, "must divide"),
        ("swinir", {"drop_path_rate": 1.5, "img_size": 8, "window_size": 8}, r"drop_path_rate=1\.5"),
        ("swinir", {"norm_layer": "torch.nn.LayerNorm", "img_size": 8, "window_size": 8}, r"norm_layer="),
        ("nafnet", {"enc_blk_nums": [1, -1], "dec_blk_nums": [1, 1]}, r"enc_blk_nums"),
        ("nafnet", {"width": 0}, r"width=0"),
        ("restormer", {"dim": 7}, r"dim=7: must be even"),
        ("restormer", {"heads": [1, 2, 4, 5]}, r"heads\[3\]=5"),
        ("edsr", {"num_feat": 1 << 20}, r"more than the 1,073,741,824 dckd builds"),
        ("vq_autoencoder", {"embed_dim": 8, "n_embed": 0, "ddconfig": TINY_VQGAN["ddconfig"]}, r"n_embed=0"),
    ],
)
def test_sizes_are_checked_before_anything_is_built(backbone: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_network(NetworkConfig(backbone=backbone, options=options), "student")


def test_a_run_with_a_negative_block_count_stops_before_writing(tmp_path: Path, image_folder: Path, capsys) -> None:
    raw = tiny_run_config(tmp_path, image_folder)
    raw["student"]["options"]["num_block"] = -3
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    before = snapshot(tmp_path)
    assert main(["train", str(tmp_path / "config.yaml")]) == 2
    assert "student: num_block=-3: expected an integer >= 1" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_record_that_does_not_fit_its_tensors_fails_before_allocating(tmp_path: Path) -> None:
    """num_feat 2048 with 8 blocks is 600M parameters (2.4 GB): the tiny tensors do not fit it, which is found on
    the meta device; the process never grows by gigabytes (measured in a fresh process)."""
    state, record = edsr_state()
    options = {**record["options"], "num_feat": 2048, "num_block": 8}
    save_weights(tmp_path / "weights.pth", state, None, {"backbone": "edsr", "options": options, "scale": 2})
    script = (
        "import resource, sys\n"
        "from dckd.apps.cli import main\n"
        "code = main(['test', 'weights.pth', 'bundled'])\n"
        "print('peak_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, 'code', code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=ENVIRONMENT, capture_output=True, text=True
    )
    assert "wrong shapes (checkpoint != network)" in result.stderr and "conv_first.weight" in result.stderr
    peak = int(result.stdout.split()[1])
    assert result.stdout.split()[-1] == "2" and peak < 1500, result.stdout


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.bool, torch.complex64])
def test_non_floating_weights_are_an_error_naming_the_key(tmp_path: Path, dtype: torch.dtype, capsys) -> None:
    state, record = edsr_state()
    state = {**state, "conv_last.weight": state["conv_last.weight"].to(dtype)}
    save_weights(tmp_path / "weights.pth", state, None, {**record, "scale": 2})
    assert main(["test", str(tmp_path / "weights.pth"), "bundled"]) == 2
    error = capsys.readouterr().err
    assert f"conv_last.weight ({dtype}, expected floating" in error and "never cast silently" in error
    with pytest.raises(CheckpointError, match=r"conv_last\.weight"):
        build_network(NetworkConfig(**{**tiny_edsr(), "checkpoint": str(tmp_path / "weights.pth")}), "teacher")


def test_an_integer_buffer_must_stay_an_integer(tmp_path: Path) -> None:
    record = tiny_swinir()
    network = construct_network(record["backbone"], record["options"])
    state = network.state_dict()
    key = next(key for key in state if key.endswith("relative_position_index"))
    save_weights(tmp_path / "w.pth", {**state, key: state[key].float() + 0.5}, None, {**record, "scale": 2})
    with pytest.raises(CheckpointError, match=rf"{key} \(torch\.float32, expected integer"):
        network_from_weights(str(tmp_path / "w.pth"))
    save_weights(tmp_path / "ok.pth", state, None, {**record, "scale": 2})
    assert network_from_weights(str(tmp_path / "ok.pth")).state_dict()[key].dtype == torch.int64


# ----------------------------------------------------------------------------------------------------
# Weights paths that are not checkpoint files


def _weights_variants(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    state, record = edsr_state()
    good = tmp_path / "good.pth"
    save_weights(good, state, None, {**record, "scale": 2})
    variants = {}
    folder = tmp_path / "folder.pth"
    folder.mkdir()
    variants["folder"] = (folder, "is a folder, not a file")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    variants["empty"] = (empty, r"is empty \(0 bytes\)")
    loop = tmp_path / "loop.pth"
    loop.symlink_to(tmp_path / "loop2.pth")
    (tmp_path / "loop2.pth").symlink_to(loop)
    variants["symlink loop"] = (loop, "cannot be opened .*(symbolic links|Too many levels)")
    dangling = tmp_path / "dangling.pth"
    dangling.symlink_to(tmp_path / "gone.pth")
    variants["dangling link"] = (dangling, "symbolic link to a missing file")
    fifo = tmp_path / "fifo.pth"
    os.mkfifo(fifo)
    variants["fifo"] = (fifo, "not a regular file")
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n" * 20)
    variants["text"] = (text, r"is not a PyTorch checkpoint \(it starts with b'thes'")
    png = tmp_path / "photo.pth"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    variants["png"] = (png, "is not a PyTorch checkpoint")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    variants["truncated"] = (truncated, "is truncated or not a PyTorch file")
    bad_zip = tmp_path / "zip.pth"
    bad_zip.write_bytes(b"PK\x03\x04" + bytes(100))
    variants["zip header only"] = (bad_zip, "is truncated or not a PyTorch file")
    safetensors = tmp_path / "garbage.safetensors"
    safetensors.write_bytes(b"\xff" * 64)
    variants["safetensors"] = (safetensors, "is not a readable safetensors file")
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    variants["a list"] = (listing, "expected a mapping of weights, got list")
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("name: x\n")
    variants["a yaml file"] = (yaml_file, "unsupported extension")
    return variants


def test_weights_paths_that_are_not_checkpoints_give_one_line_errors(tmp_path: Path, capsys) -> None:
    files = tmp_path / "files"
    files.mkdir()
    variants = _weights_variants(files)
    images = write_images(tmp_path / "images", 1, 12, 12)
    before = snapshot(tmp_path)
    for name, (path, message) in variants.items():
        for command in (
            ["test", str(path), "bundled", "--preset", "edsr_baseline_x2"],
            ["infer", str(path), str(images), str(tmp_path / "out"), "--preset", "edsr_baseline_x2"],
        ):
            assert main(command) == 2, name
            error = capsys.readouterr().err
            assert error.startswith("error: ") and str(path) in error, (name, error)
            assert re.search(message, error), (name, error)
    assert snapshot(tmp_path) == before
