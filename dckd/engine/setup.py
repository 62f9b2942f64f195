"""The one place that turns a validated ``Config`` into objects: networks, datasets, the method, the optimizer."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import nn

from dckd import data
from dckd.config.schema import Config, DatasetConfig, NetworkConfig, VQGANConfig
from dckd.data.bundled import bundled_dataset
from dckd.data.sampler import seed_for
from dckd.data.synthetic_dataset import SyntheticDataset
from dckd.engine.checkpoints import network_spec
from dckd.errors import ConfigError
from dckd.files.paths import resolve_path
from dckd.files.weights import load_network_weights
from dckd.methods import METHODS, Method, Parts
from dckd.models.backbones import BACKBONES, KEY_CONVERTERS, resolve
from dckd.models.vqgan import VQGANEncoder, load_vqgan_encoder


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
    raise ConfigError(
        f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)} or 'package.module:Class'"
    )


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
        raise ConfigError(
            f"{description}: options {sorted(options)} do not fit {network_class.__name__} ({error}); "
            f"it accepts: {accepted}"
        ) from None
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


def network_from_weights(
    path: str,
    preset: str | None = None,
    backbone: str | None = None,
    options: dict[str, Any] | None = None,
    key: str | None = None,
) -> nn.Module:
    """A network for ``dckd test`` / ``dckd infer``: the architecture from the file's own record (weights
    saved by dckd) or from ``preset``/``backbone`` (official checkpoints); EMA weights preferred."""
    if preset is None and backbone is None:
        record = network_spec(path)
        if record is None:
            raise ConfigError(f"{path} does not say which network it holds; pass --preset (see `dckd models`)")
        backbone, options = record["backbone"], {**record["options"], **(options or {})}
    return build_network(
        NetworkConfig(
            preset=preset, backbone=backbone, options=dict(options or {}), checkpoint=path, checkpoint_key=key
        ),
        description=f"weights {path}",
    )


def build_vqgan(spec: VQGANConfig) -> VQGANEncoder:
    """The frozen VQGAN encoder, strictly loaded (``dckd.models.vqgan.load_vqgan_encoder``)."""
    return load_vqgan_encoder(spec.checkpoint, spec.embed_dim, spec.n_embed, spec.ddconfig)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def build_dataset(
    spec: DatasetConfig,
    scale: int,
    lq_patch_size: int | None,
    augment: bool,
    seed: int = 0,
    missing_pairs: str = "error",
):
    """One dataset; ``lq_patch_size`` None means whole images (evaluation).

    ``missing_pairs="report"`` leaves files without a partner to the data check (which lists them, or
    skips them with ``data.skip_bad_files``) instead of failing at once.
    """
    options = dict(lq_patch_size=lq_patch_size, augment=augment, cache_images=spec.cache_images)
    if spec.name:
        options["name"] = spec.name
    # Path options: relative to the working directory; ``dckd:...`` names a folder shipped with dckd.
    root, gt_dir, lq_dir, meta_info_file = (
        None if text is None else resolve_path(text)
        for text in (spec.root, spec.gt_dir, spec.lq_dir, spec.meta_info_file)
    )
    if spec.kind == "benchmark":
        return data.sr_benchmark(root, scale, **options)
    if spec.kind == "paired":
        return data.paired_folders(
            gt_dir, lq_dir, scale, spec.filename_template, missing_pairs, meta_info_file=meta_info_file, **options
        )
    if spec.kind == "hr_only":
        return data.hr_folder(gt_dir, scale, **options)
    if spec.kind == "gopro":
        return data.gopro(root, spec.split, missing_pairs, **options)
    if spec.kind == "input_target":
        return data.input_target(root, spec.filename_template, missing_pairs, **options)
    if spec.kind == "bundled":
        return bundled_dataset(spec.split, scale, **options)
    if spec.kind == "synthetic":
        if scale != 1:
            raise ConfigError(
                f"dataset {spec.gt_dir}: synthetic {spec.synthetic_task} pairs need data.scale 1, got {scale}"
            )
        return SyntheticDataset(data.hr_folder(gt_dir, 1, **options), spec.synthetic_task, seed)
    if spec.kind == "python":
        raise ConfigError(
            f"dataset {spec.name or 'python'}: a Python dataset object was given to dckd.distill for this "
            "run; a config file cannot rebuild it: point the dataset at a folder instead"
        )
    raise ConfigError(f"unknown dataset kind {spec.kind!r}")


# --------------------------------------------------------------------------------------------------
# Method, optimizer
# --------------------------------------------------------------------------------------------------
def build_method(
    config: Config,
    student: nn.Module,
    teacher: nn.Module | None,
    vqgan: nn.Module | None,
    device: torch.device,
    rank: int = 0,
) -> Method:
    """The selected method with its networks; ``student`` may be DDP-wrapped (frozen networks never are)."""

    def generator(purpose: str) -> torch.Generator:
        # Explicit, per-rank, per-purpose streams; their states are saved in checkpoints.
        return torch.Generator().manual_seed(seed_for(config.train.seed, purpose, rank))

    parts = Parts(
        student=student,
        teacher=teacher,
        vqgan=vqgan,
        scale=config.data.scale,
        generator=generator,
        total_iters=config.train.total_iters,
        ema_decay=config.train.ema_decay,
        student_backbone=network_record(config.student)["backbone"],
        teacher_backbone=network_record(config.teacher)["backbone"] if config.teacher is not None else None,
    )
    return METHODS[config.method].build(config.method_options, parts)


def build_optimizer(config: Config, parameters) -> torch.optim.Optimizer:
    spec = config.optimizer
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return optimizer_class(parameters, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay)
