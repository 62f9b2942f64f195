"""Read an options file of the published DCKD code (a BasicSR fork) as a dckd config.

``dckd train OPTIONS.yml`` accepts such a file: ``convert_published_options`` turns it into the mapping of
the equivalent ``dckd.config.schema.Config`` (validated afterwards by ``config_from_dict``) plus notes, and the
command prints every note. A note names each key this module does not understand or cannot represent,
and states the facts worth knowing (batch arithmetic, published defects that dckd fixes). A value that
would change the method and has no dckd equivalent is an error naming the key, never silently dropped.

Mapping (published key -> dckd option):

- ``name``, ``manual_seed`` -> ``name``, ``train.seed``; ``model_type: DCKDModel`` -> ``method: dckd``
  (``SRModel`` -> ``scratch``); ``scale`` -> ``data.scale`` (task ``sr``; scale 1: ``deblur``, or
  ``derain`` when validation is on the Y channel).
- ``datasets.train`` (``PairedImageDataset``): ``dataroot_gt``/``dataroot_lq``/``filename_tmpl`` ->
  ``data.train`` of kind ``paired``; ``gt_size / scale`` -> ``data.lq_patch_size``; ``use_hflip`` and
  ``use_rot`` -> ``data.augment``; ``batch_size_per_gpu x num_gpu`` -> ``data.batch_size`` (global);
  ``num_worker_per_gpu`` -> ``data.num_workers``. ``datasets.val*`` -> ``data.validation`` (kind paired).
- ``network_g`` / ``network_t`` -> ``student`` / ``teacher`` by ``type`` (SwinIR, RCAN, EDSR, NAFNet,
  Restormer; a known preset when the parameters equal one); ``network_his`` must equal ``network_g``
  (dckd's history model is always a copy of the student); ``network_vqgan`` -> ``vqgan`` (``embed_dim``,
  ``n_embed``, taming ``ddconfig`` nested or flat).
- ``path.pretrain_network_{t,g,vqgan}`` and ``param_key_{t,g}`` -> ``*.checkpoint`` / ``checkpoint_key``
  (always loaded strictly).
- ``train.ema_decay``, ``optim_g``, ``scheduler`` (MultiStepLR, CosineAnnealingRestartLR,
  CosineAnnealingRestartCyclicLR, TrueCosineAnnealingLR), ``total_iter``, ``warmup_iter`` -> ``train``,
  ``optimizer``, ``schedule``.
- ``train.pixel_opt`` -> ``dckd.reconstruction_loss``/``reconstruction_weight``; ``logits_opt`` ->
  ``kd_weight``; ``cl_opt``: ``loss_weight`` -> ``contrastive_weight``, ``weights`` -> ``layer_weights``,
  ``num_neg`` -> ``num_negatives = num_neg + 1`` (clean + degraded), ``update_decay`` ->
  ``history.decay``, ``step`` -> ``history.initial_interval_iters`` (and the growth, see below), the
  ``*_prob`` keys -> ``degradations``; ``ce_opt.loss_weight`` -> ``codebook_weight`` (released formula);
  ``lcr_opt.loss_weight`` -> ``lcr_weight`` (teacher side); ``noisy.prob`` -> ``lcr_probability``.
  An absent loss section means that term is off (weight 0).
- ``val.val_freq``, ``val.metrics.psnr.{crop_border,test_y_channel}`` -> ``train.validate_every_iters``,
  ``evaluation``; ``logger.print_freq``, ``save_checkpoint_freq``, ``use_tb_logger`` -> ``train.*``.

Readings (documented choices):

- Degradation probabilities ``noise_prob``, ``blur_prob``, ``resize_prob``, ``mix_prob`` (in ``cl_opt``): the
  published code applies a degradation to a negative's input with its probability. dckd applies every
  listed degradation to every degraded negative, so 1 -> listed (``mix`` = blur, resize and noise), 0 ->
  not listed; any other probability cannot be represented and is an error naming the key. All four at 0
  with ``num_neg > 0`` (undegraded copies) is an error too.
- History schedule: the published code updates every ``step``, ``2 step``, ``3 step`` iterations during
  iterations 1-100k, 100k-200k, 200k-300k and fails past 300k; dckd continues the pattern for any length
  (``interval_growth_iters = step`` every ``100000``), with the EMA student as the source.
- ``noisy.prob`` (in ``train`` or at the top level) is read as the per-sample probability of each invertible
  augmentation of the label-consistency term (the released code applies them with p = 0.5).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from dckd.errors import ConfigError
from dckd.models.backbones import BACKBONES, PRESETS
from dckd.models.vqgan import DDCONFIG_KEYS

MODEL_TYPES = {"DCKDModel": "dckd", "SRModel": "scratch"}
"""``model_type`` values this module reads, and the dckd method each becomes."""
NETWORK_TYPES = {"SwinIR": "swinir", "RCAN": "rcan", "EDSR": "edsr", "NAFNet": "nafnet", "Restormer": "restormer"}
"""BasicSR network ``type`` -> key of ``dckd.models.backbones.BACKBONES`` (same constructor argument names)."""
DEGRADATION_PROBABILITIES = {"noise_prob": "noise", "blur_prob": "blur", "resize_prob": "resize", "mix_prob": "mix"}
"""The four ``cl_opt`` probability keys and the dckd degradation each turns on."""
PUBLISHED_HISTORY_GROWTH_EVERY_ITERS = 100000
"""The published code's hard-coded stage length of the history schedule."""
RECONSTRUCTION_TYPES = {"L1Loss": "l1", "CharbonnierLoss": "charbonnier"}

# Keys that are understood and need nothing in dckd (process bookkeeping of BasicSR, or options whose
# behaviour dckd always has). They are not reported unless their value asks for something dckd lacks.
_NO_EFFECT = {
    "is_train", "dist", "rank", "world_size", "auto_resume", "find_unused_parameters",
    "datasets.train.name", "datasets.train.type", "datasets.train.phase", "datasets.train.scale",
    "datasets.train.use_shuffle", "datasets.train.dataset_enlarge_ratio", "datasets.train.prefetch_mode",
    "datasets.train.pin_memory", "datasets.train.io_backend",
    "path.strict_load_g", "path.strict_load_t", "path.strict_load_his", "path.param_key_his",
    "path.experiments_root", "path.models", "path.training_states", "path.log", "path.visualization", "path.root",
    "train.optim_g.type", "train.scheduler.type", "train.pixel_opt.type", "train.pixel_opt.reduction",
    "train.logits_opt.type", "train.logits_opt.reduction", "train.lcr_opt.type", "train.lcr_opt.reduction",
    "train.cl_opt.type", "train.ce_opt.type", "val.pbar", "val.suffix", "logger.wandb", "dist_params",
    "network_vqgan.lossconfig", "network_vqgan.ignore_keys",
}  # fmt: skip


def is_published_options(raw: dict) -> bool:
    """Whether a YAML mapping is a BasicSR/DCKD options file (dckd configs never have these keys)."""
    return isinstance(raw, dict) and ("model_type" in raw or "network_g" in raw)


class _Reader:
    """Reads values by dotted path and remembers which ones were read, to report the rest."""

    def __init__(self, raw: dict, source: str) -> None:
        self.raw, self.source, self.read = raw, source, set(_NO_EFFECT)

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        self.read.add(path)
        return default if node is None and default is not None else node

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


def _network(reader: _Reader, section: str) -> dict | None:
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


def _vqgan(reader: _Reader, notes: list[str]) -> dict:
    section: dict[str, Any] = {}
    raw = reader.get("network_vqgan")
    if isinstance(raw, dict):
        for key in ("embed_dim", "n_embed"):
            if key in raw:
                section[key] = reader.number(f"network_vqgan.{key}", integer=True)
        ddconfig = dict(reader.get("network_vqgan.ddconfig") or {})
        for key in raw:
            if key in DDCONFIG_KEYS and key not in ("embed_dim", "n_embed"):
                ddconfig[key] = reader.get(f"network_vqgan.{key}")
        if ddconfig:
            section["ddconfig"] = ddconfig
        reader.get("network_vqgan.type")
        if reader.get("network_vqgan.ckpt_path"):
            section["checkpoint"] = reader.get("network_vqgan.ckpt_path")
    checkpoint = reader.get("path.pretrain_network_vqgan")
    if checkpoint:
        section["checkpoint"] = checkpoint
    if reader.get("path.strict_load_vqgan") is False or "checkpoint" in section:
        notes.append(
            "VQGAN: the published code loads it with strict=False, so a wrong checkpoint silently leaves "
            "a random encoder; dckd loads it strictly (decoder and loss weights of last.ckpt are ignored "
            "by name) and stops on any other mismatch"
        )
    return section


def _checkpoint(reader: _Reader, network: dict | None, suffix: str, notes: list[str], role: str) -> None:
    if network is None:
        return
    path = reader.get(f"path.pretrain_network_{suffix}")
    key = reader.get(f"path.param_key_{suffix}")  # read even without a checkpoint (BasicSR files carry it)
    if path:
        network["checkpoint"] = path
        if key:
            network["checkpoint_key"] = key
    if reader.get_silently(f"path.strict_load_{suffix}") is False:
        notes.append(
            f"path.strict_load_{suffix}: false: dckd loads the {role} strictly (a missing or unexpected "
            "key is an error)"
        )


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def _paired(reader: _Reader, section: str, notes: list[str]) -> dict | None:
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
    reader.read.add(f"{section}.type")
    if reader.get(f"{section}.meta_info_file"):
        notes.append(
            f"{section}.meta_info_file: not representable; dckd pairs every image of dataroot_gt with its "
            "LQ file (a meta-info list that selects a subset is ignored)"
        )
    return dataset


def _data(reader: _Reader, scale: int, num_gpu: int, notes: list[str]) -> dict:
    data: dict[str, Any] = {"scale": scale}
    if reader.get_silently("datasets.train") is not None:
        data["train"] = _paired(reader, "datasets.train", notes)
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
            dataset = _paired(reader, f"datasets.{key}", notes)
            if dataset is not None:
                validation.append(dataset)
            for ignored in ("phase", "scale"):
                reader.read.add(f"datasets.{key}.{ignored}")
    data["validation"] = validation
    return data


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------
def _optimizer(reader: _Reader) -> dict:
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


def _schedule(reader: _Reader) -> dict:
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


def _loss_weight(reader: _Reader, section: str, expected_types: Iterable[str] | None = ("L1Loss",)) -> float:
    """``loss_weight`` of a loss section (0 when the section is absent: the term is off). ``expected_types``
    None: the section's name says which term it is and its ``type`` is not checked (cl_opt, ce_opt)."""
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


def _method(reader: _Reader, method: str, notes: list[str], ema_decay: float) -> dict:
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
    if method == "scratch":
        return section
    section["kd_weight"] = _loss_weight(reader, "train.logits_opt")
    section["contrastive_weight"] = _loss_weight(reader, "train.cl_opt", None)
    if section["contrastive_weight"] > 0:
        cl = "train.cl_opt"
        if reader.has(f"{cl}.weights"):
            section["layer_weights"] = [float(value) for value in reader.get(f"{cl}.weights")]
        num_neg = reader.number(f"{cl}.num_neg", 4, integer=True)
        section["num_negatives"] = num_neg + 1
        section["include_clean_negative"] = True
        degradations = []
        for key, kind in DEGRADATION_PROBABILITIES.items():
            probability = reader.number(f"{cl}.{key}", 0.0)
            if probability not in (0.0, 1.0):
                raise reader.error(
                    f"{cl}.{key}",
                    f"probability {probability:g} cannot be represented: dckd applies "
                    "each listed degradation to every degraded negative (1) or none "
                    "(0); set it to 0 or 1, or use dckd's config with "
                    "dckd.degradations",
                )
            if probability == 1.0:
                degradations.append(kind)
        if num_neg > 0 and not degradations:
            raise reader.error(
                cl,
                f"num_neg {num_neg} with every *_prob at 0 means undegraded copies of the clean "
                "negative, which dckd does not represent; turn one degradation on",
            )
        section["degradations"] = degradations or ["noise"]
        step = reader.number(f"{cl}.step", 1000, integer=True)
        section["history"] = {
            "decay": reader.number(f"{cl}.update_decay", 0.1),
            "source": "ema" if ema_decay > 0 else "student",
            "initial_interval_iters": step,
            "interval_growth_iters": step,
            "interval_growth_every_iters": PUBLISHED_HISTORY_GROWTH_EVERY_ITERS,
        }
        notes.append(
            f"negatives: num_neg {num_neg} -> dckd.num_negatives {num_neg + 1} (the history model on the "
            f"clean input plus {num_neg} degraded copies: {', '.join(degradations) or 'none'})"
        )
        notes.append(
            f"history schedule: the published code updates every {step} / {2 * step} / {3 * step} "
            "iterations over iterations 1-100k / 100k-200k / 200k-300k and fails past 300k; dckd continues "
            f"the pattern for any length and saves the history model in checkpoints (the published code "
            "loses it on resume)"
        )
        if ema_decay <= 0:
            notes.append(
                "train.ema_decay is 0: the published code needs the EMA student for its history model and "
                "fails without it; dckd uses the live student as the history source instead"
            )
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
    probability_path = "train.noisy.prob" if reader.get_silently("train.noisy") is not None else "noisy.prob"
    probability = reader.number(probability_path)
    if section["lcr_weight"] > 0:
        section["lcr_side"] = "teacher"
        section["lcr_probability"] = 0.5 if probability is None else probability
        notes.append(
            f"label consistency (DCKD*): teacher-side, weight {section['lcr_weight']:g}, each invertible "
            f"augmentation per sample with probability {section['lcr_probability']:g}"
            + (f" (read from {probability_path})" if probability is not None else " (released default)")
        )
    elif probability is not None:
        notes.append(
            f"{probability_path}: read as the label-consistency augmentation probability, but lcr_opt is "
            "absent, so it has no effect"
        )
    for key in ("noisy", "train.noisy"):
        if reader.get_silently(key) is not None:
            reader.read.add(key)
    return section


# --------------------------------------------------------------------------------------------------
def convert_published_options(raw: dict, source: str = "options") -> tuple[dict, list[str]]:
    """(dckd config mapping, notes) for a published DCKD / BasicSR options mapping.

    The mapping is not validated here; ``dckd.config.schema.config_from_dict`` does that. Raises ``ConfigError``
    naming the key for values that would change the method and have no dckd equivalent.
    """
    reader = _Reader(raw, source)
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

    student = _network(reader, "network_g")
    if student is None:
        raise reader.error("network_g", "the student network is missing")
    _checkpoint(reader, student, "g", notes, "student's initial weights")
    config["student"] = student
    teacher = _network(reader, "network_t")
    if method != "scratch":
        if teacher is None:
            raise reader.error("network_t", "method dckd needs the teacher network")
        _checkpoint(reader, teacher, "t", notes, "teacher")
        config["teacher"] = teacher
    elif teacher is not None:
        notes.append("network_t: ignored by method scratch")
    history = reader.get("network_his")
    if history is not None and history != raw.get("network_g"):
        notes.append(
            "network_his differs from network_g: dckd's history model is always a copy of the student; "
            "network_his is ignored"
        )
    if reader.get("path.pretrain_network_his"):
        notes.append("path.pretrain_network_his: ignored; the history model starts as a copy of the student")
    if reader.get("path.resume_state"):
        notes.append(
            f"path.resume_state: not an option in dckd; pass --resume {reader.get('path.resume_state')} "
            "(a BasicSR training state cannot be resumed by dckd)"
        )

    data = _data(reader, scale, num_gpu, notes)
    data["task"] = "sr" if scale > 1 else "deblur"
    ema_decay = reader.number("train.ema_decay", 0.0)
    config["train"] = {"seed": reader.number("manual_seed", 0, integer=True), "ema_decay": ema_decay}
    if reader.has("train.total_iter"):
        config["train"]["total_iters"] = reader.number("train.total_iter", integer=True)
    warmup = reader.number("train.warmup_iter", -1, integer=True)
    config["optimizer"] = _optimizer(reader)
    config["schedule"] = _schedule(reader)
    config["schedule"]["warmup_iters"] = max(warmup, 0)
    section = _method(reader, method, notes, ema_decay)
    if method == "dckd" and (section["contrastive_weight"] > 0 or section["codebook_weight"] > 0):
        config["vqgan"] = _vqgan(reader, notes)
    else:
        for key in ("network_vqgan", "path.pretrain_network_vqgan", "path.strict_load_vqgan"):
            if reader.get(key) is not None:
                notes.append(f"{key}: ignored (no term of this configuration uses the VQGAN)")
    reader.read.update({"path.strict_load_vqgan", "path.param_key_vqgan"})

    evaluation: dict[str, Any] = {}
    if reader.has("val.val_freq"):
        config["train"]["validate_every_iters"] = reader.number("val.val_freq", integer=True)
    for metric in reader.get_silently("val.metrics") or {}:
        prefix = f"val.metrics.{metric}"
        reader.read.add(f"{prefix}.type")
        if reader.has(f"{prefix}.crop_border"):
            evaluation.setdefault("crop_border", reader.number(f"{prefix}.crop_border", integer=True))
        if reader.get_silently(f"{prefix}.test_y_channel") is not None:
            evaluation.setdefault("y_channel", bool(reader.get(f"{prefix}.test_y_channel")))
        if metric not in ("psnr", "ssim"):
            notes.append(f"{prefix}: dckd validates with PSNR and SSIM only; this metric is not computed")
    if scale == 1 and evaluation.get("y_channel"):
        data["task"] = "derain"
    if scale == 1:
        notes.append(f"scale 1: task {data['task']!r} (deraining when validation is on the Y channel, else deblurring)")
    if reader.get("val.save_img"):
        notes.append("val.save_img: dckd's validation saves no images; use dckd test --save-images on the weights")
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
            f"dist_params: ignored; torchrun sets up the processes (torchrun --nproc_per_node={num_gpu} "
            f"-m dckd train {source})"
        )

    for path in reader.unread():
        notes.append(f"{path}: not understood; ignored")
    return config, notes
