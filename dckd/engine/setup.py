"""The one place that turns a validated ``Config`` into objects: networks, datasets, the method, the optimizer."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import nn

from dckd.models.averaging import freeze
from dckd.models.backbones import BACKBONES, FEATURE_GROUPS, KEY_CONVERTERS, resolve
from dckd.files.weights import load_network_weights, read_checkpoint
from dckd.config.schema import Config, DatasetConfig, NetworkConfig, VQGANConfig
from dckd.config.loading import ConfigError


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------
def _network_class(backbone: str) -> type[nn.Module]:
    if backbone in BACKBONES:
        return BACKBONES[backbone]
    if ":" in backbone:  # a user's own network, imported explicitly: "package.module:ClassName"
        module_name, class_name = backbone.split(":", 1)
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ConfigError(f"backbone {backbone!r}: cannot import module {module_name!r} ({error})") from None
        network_class = getattr(module, class_name, None)
        if not (isinstance(network_class, type) and issubclass(network_class, nn.Module)):
            raise ConfigError(f"backbone {backbone!r}: {class_name!r} in {module_name!r} is not an nn.Module class")
        return network_class
    raise ConfigError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)} or 'package.module:Class'")


def network_record(spec: NetworkConfig) -> dict[str, Any]:
    """{"backbone", "options"}: enough to rebuild the architecture (stored with saved weights)."""
    try:
        backbone, kwargs = resolve(spec.preset, spec.backbone, spec.options)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return {"backbone": backbone, "options": kwargs}


def construct_network(backbone: str, options: dict[str, Any], description: str = "network") -> nn.Module:
    """Instantiate ``backbone`` with ``options`` checked against its constructor's signature."""
    network_class = _network_class(backbone)
    try:
        inspect.signature(network_class).bind(**options)
    except TypeError as error:
        accepted = ", ".join(name for name in inspect.signature(network_class).parameters if name != "self")
        raise ConfigError(f"{description}: options {sorted(options)} do not fit {network_class.__name__} ({error}); "
                          f"it accepts: {accepted}") from None
    return network_class(**options)


def build_network(spec: NetworkConfig, description: str = "network") -> nn.Module:
    """Build the network a ``NetworkConfig`` describes and load its checkpoint strictly when given."""
    record = network_record(spec)
    network = construct_network(record["backbone"], record["options"], description)
    if spec.checkpoint:
        converter = KEY_CONVERTERS.get(record["backbone"])
        load_network_weights(
            network,
            spec.checkpoint,
            key=spec.checkpoint_key,
            convert=(lambda state_dict: converter(state_dict, network)) if converter else None,
            architecture=f"{description} ({record['backbone']} {record['options']})",
        )
    return network


def network_from_weights(path: str, preset: str | None = None, backbone: str | None = None,
                         options: dict[str, Any] | None = None, key: str | None = None) -> nn.Module:
    """A network for ``dckd test`` / ``dckd infer``: the architecture from the file's own record (weights
    saved by dckd) or from ``preset``/``backbone`` (official checkpoints); EMA weights preferred."""
    from dckd.engine.checkpoints import network_spec

    if preset is None and backbone is None:
        record = network_spec(path)
        if record is None:
            raise ConfigError(f"{path} does not say which network it holds; pass --preset (see `dckd models`)")
        backbone, options = record["backbone"], {**record["options"], **(options or {})}
    return build_network(NetworkConfig(preset=preset, backbone=backbone, options=dict(options or {}),
                                       checkpoint=path, checkpoint_key=key), description=f"weights {path}")


def build_vqgan(spec: VQGANConfig) -> nn.Module:
    """The frozen VQGAN encoder, strictly loaded (decoder and loss weights of a taming ``last.ckpt`` are
    ignored explicitly). Architecture: the config's, else the metadata of a ``dckd train-codebook``
    checkpoint (``vqgan_config``), else the official f16 / 1024-code configuration."""
    from dckd.files.weights import extract_state_dict
    from dckd.models.vqgan import VQGANEncoder, taming_f16_1024_config

    content = read_checkpoint(spec.checkpoint)
    stored = dict(content.get("vqgan_config", {})) if isinstance(content, dict) else {}
    official = taming_f16_1024_config()
    embed_dim = spec.embed_dim or stored.get("embed_dim") or official["embed_dim"]
    n_embed = spec.n_embed or stored.get("n_embed") or official["n_embed"]
    ddconfig = spec.ddconfig or stored.get("ddconfig") or official["ddconfig"]
    encoder = VQGANEncoder(embed_dim=embed_dim, n_embed=n_embed, ddconfig=ddconfig)
    state_dict, _ = extract_state_dict(content, source=f"VQGAN checkpoint {spec.checkpoint}")
    encoder.load_taming_state_dict(state_dict, source=f"VQGAN checkpoint {spec.checkpoint}")
    return freeze(encoder)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def build_dataset(spec: DatasetConfig, scale: int, lq_patch_size: int | None, augment: bool, seed: int = 0,
                  missing_pairs: str = "error"):
    """One dataset; ``lq_patch_size`` None means whole images (evaluation).

    ``missing_pairs="report"`` leaves files without a partner to the data check (which lists them, or
    skips them with ``data.skip_bad_files``) instead of failing at once.
    """
    from dckd import data

    options = dict(lq_patch_size=lq_patch_size, augment=augment, cache_images=spec.cache_images)
    if spec.name:
        options["name"] = spec.name
    if spec.kind == "benchmark":
        return data.sr_benchmark(spec.root, scale, **options)
    if spec.kind == "paired":
        return data.paired_folders(spec.gt_dir, spec.lq_dir, scale, spec.filename_template, missing_pairs, **options)
    if spec.kind == "hr_only":
        return data.hr_folder(spec.gt_dir, scale, **options)
    if spec.kind == "gopro":
        return data.gopro(spec.root, spec.split, missing_pairs, **options)
    if spec.kind == "input_target":
        return data.input_target(spec.root, spec.filename_template, missing_pairs, **options)
    if spec.kind == "bundled":
        from dckd.data.bundled import bundled_dataset

        return bundled_dataset(spec.split, scale, **options)
    if spec.kind == "synthetic":
        from dckd.data.synthetic_dataset import SyntheticDataset

        if scale != 1:
            raise ConfigError(f"dataset {spec.gt_dir}: synthetic {spec.synthetic_task} pairs need data.scale 1, got {scale}")
        return SyntheticDataset(data.hr_folder(spec.gt_dir, 1, **options), spec.synthetic_task, seed)
    raise ConfigError(f"unknown dataset kind {spec.kind!r}")


# --------------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------------
def _evenly_paired_layers(student: nn.Module, teacher: nn.Module, backbone: str) -> tuple[list[str], list[str]]:
    """FAKD default: every student group paired with the teacher group at the same relative depth."""
    groups = FEATURE_GROUPS.get(backbone)
    if groups is None:
        raise ConfigError(f"fakd: no default feature layers for backbone {backbone!r}; set fakd.student_layers "
                          "and fakd.teacher_layers")
    student_layers, teacher_layers = groups(student), groups(teacher)
    count = len(student_layers)
    paired = [teacher_layers[round((index + 1) * len(teacher_layers) / count) - 1] for index in range(count)]
    return student_layers, paired


def build_method(
    config: Config,
    student: nn.Module,
    teacher: nn.Module | None,
    vqgan: nn.Module | None,
    device: torch.device,
    rank: int = 0,
):
    """The selected method with its networks; ``student`` may be DDP-wrapped (frozen networks never are)."""
    from dckd.models.averaging import unwrap
    from dckd.data.sampler import seed_for
    from dckd.methods.dckd.feature_space import VQGANSpace
    from dckd.methods.dckd.history import HistoryModel, HistorySchedule
    from dckd.methods.dckd.invertible import InvertibleAugmentation
    from dckd.methods import METHODS
    from dckd.methods.dckd.negatives import NegativeInputs

    name = config.method
    options = config.method_options
    method_class = METHODS[name]

    def generator(purpose: str) -> torch.Generator:
        # Explicit, per-rank, per-purpose streams; their states are saved in checkpoints.
        return torch.Generator().manual_seed(seed_for(config.train.seed, purpose, rank))

    def history(spec) -> HistoryModel:
        schedule = HistorySchedule(spec.initial_interval_iters, spec.interval_growth_iters, spec.interval_growth_every_iters)
        return HistoryModel(unwrap(student), spec.decay, schedule, spec.source)

    common = dict(reconstruction_loss=options.reconstruction_loss, reconstruction_weight=options.reconstruction_weight)
    if name == "scratch":
        return method_class(student, **common)
    if name == "logits":
        return method_class(student, teacher, kd_weight=options.kd_weight, **common)
    if name == "fakd":
        student_layers, teacher_layers = list(options.student_layers), list(options.teacher_layers)
        if not student_layers:
            student_backbone = network_record(config.student)["backbone"]
            student_layers, teacher_layers = _evenly_paired_layers(unwrap(student), teacher, student_backbone)
        return method_class(student, teacher, student_layers, teacher_layers, kd_weight=options.kd_weight,
                            affinity_weight=options.affinity_weight, **common)
    if name == "dckd":
        uses_vqgan = options.contrastive_weight > 0 or options.codebook_weight > 0
        contrastive = options.contrastive_weight > 0
        return method_class(
            student,
            teacher,
            vqgan=VQGANSpace(vqgan, options.vqgan_input_range) if uses_vqgan else None,
            history=history(options.history) if contrastive else None,
            negatives=NegativeInputs(options.num_degraded_negatives, options.include_clean_negative,
                                     options.degradations, generator("negatives")) if contrastive else None,
            augmentation=InvertibleAugmentation(options.lcr_operations, options.lcr_probability,
                                                generator("lcr")) if options.lcr_weight > 0 else None,
            scale=config.data.scale,
            kd_weight=options.kd_weight,
            contrastive_weight=options.contrastive_weight,
            layer_weights=options.layer_weights,
            codebook_weight=options.codebook_weight,
            codebook_formula=options.codebook_formula,
            lcr_weight=options.lcr_weight,
            lcr_side=options.lcr_side,
            upcycling_weight=options.upcycling_weight,
            upcycling_zoom_in=options.upcycling_zoom_in,
            upcycling_zoom_out=options.upcycling_zoom_out,
            generator=generator("upcycling"),
            **common,
        )
    if name == "mclir":
        use_vqgan = options.feature_space == "vqgan" and options.contrast_weight > 0
        return method_class(
            student,
            history(options.history),
            VQGANSpace(vqgan, options.vqgan_input_range) if use_vqgan else None,
            contrast_weight=options.contrast_weight,
            layer_weights=options.layer_weights,
            **common,
        )
    raise ConfigError(f"unknown method {name!r}")


def build_optimizer(config: Config, parameters) -> torch.optim.Optimizer:
    spec = config.optimizer
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return optimizer_class(parameters, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay)
