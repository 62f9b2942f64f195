"""Read an options file of the published DCKD code (a BasicSR fork, super-SSS/DCKD) as a dckd config.

``dckd train OPTIONS.yml`` accepts such a training file: ``convert_published_options`` turns it into the
mapping of the equivalent ``dckd.config.schema.Config`` (validated afterwards by ``config_from_dict``, after the
``--set`` overrides) plus notes, and the command prints every note. Every key is read where the released
training code (``basicsr/models/dckd_model.py`` and BasicSR's ``sr_model.py``/``train.py``) reads it, with the
released code's default when it is absent, and every value is written into the config, also when it equals
a dckd default. A note names each key this module does not understand, and states the facts worth knowing
(batch arithmetic, published defects that dckd fixes). A value that would change the method and has no dckd
equivalent, or that makes the released code fail, is an error naming the key. A BasicSR test file
(``test_SwinIR.yml``) is refused with the command that runs it (``dckd test FILE``, ``published_test.py``).

Mapping (released key, its default when absent -> dckd option):

- ``name``, ``manual_seed`` -> ``name``, ``train.seed``; ``model_type: DCKDModel`` -> ``method: dckd``
  (``SRModel`` -> ``scratch``); ``scale`` -> ``data.scale`` (task ``sr``; scale 1: ``deblur``, or ``derain``
  when validation is on the Y channel).
- ``datasets.train`` (``PairedImageDataset``): ``dataroot_gt``/``dataroot_lq``/``filename_tmpl``/
  ``meta_info_file`` -> ``data.train`` (kind ``paired``; with a meta-info file only the listed files are read,
  as BasicSR); ``gt_size / scale`` -> ``data.lq_patch_size``; ``use_hflip`` and ``use_rot`` ->
  ``data.augment``; ``batch_size_per_gpu x num_gpu`` -> ``data.batch_size`` (global);
  ``num_worker_per_gpu`` -> ``data.num_workers``. ``datasets.val*`` -> ``data.validation`` (kind paired).
- ``network_g`` / ``network_t`` -> ``student`` / ``teacher`` by ``type`` (SwinIR, RCAN, EDSR, NAFNet,
  Restormer; a known preset when the parameters equal one); ``network_vqgan`` -> ``vqgan`` (``embed_dim``,
  ``n_embed``, taming ``ddconfig`` nested or flat). ``network_his`` is a flag (the released code only tests
  that it is present and builds the history model from ``network_g``): it must be present exactly when
  ``train.cl_opt`` is.
- ``path.pretrain_network_{t,g,vqgan}`` -> ``*.checkpoint`` (loaded strictly); ``param_key_{t,g}``
  -> ``checkpoint_key`` (``params_ema`` -> null: BasicSR falls back to ``params`` when the file has no
  ``params_ema``, and dckd's null tries ``params_ema``, then ``params``, ...).
- ``train.ema_decay`` (0), ``optim_g``, ``scheduler`` (MultiStepLR, CosineAnnealingRestartLR,
  CosineAnnealingRestartCyclicLR, TrueCosineAnnealingLR), ``total_iter``, ``warmup_iter`` -> ``train``,
  ``optimizer``, ``schedule``.
- ``train.pixel_opt`` -> ``dckd.reconstruction_loss``/``reconstruction_weight``; ``logits_opt`` ->
  ``kd_weight``; ``cl_opt.loss_weight`` (1) -> ``contrastive_weight``, ``cl_opt.weights`` -> ``layer_weights``;
  ``ce_opt.loss_weight`` (1) -> ``codebook_weight`` (released formula); ``lcr_opt.loss_weight`` (1) ->
  ``lcr_weight`` (teacher side), ``train.noisy.prob`` (0.5) -> ``lcr_probability``. An absent loss section
  means that term is off (weight 0); a ``loss_weight`` absent from a present section is 1.
- With ``cl_opt`` (the released code reads them only then), directly under ``train``: ``num_neg`` (4) ->
  ``num_negatives = num_neg + 1`` (the history model on the clean input, plus ``num_neg`` degraded copies);
  ``update_decay`` (0.1) -> ``history.decay``; ``step`` (a list, one update interval per 100k iterations; no
  default: the released code fails without it) -> ``history.initial_interval_iters`` and
  ``interval_growth_iters`` (the list must grow linearly; beyond it dckd continues by its last difference);
  ``gaussian_blur_prob`` (**1.0**), ``resize_prob`` (0), ``gaussian_noise_prob`` (0) -> ``degradations`` (the
  kinds with a probability above 0) and ``blur_probability``/``resize_probability``/``noise_probability``;
  ``gray_noise_prob`` (0) -> ``gray_noise_probability``; ``negative_sampling: released`` (one draw per copy,
  shared by the batch, as the released code).
- ``val.val_freq``, ``val.metrics.{psnr,ssim}.{crop_border,test_y_channel}`` -> ``train.validate_every_iters``,
  ``evaluation``; ``logger.print_freq``, ``save_checkpoint_freq``, ``use_tb_logger`` -> ``train.*``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from dckd.errors import ConfigError
from dckd.models.backbones import BACKBONES, PRESETS
from dckd.models.vqgan import DDCONFIG_KEYS

MODEL_TYPES = {"DCKDModel": "dckd", "SRModel": "scratch"}
"""``model_type`` values of training files this module reads, and the dckd method each becomes."""
NETWORK_TYPES = {"SwinIR": "swinir", "RCAN": "rcan", "EDSR": "edsr", "NAFNet": "nafnet", "Restormer": "restormer"}
"""BasicSR network ``type`` -> key of ``dckd.models.backbones.BACKBONES`` (same constructor argument names)."""
RELEASED_DEFAULTS: dict[str, Any] = {
    "train.num_neg": 4,
    "train.update_decay": 0.1,
    "train.gaussian_blur_prob": 1.0,
    "train.resize_prob": 0.0,
    "train.gaussian_noise_prob": 0.0,
    "train.gray_noise_prob": 0.0,
    "train.noisy.prob": 0.5,
}
"""What the released code uses when a key is absent (``dckd_model.py``); note the blur default of 1."""
DEGRADATION_PROBABILITIES = {
    "train.gaussian_blur_prob": "blur",
    "train.resize_prob": "resize",
    "train.gaussian_noise_prob": "noise",
}
"""Released probability keys (per degraded copy) -> dckd degradation kind."""
PUBLISHED_HISTORY_STAGE_ITERS = 100000
"""The released code's hard-coded stage length of the history schedule (one ``step`` entry per stage)."""
CHECKPOINT_KEYS = {
    "student": "path.pretrain_network_g",
    "teacher": "path.pretrain_network_t",
    "vqgan": "path.pretrain_network_vqgan",
}
"""dckd section -> the released key its ``checkpoint`` comes from (named by missing-file errors)."""
RECONSTRUCTION_TYPES = {"L1Loss": "l1", "CharbonnierLoss": "charbonnier"}
CONTRASTIVE_LEVELS = 5

# Keys the released code reads that need nothing in dckd (process bookkeeping of BasicSR, or behaviour dckd
# always has). They are not reported unless their value asks for something dckd lacks.
_NO_EFFECT = {
    "is_train", "dist", "rank", "world_size", "auto_resume", "find_unused_parameters",
    "datasets.train.name", "datasets.train.type", "datasets.train.phase", "datasets.train.scale",
    "datasets.train.use_shuffle", "datasets.train.dataset_enlarge_ratio", "datasets.train.prefetch_mode",
    "datasets.train.pin_memory", "datasets.train.io_backend",
    "path.strict_load_g", "path.strict_load_t", "path.strict_load_vqgan", "path.param_key_vqgan",
    "path.experiments_root", "path.models", "path.training_states", "path.log", "path.visualization", "path.root",
    "train.optim_g.type", "train.scheduler.type", "train.pixel_opt.type", "train.pixel_opt.reduction",
    "train.logits_opt.type", "train.logits_opt.reduction", "train.lcr_opt.type", "train.lcr_opt.reduction",
    "train.cl_opt.type", "train.ce_opt.type", "train.ce_opt.reduction", "val.pbar", "val.suffix", "logger.wandb",
    "dist_params", "network_vqgan.type", "network_vqgan.lossconfig", "network_vqgan.ignore_keys",
}  # fmt: skip


def is_published_options(raw: dict) -> bool:
    """Whether a YAML mapping is a BasicSR/DCKD options file (dckd configs never have these keys)."""
    return isinstance(raw, dict) and ("model_type" in raw or "network_g" in raw)


def is_published_test_options(raw: dict) -> bool:
    """Whether a BasicSR options mapping is a *test* file: no ``train`` section and no training set."""
    datasets = raw.get("datasets") if isinstance(raw, dict) else None
    return (
        is_published_options(raw)
        and raw.get("train") is None
        and not (isinstance(datasets, dict) and datasets.get("train") is not None)
    )


class OptionsReader:
    """Reads values by dotted path and remembers which ones were read, to report the rest."""

    def __init__(self, raw: dict, source: str) -> None:
        self.raw, self.source, self.read = raw, source, set(_NO_EFFECT)

    def get(self, path: str, default: Any = None) -> Any:
        node = self.get_silently(path)
        if self.present(path):
            self.read.add(path)
        return default if node is None else node

    def present(self, path: str) -> bool:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def has(self, path: str) -> bool:
        return self.get_silently(path) is not None

    def get_silently(self, path: str) -> Any:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}")

    def number(self, path: str, default: Any = None, integer: bool = False) -> Any:
        """A number (BasicSR writes ``!!float 5e3`` for counts); integers must be whole."""
        value = self.get(path, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise self.error(path, f"expected a number, got {value!r}") from None
        if integer:
            if float(value) != int(value):
                raise self.error(path, f"expected a whole number, got {value!r}")
            return int(value)
        return float(value)

    def probability(self, path: str, default: float) -> float:
        value = self.number(path, default)
        if not 0.0 <= value <= 1.0:
            raise self.error(path, f"a probability must be in [0, 1], got {value:g}")
        return value

    def unread(self) -> list[str]:
        """Dotted paths of every key that no reader touched (a read key covers its children)."""
        found: list[str] = []

        def walk(node: dict, prefix: str) -> None:
            for key, value in node.items():
                path = f"{prefix}{key}"
                if path in self.read:
                    continue
                if isinstance(value, dict) and any(other.startswith(path + ".") for other in self.read):
                    walk(value, path + ".")
                else:
                    found.append(path)

        walk(self.raw, "")
        return found


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------
def _full_arguments(backbone: str, options: dict) -> dict:
    """Constructor arguments with the defaults filled in, lists for sequences (to compare with presets)."""
    signature = inspect.signature(BACKBONES[backbone])
    bound = signature.bind_partial(**options)
    bound.apply_defaults()

    def plain(value: Any) -> Any:
        return [plain(item) for item in value] if isinstance(value, (list, tuple)) else value

    return {key: plain(value) for key, value in bound.arguments.items()}


def network_section(reader: OptionsReader, section: str) -> dict | None:
    """``network_*`` -> a dckd NetworkConfig mapping: a preset when the parameters equal one."""
    raw = reader.get(section)
    if raw is None:
        return None
    if not isinstance(raw, dict) or "type" not in raw:
        raise reader.error(section, "expected a mapping with a 'type' (SwinIR, RCAN, EDSR, NAFNet, Restormer)")
    network_type = raw["type"]
    if network_type not in NETWORK_TYPES:
        raise reader.error(
            f"{section}.type",
            f"network type {network_type!r} is not supported; expected one of {', '.join(NETWORK_TYPES)}",
        )
    backbone = NETWORK_TYPES[network_type]
    options = {key: value for key, value in raw.items() if key != "type"}
    accepted = list(inspect.signature(BACKBONES[backbone]).parameters)
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise reader.error(
            f"{section}.{unknown[0]}",
            f"{network_type} takes no parameter {unknown[0]!r}; it accepts: {', '.join(accepted)}",
        )
    full = _full_arguments(backbone, options)
    for preset, (preset_backbone, preset_options) in PRESETS.items():
        if preset_backbone == backbone and _full_arguments(backbone, preset_options) == full:
            return {"preset": preset}
    return {"backbone": backbone, "options": options}


def checkpoint_of(reader: OptionsReader, network: dict, suffix: str, notes: list[str], role: str) -> None:
    """``path.pretrain_network_<suffix>`` and ``param_key_<suffix>`` -> the network's checkpoint and key."""
    path = reader.get(f"path.pretrain_network_{suffix}")
    key = reader.get(f"path.param_key_{suffix}")  # read even without a checkpoint (BasicSR files carry it)
    if path:
        network["checkpoint"] = path
        if key == "params_ema":
            network["checkpoint_key"] = None
            notes.append(
                f"path.param_key_{suffix}: params_ema -> {role} checkpoint_key null: like BasicSR, which reads "
                "'params' when the file has no 'params_ema', dckd then tries params_ema, then params, ..."
            )
        elif key:
            network["checkpoint_key"] = key
    if reader.get_silently(f"path.strict_load_{suffix}") is False:
        notes.append(
            f"path.strict_load_{suffix}: false: dckd loads the {role} strictly (a missing or unexpected "
            "key is an error)"
        )


def _vqgan(reader: OptionsReader, notes: list[str]) -> dict:
    raw = reader.get("network_vqgan")
    if not isinstance(raw, dict):
        raise reader.error("network_vqgan", "train.cl_opt / train.ce_opt use the VQGAN, but network_vqgan is missing")
    section: dict[str, Any] = {}
    if raw.get("type", "VQGAN") != "VQGAN":
        raise reader.error("network_vqgan.type", f"{raw['type']!r} is not supported; expected VQGAN")
    for key in ("embed_dim", "n_embed"):
        if key in raw:
            section[key] = reader.number(f"network_vqgan.{key}", integer=True)
    ddconfig = dict(reader.get("network_vqgan.ddconfig") or {})
    for key in raw:
        if key in DDCONFIG_KEYS and key not in ("embed_dim", "n_embed"):
            ddconfig[key] = reader.get(f"network_vqgan.{key}")
    if ddconfig:
        section["ddconfig"] = ddconfig
    if reader.get("network_vqgan.ckpt_path"):
        section["checkpoint"] = reader.get("network_vqgan.ckpt_path")
    checkpoint = reader.get("path.pretrain_network_vqgan")
    if checkpoint:
        section["checkpoint"] = checkpoint
    if "checkpoint" not in section:
        raise reader.error("path.pretrain_network_vqgan", "the VQGAN's checkpoint is missing")
    key = reader.get("path.param_key_vqgan")
    if key not in (None, "state_dict"):
        raise reader.error("path.param_key_vqgan", f"{key!r}: dckd reads the taming checkpoint's 'state_dict'")
    notes.append(
        "VQGAN: the released code loads it with strict=False (path.strict_load_vqgan), so a wrong checkpoint "
        "silently leaves a random encoder; dckd loads encoder, quant_conv and codebook strictly (decoder and "
        "loss weights of the checkpoint are not used) and stops on any other mismatch"
    )
    return section


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def paired_dataset(reader: OptionsReader, section: str, notes: list[str]) -> dict | None:
    """A ``PairedImageDataset`` section -> a dckd dataset mapping of kind ``paired``."""
    dataset_type = reader.get(f"{section}.type")
    if dataset_type not in ("PairedImageDataset", None):
        notes.append(
            f"{section}: dataset type {dataset_type!r} is not supported (only PairedImageDataset); "
            "this dataset is left out"
        )
        reader.read.add(section)
        return None
    io_backend = reader.get_silently(f"{section}.io_backend") or {}
    if isinstance(io_backend, dict) and io_backend.get("type", "disk") != "disk":
        raise reader.error(
            f"{section}.io_backend.type",
            f"{io_backend['type']!r} is not supported; dckd reads image folders (io_backend type disk)",
        )
    reader.read.add(f"{section}.io_backend")
    gt_dir, lq_dir = reader.get(f"{section}.dataroot_gt"), reader.get(f"{section}.dataroot_lq")
    if not gt_dir or not lq_dir:
        raise reader.error(section, "expected dataroot_gt and dataroot_lq")
    dataset = {
        "kind": "paired",
        "gt_dir": gt_dir,
        "lq_dir": lq_dir,
        "filename_template": reader.get(f"{section}.filename_tmpl", "{}"),
    }
    name = reader.get(f"{section}.name")
    if name:
        dataset["name"] = name
    meta_info_file = reader.get(f"{section}.meta_info_file")
    if meta_info_file:
        dataset["meta_info_file"] = meta_info_file
    for ignored in ("type", "phase", "scale"):
        reader.read.add(f"{section}.{ignored}")
    return dataset


def _data(reader: OptionsReader, scale: int, num_gpu: int, notes: list[str]) -> dict:
    data: dict[str, Any] = {"scale": scale}
    if reader.get_silently("datasets.train") is not None:
        data["train"] = paired_dataset(reader, "datasets.train", notes)
        gt_size = reader.number("datasets.train.gt_size", integer=True)
        if gt_size is not None:
            if gt_size % scale:
                raise reader.error("datasets.train.gt_size", f"{gt_size} is not a multiple of the scale {scale}")
            data["lq_patch_size"] = gt_size // scale
        hflip, rotate = reader.get("datasets.train.use_hflip", False), reader.get("datasets.train.use_rot", False)
        data["augment"] = bool(hflip or rotate)
        if bool(hflip) != bool(rotate):
            notes.append(
                "datasets.train.use_hflip / use_rot: only one is on; dckd augments with flips and "
                "transposes together (data.augment: true) or not at all"
            )
        per_gpu = reader.number("datasets.train.batch_size_per_gpu", integer=True)
        if per_gpu is not None:
            data["batch_size"] = per_gpu * num_gpu
            notes.append(
                f"batch: datasets.train.batch_size_per_gpu {per_gpu} x num_gpu {num_gpu} = data.batch_size "
                f"{per_gpu * num_gpu} (dckd's batch is global; run with torchrun --nproc_per_node="
                f"{num_gpu} to keep {per_gpu} per GPU)"
            )
        workers = reader.number("datasets.train.num_worker_per_gpu", integer=True)
        if workers is not None:
            data["num_workers"] = workers
    validation = []
    for key in reader.get_silently("datasets") or {}:
        if key != "train" and (key.split("_")[0] == "val" or key.startswith("test")):
            dataset = paired_dataset(reader, f"datasets.{key}", notes)
            if dataset is not None:
                validation.append(dataset)
    data["validation"] = validation
    return data


def evaluation_protocol(reader: OptionsReader, notes: list[str]) -> dict:
    """``val.metrics.{psnr,ssim}.{crop_border,test_y_channel}`` -> ``evaluation`` (must agree between metrics)."""
    evaluation: dict[str, Any] = {}
    for metric in reader.get_silently("val.metrics") or {}:
        prefix = f"val.metrics.{metric}"
        reader.read.add(f"{prefix}.type")
        if metric not in ("psnr", "ssim"):
            notes.append(f"{prefix}: dckd evaluates PSNR and SSIM only; this metric is not computed")
            reader.read.add(prefix)
            continue
        for key, option in (("crop_border", "crop_border"), ("test_y_channel", "y_channel")):
            if not reader.present(f"{prefix}.{key}"):
                continue
            value = (
                reader.number(f"{prefix}.{key}", integer=True)
                if key == "crop_border"
                else bool(reader.get(f"{prefix}.{key}"))
            )
            if option in evaluation and evaluation[option] != value:
                raise reader.error(
                    f"{prefix}.{key}",
                    f"{value} differs from the other metric's {evaluation[option]}; dckd "
                    "computes PSNR and SSIM with one protocol",
                )
            evaluation[option] = value
    return evaluation


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------
def _optimizer(reader: OptionsReader) -> dict:
    optimizer_type = reader.get("train.optim_g.type", "Adam")
    names = {"Adam": "adam", "AdamW": "adamw"}
    if optimizer_type not in names:
        raise reader.error("train.optim_g.type", f"{optimizer_type!r} is not supported; expected Adam or AdamW")
    optimizer: dict[str, Any] = {"name": names[optimizer_type]}
    if reader.has("train.optim_g.lr"):
        optimizer["lr"] = reader.number("train.optim_g.lr")
    if reader.has("train.optim_g.betas"):
        optimizer["betas"] = [float(beta) for beta in reader.get("train.optim_g.betas")]
    if reader.has("train.optim_g.weight_decay"):
        optimizer["weight_decay"] = reader.number("train.optim_g.weight_decay")
    return optimizer


def _schedule(reader: OptionsReader) -> dict:
    scheduler = reader.get_silently("train.scheduler")
    if scheduler is None:
        return {"name": "constant"}
    scheduler_type = reader.get("train.scheduler.type")
    prefix = "train.scheduler"
    if scheduler_type == "MultiStepLR":
        return {
            "name": "multistep",
            "milestones_iters": [int(value) for value in reader.get(f"{prefix}.milestones", [])],
            "gamma": reader.number(f"{prefix}.gamma", 0.1),
        }
    if scheduler_type in ("CosineAnnealingRestartLR", "CosineAnnealingRestartCyclicLR"):
        periods = [int(value) for value in reader.get(f"{prefix}.periods")]
        weights = [float(value) for value in reader.get(f"{prefix}.restart_weights", [1] * len(periods))]
        if scheduler_type == "CosineAnnealingRestartLR":
            eta_min = [reader.number(f"{prefix}.eta_min", 0.0)]
        else:
            eta_min = [float(value) for value in reader.get(f"{prefix}.eta_mins", [0.0] * len(periods))]
        return {"name": "cosine", "periods_iters": periods, "restart_weights": weights, "eta_min": eta_min}
    if scheduler_type == "TrueCosineAnnealingLR":
        return {
            "name": "cosine",
            "periods_iters": [reader.number(f"{prefix}.T_max", integer=True)],
            "eta_min": [reader.number(f"{prefix}.eta_min", 0.0)],
        }
    raise reader.error(
        f"{prefix}.type",
        f"{scheduler_type!r} is not supported; expected MultiStepLR, "
        "CosineAnnealingRestartLR, CosineAnnealingRestartCyclicLR or "
        "TrueCosineAnnealingLR",
    )


def _loss_weight(reader: OptionsReader, section: str, expected_types: Iterable[str] | None = ("L1Loss",)) -> float:
    """``loss_weight`` of a loss section (0 when the section is absent: the term is off; 1 when the section has
    no ``loss_weight``, the released constructors' default). ``expected_types`` None: the section's name says
    which term it is and its ``type`` is not checked (cl_opt, ce_opt)."""
    if reader.get_silently(section) is None:
        return 0.0
    loss_type = reader.get_silently(f"{section}.type")
    if loss_type is not None and expected_types is not None and loss_type not in expected_types:
        raise reader.error(
            f"{section}.type", f"{loss_type!r} is not supported here; expected {' or '.join(expected_types)}"
        )
    reduction = reader.get_silently(f"{section}.reduction")
    if reduction not in (None, "mean"):
        raise reader.error(f"{section}.reduction", f"{reduction!r} is not supported; dckd averages (mean)")
    return reader.number(f"{section}.loss_weight", 1.0)


def _history(reader: OptionsReader, ema_decay: float, total_iters: int | None, notes: list[str]) -> dict:
    """``train.step`` (list, one interval per 100k iterations) and ``update_decay`` -> ``history``."""
    if not reader.present("train.step") or reader.get("train.step") in (None, []):
        raise reader.error(
            "train.step",
            "missing or empty: the released code indexes it at iteration 1 and fails (IndexError); give one "
            "history-update interval per 100k iterations, e.g. step: [1000, 2000, 3000]",
        )
    steps = reader.get("train.step")
    if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise reader.error("train.step", f"expected a list of whole numbers (one per 100k iterations), got {steps!r}")
    if min(steps) < 1:
        raise reader.error("train.step", f"every interval must be >= 1, got {steps}")
    growth = steps[1] - steps[0] if len(steps) > 1 else 0
    if any(later - earlier != growth for earlier, later in pairwise(steps)) or growth < 0:
        raise reader.error(
            "train.step",
            f"{steps}: dckd's history schedule grows linearly (s = initial + growth per 100k iterations); "
            "this list cannot be represented",
        )
    covered = len(steps) * PUBLISHED_HISTORY_STAGE_ITERS
    notes.append(
        f"history schedule: train.step {steps} -> update every {steps[0]} iterations, {growth} more every "
        f"{PUBLISHED_HISTORY_STAGE_ITERS} (history.initial_interval_iters {steps[0]}, interval_growth_iters "
        f"{growth}); dckd saves the history model in checkpoints (the released code loses it on resume)"
        + (
            f"; the released code fails at iteration {covered + 1}, dckd continues the pattern"
            if total_iters is None or total_iters > covered
            else ""
        )
    )
    if ema_decay <= 0:
        notes.append(
            "train.ema_decay is 0: the released code needs the EMA student for its history model and "
            "fails without it; dckd uses the live student as the history source instead"
        )
    return {
        "decay": reader.number("train.update_decay", RELEASED_DEFAULTS["train.update_decay"]),
        "source": "ema" if ema_decay > 0 else "student",
        "initial_interval_iters": steps[0],
        "interval_growth_iters": growth,
        "interval_growth_every_iters": PUBLISHED_HISTORY_STAGE_ITERS,
    }


def _contrastive(reader: OptionsReader, section: dict, ema_decay: float, total_iters: int | None, notes: list[str]):
    cl = "train.cl_opt"
    d_func = reader.get(f"{cl}.d_func", "L1")
    if d_func != "L1":
        raise reader.error(f"{cl}.d_func", f"{d_func!r}: the released ContrasLoss only works with L1 (as dckd)")
    weights = reader.get(f"{cl}.weights")
    if not isinstance(weights, list) or len(weights) != CONTRASTIVE_LEVELS:
        raise reader.error(
            f"{cl}.weights",
            f"expected {CONTRASTIVE_LEVELS} layer weights (one per VQGAN level), got {weights!r} (the released "
            "code fails with fewer)",
        )
    section["layer_weights"] = [float(value) for value in weights]
    num_neg = reader.number("train.num_neg", RELEASED_DEFAULTS["train.num_neg"], integer=True)
    if num_neg < 0:
        raise reader.error("train.num_neg", f"must be >= 0, got {num_neg}")
    section["num_negatives"] = num_neg + 1
    section["include_clean_negative"] = True
    probabilities = {
        kind: reader.probability(key, RELEASED_DEFAULTS[key]) for key, kind in DEGRADATION_PROBABILITIES.items()
    }
    kinds = [kind for kind, probability in probabilities.items() if probability > 0]
    if num_neg > 0 and not kinds:
        raise reader.error(
            "train.gaussian_blur_prob / resize_prob / gaussian_noise_prob",
            f"all 0 with num_neg {num_neg}: the released code then uses {num_neg} undegraded copies of the "
            "clean negative, which dckd does not represent; turn one degradation on",
        )
    section["degradations"] = kinds or ["noise"]
    section["negative_sampling"] = "released"
    for kind, probability in probabilities.items():
        section[f"{kind}_probability"] = probability
    section["gray_noise_probability"] = reader.probability(
        "train.gray_noise_prob", RELEASED_DEFAULTS["train.gray_noise_prob"]
    )
    absent = [key for key in (*DEGRADATION_PROBABILITIES, "train.num_neg") if not reader.present(key)]
    notes.append(
        f"negatives: the history model on the clean input + num_neg {num_neg} degraded copies = dckd.num_negatives "
        f"{num_neg + 1}; each copy blurred with probability {probabilities['blur']:g}, resized with "
        f"{probabilities['resize']:g}, noised with {probabilities['noise']:g} (gray "
        f"{section['gray_noise_probability']:g}), drawn once per copy for the whole batch as the released code "
        "(dckd.negative_sampling: released)"
        + (f"; released defaults used for the absent {', '.join(absent)}" if absent else "")
    )
    section["history"] = _history(reader, ema_decay, total_iters, notes)


def _method(reader: OptionsReader, method: str, notes: list[str], ema_decay: float, total_iters: int | None) -> dict:
    section: dict[str, Any] = {}
    pixel_type = reader.get_silently("train.pixel_opt.type") or "L1Loss"
    if pixel_type not in RECONSTRUCTION_TYPES:
        raise reader.error(
            "train.pixel_opt.type", f"{pixel_type!r} is not supported; expected {' or '.join(RECONSTRUCTION_TYPES)}"
        )
    section["reconstruction_loss"] = RECONSTRUCTION_TYPES[pixel_type]
    section["reconstruction_weight"] = _loss_weight(reader, "train.pixel_opt", RECONSTRUCTION_TYPES)
    if pixel_type == "CharbonnierLoss" and reader.number("train.pixel_opt.eps", 1e-12) != 1e-12:
        raise reader.error("train.pixel_opt.eps", "dckd's Charbonnier loss uses eps 1e-12 (BasicSR's default)")
    if reader.get_silently("train.perceptual_opt") is not None:
        raise reader.error("train.perceptual_opt", "a perceptual loss is not supported by dckd; remove the section")
    if method == "scratch":
        return section
    section["kd_weight"] = _loss_weight(reader, "train.logits_opt")
    section["contrastive_weight"] = _loss_weight(reader, "train.cl_opt", None)
    contrastive_keys = ("train.num_neg", "train.update_decay", "train.step", "train.gray_noise_prob")
    # The released code only tests `opt.get('network_his') is not None` and builds the history model from network_g.
    has_history = reader.get("network_his") is not None
    if isinstance(reader.get_silently("network_his"), dict) and reader.get_silently("network_his") != reader.raw.get(
        "network_g"
    ):
        notes.append(
            "network_his differs from network_g: the released code builds the history model from network_g (it "
            "only tests that network_his is set), and so does dckd"
        )
    if section["contrastive_weight"] > 0 or reader.has("train.cl_opt"):
        if not has_history:
            raise reader.error(
                "network_his",
                "train.cl_opt needs the history model (network_his: true); the released code fails without it",
            )
        _contrastive(reader, section, ema_decay, total_iters, notes)
    else:
        if has_history:
            raise reader.error(
                "network_his",
                "a history model without train.cl_opt has no use (the released code fails: "
                "its history schedule is read with cl_opt); remove network_his or add cl_opt",
            )
        for key in (*contrastive_keys, *DEGRADATION_PROBABILITIES):
            if reader.present(key):
                reader.get(key)
                notes.append(f"{key}: read by the released code only with train.cl_opt, which is absent: no effect")
    section["codebook_weight"] = _loss_weight(reader, "train.ce_opt", None)
    if section["codebook_weight"] > 0:
        section["codebook_formula"] = "released"
        notes.append(
            "codebook term: the released formula (a second softmax over probabilities) is kept; "
            "--set dckd.codebook_formula=paper gives the paper's Eq. 9"
        )
    if section["contrastive_weight"] > 0 or section["codebook_weight"] > 0:
        section["vqgan_input_range"] = "zero_one"
    section["lcr_weight"] = _loss_weight(reader, "train.lcr_opt")
    if section["lcr_weight"] > 0 or reader.has("train.lcr_opt"):
        if not reader.present("train.noisy"):
            raise reader.error(
                "train.noisy",
                "train.lcr_opt needs train.noisy (prob: the per-sample probability of each "
                "augmentation); the released code fails without it",
            )
        reader.get("train.noisy")
        section["lcr_side"] = "teacher"
        section["lcr_probability"] = reader.probability("train.noisy.prob", RELEASED_DEFAULTS["train.noisy.prob"])
        section["lcr_operations"] = ["invert", "vflip", "hflip", "transpose"]
        notes.append(
            f"label consistency (DCKD*, train.lcr_opt): teacher side, weight {section['lcr_weight']:g}; invert, "
            f"vflip, hflip, transpose, each per sample with probability {section['lcr_probability']:g} "
            "(train.noisy.prob)"
        )
    elif reader.present("train.noisy"):
        reader.get("train.noisy")
        notes.append("train.noisy: read by the released code only with train.lcr_opt, which is absent: no effect")
    return section


# --------------------------------------------------------------------------------------------------
def convert_published_options(raw: dict, source: str = "options") -> tuple[dict, list[str]]:
    """(dckd config mapping, notes) for a published DCKD / BasicSR training options mapping.

    The mapping is not validated here; ``dckd.config.schema.config_from_dict`` does that (after ``--set``).
    Raises ``ConfigError`` naming the key for values that would change the method and have no dckd
    equivalent, and for a BasicSR test file (with the command that runs it).
    """
    if is_published_test_options(raw):
        raise ConfigError(
            f"{source} is a BasicSR test options file (model_type {raw.get('model_type')}, test sets, no train "
            f"section): evaluate it with `dckd test {source}`; `dckd train` takes a training options file "
            "(e.g. train_SwinIR_SRx4_DCKD.yml)"
        )
    reader = OptionsReader(raw, source)
    notes: list[str] = []
    model_type = reader.get("model_type", "DCKDModel")
    if model_type not in MODEL_TYPES:
        raise reader.error("model_type", f"{model_type!r} is not supported; expected one of {', '.join(MODEL_TYPES)}")
    method = MODEL_TYPES[model_type]
    if model_type == "SRModel":
        notes.append("model_type SRModel: trained as method scratch (no teacher)")
    scale = reader.number("scale", 4, integer=True)
    num_gpu_value = reader.get("num_gpu", 1)
    if num_gpu_value == "auto":
        num_gpu = 1
        notes.append(
            "num_gpu: auto: the batch is taken as batch_size_per_gpu x 1; set data.batch_size to the "
            "global batch you want"
        )
    else:
        num_gpu = reader.number("num_gpu", 1, integer=True)
    config: dict[str, Any] = {"name": reader.get("name", "published"), "method": method}

    student = network_section(reader, "network_g")
    if student is None:
        raise reader.error("network_g", "the student network is missing")
    checkpoint_of(reader, student, "g", notes, "student's initial weights")
    config["student"] = student
    teacher = network_section(reader, "network_t")
    if method != "scratch":
        if teacher is None:
            raise reader.error("network_t", "method dckd needs the teacher network")
        checkpoint_of(reader, teacher, "t", notes, "teacher")
        config["teacher"] = teacher
    elif teacher is not None:
        notes.append("network_t: not used by model_type SRModel (method scratch)")
    if reader.get("path.pretrain_network_his"):
        notes.append(
            "path.pretrain_network_his: not read by the released code; the history model starts as a copy of the EMA student"
        )
    if reader.get("path.resume_state"):
        notes.append(
            f"path.resume_state: not an option in dckd; pass --resume {reader.get('path.resume_state')} "
            "(a BasicSR training state cannot be resumed by dckd)"
        )

    data = _data(reader, scale, num_gpu, notes)
    data["task"] = "sr" if scale > 1 else "deblur"
    ema_decay = reader.number("train.ema_decay", 0.0)
    config["train"] = {"seed": reader.number("manual_seed", 0, integer=True), "ema_decay": ema_decay}
    total_iters = reader.number("train.total_iter", integer=True) if reader.has("train.total_iter") else None
    if total_iters is not None:
        config["train"]["total_iters"] = total_iters
    warmup = reader.number("train.warmup_iter", -1, integer=True)
    config["optimizer"] = _optimizer(reader)
    config["schedule"] = _schedule(reader)
    config["schedule"]["warmup_iters"] = max(warmup, 0)
    section = _method(reader, method, notes, ema_decay, total_iters)
    if method == "dckd" and (section["contrastive_weight"] > 0 or section["codebook_weight"] > 0):
        config["vqgan"] = _vqgan(reader, notes)
    else:
        for key in ("network_vqgan", "path.pretrain_network_vqgan"):
            if reader.get(key) is not None:
                notes.append(f"{key}: not used (no term of this configuration uses the VQGAN)")

    if reader.has("val.val_freq"):
        config["train"]["validate_every_iters"] = reader.number("val.val_freq", integer=True)
    evaluation = evaluation_protocol(reader, notes)
    if scale == 1 and evaluation.get("y_channel"):
        data["task"] = "derain"
    if scale == 1:
        notes.append(f"scale 1: task {data['task']!r} (deraining when validation is on the Y channel, else deblurring)")
    if reader.get("val.save_img"):
        notes.append("val.save_img: dckd's validation saves no images; use dckd test --save-images on the weights")
    window = reader.get("val.window_size")
    if window is not None:
        notes.append(
            f"val.window_size {window}: dckd always pads inputs to the network's window multiple (reflect) and "
            "crops the output back, at validation and in dckd test"
        )
    config["data"], config["evaluation"] = data, evaluation

    if reader.has("logger.print_freq"):
        config["train"]["log_every_iters"] = reader.number("logger.print_freq", integer=True)
    if reader.has("logger.save_checkpoint_freq"):
        config["train"]["checkpoint_every_iters"] = reader.number("logger.save_checkpoint_freq", integer=True)
    if reader.get_silently("logger.use_tb_logger") is not None:
        config["train"]["tensorboard"] = bool(reader.get("logger.use_tb_logger"))
    wandb = reader.get_silently("logger.wandb") or {}
    if isinstance(wandb, dict) and wandb.get("project"):
        notes.append("logger.wandb: not supported; dckd logs to log.jsonl and TensorBoard")
    config[method] = section
    if reader.get_silently("dist_params") is not None:
        notes.append(
            f"dist_params: dckd's processes are started by torchrun (torchrun --nproc_per_node={num_gpu} "
            f"-m dckd train {source}), which sets the backend and port"
        )

    for path in reader.unread():
        notes.append(f"{path}: not understood; ignored")
    return config, notes
