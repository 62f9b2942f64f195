"""Options files of the published DCKD code (BasicSR format) become the equivalent dckd config, and run.

Two kinds of files:
- the reconstructions in tests/fixtures/published/ (written here, in the released key layout; one a user's
  RCAN x2 adaptation with keys dckd must report), which every run of the suite converts;
- the four released files themselves (super-SSS/DCKD, ``options/``), unchanged, in
  tests/fixtures/published/released/ (``$DCKD_PUBLISHED_OPTIONS`` points the tests at another copy). They run end to end for a few iterations on a tiny dataset in the files' own folder layout
  (``datasets/DIV2K/DIV2K_train_HR_sub`` ..., a meta-info list), with stand-in checkpoints whose key names are
  exactly the official ones (tests/fixtures/published/official_keys.json); the networks are shrunk with
  ``--set`` (the key names stay the official ones).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from conftest import structured_image
from PIL import Image

from dckd.apps.cli import main
from dckd.config import read_config
from dckd.config.loading import dump_yaml, read_yaml
from dckd.config.published import convert_published_options, is_published_options, is_published_test_options
from dckd.config.published_test import convert_published_test_options
from dckd.config.schema import config_from_dict
from dckd.engine.run_log import read_log
from dckd.engine.setup import construct_network, network_record
from dckd.errors import ConfigError
from dckd.models.vqgan import VQGANEncoder

REPOSITORY = Path(__file__).resolve().parent.parent
FIXTURES = REPOSITORY / "tests" / "fixtures" / "published"
SWINIR = FIXTURES / "train_DCKD_SwinIR_SRx4.yml"
RCAN = FIXTURES / "train_DCKD_RCAN_SRx2_blur.yml"
PUBLISHED = Path(os.environ.get("DCKD_PUBLISHED_OPTIONS", FIXTURES / "released"))
TRAINING_FILES = {scale: PUBLISHED / f"train_SwinIR_SRx{scale}_DCKD.yml" for scale in (2, 3, 4)}
TEST_FILE = PUBLISHED / "test_SwinIR.yml"


def needs_released(test):
    """The released files are part of the fixtures: a missing one is a failure, not a skip."""
    return test


MANIFESTS = json.loads((FIXTURES / "official_keys.json").read_text())["manifests"]


def convert(path: Path, **changes):
    raw = read_yaml(path)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    converted, notes = convert_published_options(raw, source=path.name)
    return config_from_dict(converted, source=path.name), notes


# --------------------------------------------------------------------------------------------------
# Conversion of the reconstructions (always run)
# --------------------------------------------------------------------------------------------------
def test_detection_tells_published_files_from_dckd_configs() -> None:
    assert is_published_options(read_yaml(SWINIR)) and is_published_options(read_yaml(RCAN))
    assert not is_published_test_options(read_yaml(SWINIR))
    assert not is_published_options(read_yaml(REPOSITORY / "configs" / "sr" / "swinir_x4_dckd.yaml"))


def test_released_layout_maps_to_the_dckd_star_options() -> None:
    config, notes = convert(SWINIR)
    assert config.method == "dckd" and config.name == "DCKD_SwinIR_SRx4_DIV2K_from_SwinIR-M"
    assert config.student.preset == "swinir_s_x4" and config.teacher.preset == "swinir_m_x4"
    assert config.teacher.checkpoint == "pretrained/001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth"
    assert config.teacher.checkpoint_key == "params"
    assert config.vqgan.checkpoint == "pretrained/vqgan_imagenet_f16_1024/ckpts/last.ckpt"
    assert (config.vqgan.embed_dim, config.vqgan.n_embed, config.vqgan.ddconfig["ch_mult"]) == (
        256,
        1024,
        [1, 1, 2, 2, 4],
    )
    data = config.data
    assert (data.task, data.scale, data.lq_patch_size, data.batch_size, data.num_workers, data.augment) == (
        "sr",
        4,
        48,
        64,
        6,
        True,
    )
    assert (data.train.kind, data.train.gt_dir, data.train.lq_dir, data.train.filename_template) == (
        "paired",
        "datasets/DIV2K/DIV2K_train_HR",
        "datasets/DIV2K/DIV2K_train_LR_bicubic/X4",
        "{}x4",
    )
    assert [spec.name for spec in data.validation] == ["Set5", "Set14", "Urban100"]
    assert (config.schedule.name, tuple(config.schedule.milestones_iters), config.schedule.gamma) == (
        "multistep",
        (250000,),
        0.5,
    )
    assert (config.train.total_iters, config.train.ema_decay, config.train.log_every_iters) == (250000, 0.999, 100)
    dckd = config.dckd
    assert (dckd.kd_weight, dckd.contrastive_weight, dckd.codebook_weight, dckd.lcr_weight) == (1.0, 0.1, 0.001, 1.0)
    assert dckd.num_negatives == 5 and dckd.include_clean_negative and tuple(dckd.degradations) == ("noise",)
    assert (dckd.negative_sampling, dckd.blur_probability, dckd.resize_probability, dckd.noise_probability) == (
        "released",
        0.0,
        0.0,
        1.0,
    )
    assert dckd.gray_noise_probability == 0.5
    history = dckd.history
    assert (history.decay, history.source, history.initial_interval_iters, history.interval_growth_iters) == (
        0.1,
        "ema",
        1000,
        1000,
    )
    assert (dckd.codebook_formula, dckd.vqgan_input_range, dckd.lcr_side, dckd.lcr_probability) == (
        "released",
        "zero_one",
        "teacher",
        0.5,
    )
    text = "\n".join(notes)
    assert "batch_size_per_gpu 16 x num_gpu 4 = data.batch_size 64" in text and "strict=False" in text
    assert "not understood" not in text and "ignored" not in text


def test_a_users_adaptation_reads_released_defaults_and_reports_unknown_keys() -> None:
    config, notes = convert(RCAN)
    assert config.student.preset == "rcan_student_x2" and config.teacher.preset == "rcan_x2"
    assert (config.data.scale, config.data.lq_patch_size, config.data.batch_size, config.train.seed) == (2, 48, 16, 10)
    assert config.data.train.meta_info_file == "basicsr/data/meta_info/meta_info_DIV2K800sub_GT.txt"
    assert config.vqgan.ddconfig["z_channels"] == 256  # flat ddconfig keys are read too
    dckd = config.dckd
    # gaussian_blur_prob is absent: the released default 1.0 (every copy blurred); noise on half of the copies.
    assert dckd.num_negatives == 3 and tuple(dckd.degradations) == ("blur", "noise")
    assert (dckd.blur_probability, dckd.resize_probability, dckd.noise_probability) == (1.0, 0.0, 0.5)
    assert (dckd.history.initial_interval_iters, dckd.history.interval_growth_iters) == (500, 500)
    assert dckd.lcr_weight == 0.0 and not config.train.tensorboard
    unknown = sorted(note.split(":")[0] for note in notes if note.endswith("not understood; ignored"))
    assert unknown == ["train.cl_opt.temperature", "train.use_grad_clip"]
    text = "\n".join(notes)
    assert "strict_load_t" in text and "save_img" in text and "released defaults used for the absent" in text
    assert "fails at iteration" not in text  # 250k iterations lie within the three 100k stages of train.step
    _, longer = convert(RCAN, train__total_iter=400000)
    assert any("the released code fails at iteration 300001, dckd continues" in note for note in longer)


def test_released_defaults_apply_only_when_a_key_is_absent() -> None:
    raw = read_yaml(SWINIR)
    for key in (
        "num_neg",
        "update_decay",
        "gaussian_blur_prob",
        "resize_prob",
        "gaussian_noise_prob",
        "gray_noise_prob",
    ):
        raw["train"].pop(key)
    raw["train"]["noisy"] = {}
    converted, notes = convert_published_options(raw, "absent.yml")
    dckd = config_from_dict(converted).dckd
    assert dckd.num_negatives == 5 and dckd.history.decay == 0.1 and dckd.lcr_probability == 0.5
    assert tuple(dckd.degradations) == ("blur",) and dckd.blur_probability == 1.0  # the released blur default
    assert (dckd.resize_probability, dckd.noise_probability, dckd.gray_noise_probability) == (0.0, 0.0, 0.0)
    # Values equal to a dckd default are still the file's: change them and the config follows.
    changed, _ = convert(SWINIR, train__update_decay=0.3, train__gray_noise_prob=0.2, train__noisy={"prob": 0.7})
    assert (changed.dckd.history.decay, changed.dckd.gray_noise_probability, changed.dckd.lcr_probability) == (
        0.3,
        0.2,
        0.7,
    )


def test_what_the_released_code_cannot_run_is_an_error_naming_the_key() -> None:
    cases = {
        "train.step: missing or empty": {"train__step": None},
        r"train.step: \[1000, 1500, 3000\]: dckd's history schedule grows linearly": {
            "train__step": [1000, 1500, 3000]
        },
        "network_his: train.cl_opt needs the history model": {"network_his": None},
        "train.noisy: train.lcr_opt needs train.noisy": {"train__noisy": None},
        r"train.cl_opt.d_func: 'L2'": {"train__cl_opt": {**read_yaml(SWINIR)["train"]["cl_opt"], "d_func": "L2"}},
        "train.cl_opt.weights: expected 5 layer weights": {
            "train__cl_opt": {**read_yaml(SWINIR)["train"]["cl_opt"], "weights": [1.0]}
        },
        "all 0 with num_neg 4": {"train__gaussian_noise_prob": 0},
        r"train.resize_prob: a probability must be in \[0, 1\]": {"train__resize_prob": 1.5},
        "train.perceptual_opt: a perceptual loss is not supported": {
            "train__perceptual_opt": {"type": "PerceptualLoss"}
        },
        "model_type: 'GANModel' is not supported": {"model_type": "GANModel"},
        "train.scheduler.type: 'StepLR' is not supported": {"train__scheduler": {"type": "StepLR"}},
    }
    for message, changes in cases.items():
        with pytest.raises(ConfigError, match=message):
            convert(SWINIR, **changes)
    without_contrast = {"train__cl_opt": None, "train__ce_opt": None}
    with pytest.raises(ConfigError, match="network_his: a history model without train.cl_opt"):
        convert(SWINIR, **without_contrast)
    config, notes = convert(SWINIR, network_his=None, **without_contrast)
    assert config.dckd.contrastive_weight == 0.0 and config.vqgan is None
    assert any(note.startswith("train.num_neg: read by the released code only with train.cl_opt") for note in notes)


def test_absent_loss_sections_turn_their_terms_off_and_srmodel_is_scratch() -> None:
    config, _ = convert(SWINIR, train__lcr_opt=None, train__noisy=None, train__ce_opt=None)
    assert config.dckd.lcr_weight == 0.0 and config.dckd.codebook_weight == 0.0
    config, notes = convert(SWINIR, model_type="SRModel")
    assert config.method == "scratch" and config.teacher is None
    assert any("SRModel" in note for note in notes)


def test_a_non_preset_network_keeps_its_parameters() -> None:
    network = {**read_yaml(SWINIR)["network_g"], "embed_dim": 48}
    config, _ = convert(SWINIR, network_g=network)
    assert config.student.preset is None and config.student.backbone == "swinir"
    assert config.student.options["embed_dim"] == 48 and config.student.options["depths"] == [6, 6, 6, 6]
    with pytest.raises(ConfigError, match="network_t.window: SwinIR takes no parameter 'window'"):
        convert(SWINIR, network_t={**copy.deepcopy(network), "window": 8})


def test_set_applies_after_the_conversion_and_dry_run_reloads(capsys) -> None:
    config = read_config(str(SWINIR), ["train.total_iters=10", "data.train.gt_dir=/data/HR", "dckd.num_negatives=3"])
    assert (config.train.total_iters, config.data.train.gt_dir, config.dckd.num_negatives) == (10, "/data/HR", 3)
    assert any(line.startswith("note: batch:") for line in capsys.readouterr().err.splitlines())
    assert main(["train", str(SWINIR), "--dry-run"]) == 0
    captured = capsys.readouterr()
    printed = yaml.safe_load(captured.out)
    assert printed["method"] == "dckd" and printed["dckd"]["noise_probability"] == 1.0
    # The printed config is a dckd config that reloads to the same config.
    assert config_from_dict(printed) == config_from_dict(convert_published_options(read_yaml(SWINIR))[0])
    assert captured.out == dump_yaml(config_from_dict(printed))


# --------------------------------------------------------------------------------------------------
# The released files themselves
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_training_file_resolves_with_its_own_values(scale: int, capsys) -> None:
    path = TRAINING_FILES[scale]
    assert main(["train", str(path), "--dry-run"]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert not [note for note in notes if "ignored" in note or "not understood" in note]
    config = config_from_dict(yaml.safe_load(captured.out))
    raw = read_yaml(path)
    train, dckd = raw["train"], config.dckd
    assert (config.name, config.method, config.train.seed) == (raw["name"], "dckd", raw["manual_seed"])
    assert (config.student.preset, config.teacher.preset) == (f"swinir_s_x{scale}", f"swinir_m_x{scale}")
    assert config.teacher.checkpoint == raw["path"]["pretrain_network_t"]
    assert config.vqgan.checkpoint == raw["path"]["pretrain_network_vqgan"]
    assert (config.data.batch_size, config.data.lq_patch_size, config.data.num_workers) == (
        raw["datasets"]["train"]["batch_size_per_gpu"] * raw["num_gpu"],
        raw["datasets"]["train"]["gt_size"] // scale,
        raw["datasets"]["train"]["num_worker_per_gpu"],
    )
    assert config.data.train.meta_info_file == raw["datasets"]["train"]["meta_info_file"]
    assert [spec.name for spec in config.data.validation] == ["Set5", "Set14", "Urban100"]
    assert (dckd.num_negatives, dckd.history.decay) == (train["num_neg"] + 1, train["update_decay"])
    assert [dckd.history.initial_interval_iters + k * dckd.history.interval_growth_iters for k in range(3)] == train[
        "step"
    ]
    assert (dckd.blur_probability, dckd.resize_probability, dckd.noise_probability, dckd.gray_noise_probability) == (
        train["gaussian_blur_prob"],
        train["resize_prob"],
        train["gaussian_noise_prob"],
        train["gray_noise_prob"],
    )
    assert dckd.negative_sampling == "released" and tuple(dckd.degradations) == ("noise",)
    assert (dckd.lcr_weight, dckd.lcr_probability, dckd.contrastive_weight, dckd.codebook_weight) == (
        train["lcr_opt"]["loss_weight"],
        train["noisy"]["prob"],
        train["cl_opt"]["loss_weight"],
        train["ce_opt"]["loss_weight"],
    )
    assert list(dckd.layer_weights) == train["cl_opt"]["weights"]
    assert (config.train.total_iters, config.train.validate_every_iters, config.train.log_every_iters) == (
        250000,
        5000,
        1000,
    )
    assert (config.evaluation.crop_border, config.evaluation.y_channel) == (scale, True)


def test_the_test_file_is_refused_by_train_with_the_command_to_run(capsys) -> None:
    assert main(["train", str(TEST_FILE), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert "is a BasicSR test options file" in error and f"dckd test {TEST_FILE}" in error
    options, notes = convert_published_test_options(read_yaml(TEST_FILE), "test_SwinIR.yml")
    assert options.network.preset == "swinir_s_x2" and options.scale == 2
    assert [spec.name for spec in options.datasets] == ["Set5", "Set14", "B100", "Urban100"]
    assert (options.crop_border, options.y_channel) == (2, True)
    assert not [note for note in notes if "ignored" in note]


# --------------------------------------------------------------------------------------------------
# End to end, in the files' own folder layout
# --------------------------------------------------------------------------------------------------
SHRINK = {"embed_dim": 12}  # SwinIR widths; depths, heads and window stay, so every key name is the official one
TINY_VQGAN = {"embed_dim": 8, "n_embed": 16, "ch": 32, "z_channels": 8}  # ch_mult, res blocks, attention unchanged


def _write(path: Path, height: int, width: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(structured_image(height, width, seed)).save(path)


def _manifest(prefix: str) -> dict:
    return next(value for name, value in MANIFESTS.items() if name.startswith(prefix))


def _stand_in(preset_manifest: str, options: dict, path: Path, entries: tuple[str, ...]) -> None:
    """A checkpoint with exactly the official key names (shapes shrunk by ``options``)."""
    manifest = _manifest(preset_manifest)
    network = construct_network("swinir", {**manifest["config"], **options})
    state = network.state_dict()
    assert sorted(state) == sorted(manifest["state_dict"]), "the stand-in's keys must be the official ones"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({entry: {key: value.clone() for key, value in state.items()} for entry in entries}, path)


def _released_layout(root: Path, raw: dict, scale: int) -> None:
    """Tiny images where the file expects them, a meta-info list, stand-in checkpoints."""
    train = raw["datasets"]["train"]
    listed = ["0001_s001.png", "0001_s002.png", "0002_s001.png"]
    for index, name in enumerate(listed):
        _write(root / train["dataroot_gt"] / name, 20 * scale, 20 * scale, index)
        _write(root / train["dataroot_lq"] / name, 20, 20, index + 10)
    # Not listed, and not an image: the released code never reads it, neither may dckd.
    (root / train["dataroot_gt"] / "0003_s001.png").write_bytes(b"not an image")
    meta = root / train["meta_info_file"]
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text("".join(f"{name} ({20 * scale},{20 * scale},3)\n" for name in listed))
    for key, dataset in raw["datasets"].items():
        if key == "train":
            continue
        stem = "img_001"
        _write(root / dataset["dataroot_gt"] / f"{stem}.png", 12 * scale, 10 * scale, 3)
        _write(root / dataset["dataroot_lq"] / f"{dataset['filename_tmpl'].format(stem)}.png", 12, 10, 4)
    _stand_in(f"SwinIR-M_x{scale}", SHRINK, root / raw["path"]["pretrain_network_t"], ("params",))
    torch.manual_seed(0)
    ddconfig = {**raw["network_vqgan"]["ddconfig"], "ch": TINY_VQGAN["ch"], "z_channels": TINY_VQGAN["z_channels"]}
    encoder = VQGANEncoder(TINY_VQGAN["embed_dim"], TINY_VQGAN["n_embed"], ddconfig)
    state = encoder.state_dict()
    assert sorted(state) == sorted(_manifest("VQGAN")["state_dict"])
    # taming's last.ckpt also holds the decoder and the loss network: present here too, not used.
    state.update({"decoder.conv_in.weight": torch.zeros(1), "loss.logvar": torch.zeros(())})
    path = root / raw["path"]["pretrain_network_vqgan"]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "global_step": 0}, path)


def _shrink_overrides() -> list[str]:
    overrides = [f"teacher.options.{key}={value}" for key, value in SHRINK.items()]
    overrides += [f"student.options.{key}={value}" for key, value in SHRINK.items()]
    overrides += [f"vqgan.{key}={TINY_VQGAN[key]}" for key in ("embed_dim", "n_embed")]
    overrides += [f"vqgan.ddconfig.{key}={TINY_VQGAN[key]}" for key in ("ch", "z_channels")]
    overrides += ["data.batch_size=2", "data.lq_patch_size=16", "data.num_workers=0", "train.total_iters=2"]
    overrides += ["train.tensorboard=false", "dckd.history.initial_interval_iters=1"]
    return [item for override in overrides for item in ("--set", override)]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_training_file_runs_end_to_end(scale: int, tmp_path: Path, monkeypatch, capsys) -> None:
    raw = read_yaml(TRAINING_FILES[scale])
    _released_layout(tmp_path, raw, scale)
    monkeypatch.chdir(tmp_path)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert main(["train", str(TRAINING_FILES[scale]), *_shrink_overrides()]) == 0, capsys.readouterr().err
    run_dir = tmp_path / "runs" / raw["name"]
    assert (run_dir / "weights.pth").is_file()
    records = read_log(run_dir / "log.jsonl")
    trained = [record for record in records if "contrastive" in record]
    assert trained and {"reconstruction", "kd", "lcr", "contrastive", "codebook"} <= set(trained[-1])
    assert any(record.get("history_updates") for record in records)
    validated = [record["validation"] for record in records if "validation" in record]
    assert validated and sorted(validated[-1]) == ["Set14", "Set5", "Urban100"]  # the files' validation sets
    config = read_config(run_dir / "config.yaml")
    assert config.data.train.meta_info_file == str(tmp_path / raw["datasets"]["train"]["meta_info_file"])
    assert config.dckd.noise_probability == 1.0 and config.dckd.num_negatives == raw["train"]["num_neg"] + 1
    # Nothing outside the run folder changed.
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file() and run_dir not in path.parents}
    assert after == before


def test_missing_checkpoint_names_its_role_and_key(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(TRAINING_FILES[4])]) == 2
    error = capsys.readouterr().err
    assert "error: teacher checkpoint (path.pretrain_network_t) experiments/pretrained_models/SwinIR/" in error
    assert "does not exist" in error and str(tmp_path) in error
    assert not (tmp_path / "runs").exists()
    raw = read_yaml(TRAINING_FILES[4])
    _stand_in("SwinIR-M_x4", SHRINK, tmp_path / raw["path"]["pretrain_network_t"], ("params",))
    assert main(["train", str(TRAINING_FILES[4])]) == 2
    assert "error: VQGAN checkpoint (path.pretrain_network_vqgan) experiments/pretrained_models/VQGAN/" in (
        capsys.readouterr().err
    )
    assert main(["test", str(TEST_FILE)]) == 2
    assert "error: network checkpoint (path.pretrain_network_g) experiments/" in capsys.readouterr().err


def test_released_test_file_runs_with_dckd_test(tmp_path: Path, monkeypatch, capsys) -> None:
    raw = read_yaml(TEST_FILE)
    for index, dataset in enumerate(raw["datasets"].values()):
        for number, (height, width) in enumerate([(12, 10), (9, 13)]):  # sides not multiples of the window
            stem = f"img_{number}"
            _write(Path(tmp_path / dataset["dataroot_gt"] / f"{stem}.png"), 2 * height, 2 * width, index + number)
            lq = tmp_path / dataset["dataroot_lq"] / f"{dataset['filename_tmpl'].format(stem)}.png"
            _write(lq, height, width, index + number + 20)
    weights = tmp_path / raw["path"]["pretrain_network_g"]
    torch.manual_seed(0)
    _stand_in("SwinIR-S_x2", {}, weights, ("params_ema",))  # full size: the DCKD student, x2
    checkpoint = torch.load(weights)
    checkpoint["params"] = {
        key: torch.randn_like(value) if value.is_floating_point() else value
        for key, value in checkpoint["params_ema"].items()
    }
    torch.save(checkpoint, weights)  # param_key_g: params_ema must be the entry evaluated
    monkeypatch.chdir(tmp_path)
    assert main(["test", str(TEST_FILE), "--json", "from_file.json"]) == 0
    from_file = json.loads((tmp_path / "from_file.json").read_text())
    assert list(from_file["datasets"]) == ["Set5", "Set14", "B100", "Urban100"]
    assert from_file["protocol"]["crop_border"] == 2 and from_file["protocol"]["y_channel"] is True
    # The same numbers as the weights form of the command on the same folders and entry.
    folder = tmp_path / "datasets" / "Benchmark_SR" / "Set14"
    assert (
        main(
            ["test", str(weights), str(folder), "--preset", "swinir_s_x2", "--checkpoint-key", "params_ema"]
            + ["--json", "direct.json"]
        )
        == 0
    )
    direct = json.loads((tmp_path / "direct.json").read_text())
    assert direct["datasets"]["Set14"]["psnr"] == pytest.approx(from_file["datasets"]["Set14"]["psnr"], abs=1e-9)
    assert all(value["psnr"] > 0 for value in from_file["datasets"].values())
    assert main(["test", str(TEST_FILE), str(folder)]) == 2
    assert "drop datasets" in capsys.readouterr().err


def test_network_record_of_the_shrunk_stand_in_keeps_the_official_names() -> None:
    # The stand-ins shrink widths only: the key names (and so the loading path) are the official ones.
    raw = {"student": {"preset": "swinir_m_x2", "options": SHRINK}, "data": {"scale": 2}}
    record = network_record(config_from_dict(raw).student)
    network = construct_network(record["backbone"], record["options"])
    assert sorted(network.state_dict()) == sorted(_manifest("SwinIR-M_x2")["state_dict"])


def test_dckd_test_of_weights_still_needs_dataset_folders(capsys) -> None:
    assert main(["test", "weights.pth"]) == 2
    assert "give at least one dataset folder" in capsys.readouterr().err
    assert main(["test", str(SWINIR)]) == 2  # a training file is not a test file
    assert "is not a BasicSR test options file" in capsys.readouterr().err
