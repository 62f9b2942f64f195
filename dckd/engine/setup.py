"""The one place that turns a validated ``Config`` into objects: networks, datasets, the method, the optimizer."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dckd import data
from dckd.config.schema import Config, DatasetConfig, NetworkConfig, VQGANConfig
from dckd.data.bundled import bundled_dataset
from dckd.data.sampler import seed_for
from dckd.data.synthetic_dataset import SyntheticDataset
from dckd.engine.checkpoints import network_spec
from dckd.errors import CheckpointError, ConfigError
from dckd.files.paths import resolve_path
from dckd.files.weights import check_state_dict_fits, extract_state_dict, load_state_dict_strict, read_checkpoint
from dckd.methods import METHODS, Method, Parts
from dckd.models import sizes
from dckd.models.backbones import BACKBONES, KEY_CONVERTERS, resolve
from dckd.models.spandrel_network import SPANDREL_BACKBONE, import_spandrel, load_spandrel_network
from dckd.models.vqgan import VQGANEncoder, load_vqgan_encoder

# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------
# Where a network's class comes from decides what may name it. A config file the user passes, a command-line
# option (--backbone) and a Python call may name a user's class "package.module:Class", which is imported.
# A record read from a weights file may only select one of dckd's own BACKBONES: a file never decides which
# code runs (``record_from_file``).
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _import_error_hint(module_name: str, error: ModuleNotFoundError) -> str:
    """What to do when the user's module is not importable (the ``dckd`` script does not search the cwd)."""
    top = module_name.split(".")[0]
    if error.name and error.name.split(".")[0] != top:
        return f"module {module_name!r} imports {error.name!r}, which is not installed"
    working = Path.cwd()
    candidates = [working / f"{top}.py", working / top]
    found = next((path for path in candidates if path.exists()), None)
    advice = (
        "dckd imports your class with Python's rules: install your package (pip install -e <your project>) or "
        "put its folder on PYTHONPATH. The `dckd` command does not search the working directory; "
        "`python -m dckd` does"
    )
    if found is not None:
        return (
            f"{found} is in the working directory: run `python -m dckd ...` or `PYTHONPATH=. dckd ...` here. {advice}"
        )
    return advice


def _network_class(backbone: str) -> type[nn.Module]:
    """The class a user-given backbone name means: a key of BACKBONES, or "package.module:Class" (imported)."""
    if backbone in BACKBONES:
        return BACKBONES[backbone]
    if ":" not in backbone:
        raise ConfigError(
            f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)} or 'package.module:Class'"
        )
    module_name, class_name = backbone.split(":", 1)
    if not (_IDENTIFIER_PATH.match(module_name) and _IDENTIFIER_PATH.match(class_name)):
        raise ConfigError(f"backbone {backbone!r}: expected 'package.module:Class' (Python names, dots between)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"backbone {backbone!r}: cannot import module {module_name!r} ({error}); "
            f"{_import_error_hint(module_name, error)}"
        ) from None
    except Exception as error:  # the user's module failed while being imported
        raise ConfigError(
            f"backbone {backbone!r}: importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    network_class: Any = module
    for part in class_name.split("."):
        network_class = getattr(network_class, part, None)
    if not (isinstance(network_class, type) and issubclass(network_class, nn.Module)):
        raise ConfigError(f"backbone {backbone!r}: {class_name!r} in {module_name!r} is not an nn.Module class")
    return network_class


def network_record(spec: NetworkConfig, scale: int | None = None) -> dict[str, Any]:
    """{"backbone", "options"[, "scale"]}: enough to rebuild the architecture (stored with saved weights).
    ``scale`` (output size / input size) is recorded for every network, a user's class included."""
    try:
        backbone, kwargs = resolve(spec.preset, spec.backbone, spec.options)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    record: dict[str, Any] = {"backbone": backbone, "options": kwargs}
    if scale is not None:
        record["scale"] = int(scale)
    return record


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """A record's options must be plain data (numbers, strings, lists, mappings), never an object to call."""
    if depth > 8:
        raise CheckpointError(f"{where}: nested too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CheckpointError(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        if len(value) > 1024:
            raise CheckpointError(f"{where}: a list of {len(value)} values; expected a short list")
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{where}: key {key!r} is not a string")
            _check_plain(item, f"{where}.{key}", depth + 1)
        return
    raise CheckpointError(f"{where}: a {type(value).__name__} object; a network record holds plain values only")


def record_from_file(record: Any, source: str, user_class: str | None = None) -> dict[str, Any]:
    """The ``network`` record of a weights file, checked: ``{"backbone", "options", "scale"}``.

    The backbone must be a key of ``BACKBONES``; a record naming a class outside dckd is accepted only when
    the user named that same class (``user_class``, from ``--backbone``); otherwise it is an error that says
    which class the file names and what to pass. Options must be plain values; ``scale`` a positive integer
    (absent in files of dckd 0.1).
    """
    if not isinstance(record, dict):
        raise CheckpointError(f"{source}: its 'network' record is a {type(record).__name__}, expected a mapping")
    unknown = sorted(str(key) for key in record if key not in ("backbone", "options", "scale"))
    if unknown:
        raise CheckpointError(f"{source}: its 'network' record has unknown entries {unknown}")
    backbone = record.get("backbone")
    if not isinstance(backbone, str):
        raise CheckpointError(f"{source}: its 'network' record names no backbone (got {backbone!r})")
    if backbone not in BACKBONES and backbone != user_class:
        if ":" in backbone:
            raise CheckpointError(
                f"{source} says it holds the class {backbone!r}, code from outside dckd. A file never chooses "
                f"which code dckd imports: if you trust that class, name it yourself with --backbone {backbone} "
                f"(dckd.load_network(path, backbone={backbone!r}) in Python); its options and scale are then read "
                "from the file"
            )
        raise CheckpointError(
            f"{source}: its 'network' record names the unknown backbone {backbone!r}; expected one of "
            f"{', '.join(BACKBONES)}"
        )
    options = record.get("options", {})
    if not isinstance(options, dict):
        raise CheckpointError(f"{source}: its 'network' options are a {type(options).__name__}, expected a mapping")
    _check_plain(options, f"{source}: network option")
    checked: dict[str, Any] = {"backbone": backbone, "options": dict(options)}
    if "scale" in record:
        scale = record["scale"]
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise CheckpointError(f"{source}: its 'network' scale is {scale!r}, expected a positive integer")
        checked["scale"] = scale
    return checked


def declared_scale(network: nn.Module) -> int | None:
    """The network's own ``scale`` (or BasicSR's ``upscale``) attribute, when it is a positive integer."""
    for attribute in ("scale", "upscale"):
        value = getattr(network, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return None


def _skeleton(network_class: type[nn.Module], backbone: str, options: dict[str, Any], description: str):
    """The network on the meta device (sizes checked, no memory), or None for a user's class that cannot be
    built there (it is then built directly: its sizes are the user's own)."""
    if backbone in BACKBONES:
        return sizes.meta_network(lambda: network_class(**options), description)
    try:
        return sizes.meta_network(lambda: network_class(**options), description)
    except ConfigError:
        raise
    except Exception:  # e.g. .item() on a meta tensor in the user's constructor
        return None


def _convert_layout(converter, state_dict: dict, network: nn.Module, description: str) -> dict:
    """``converter(state_dict, network)`` (an official key layout to ours); what it cannot map, or a mean shift
    that is not this network's, is a ``CheckpointError`` naming the file."""
    try:
        return converter(state_dict, network)
    except (KeyError, ValueError) as error:
        reason = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise CheckpointError(f"{description}: {reason}") from None


def construct_network(
    backbone: str,
    options: dict[str, Any],
    description: str = "network",
    state_dict: dict[str, torch.Tensor] | None = None,
    source: str = "",
) -> nn.Module:
    """Instantiate ``backbone`` with ``options``, after checking them: against the constructor's signature,
    by value (each backbone's checks), by size on the meta device, and against ``state_dict`` when given
    (loaded strictly; ``source`` names it). Nothing large is allocated before all of these pass."""
    network_class = _network_class(backbone)
    try:
        inspect.signature(network_class).bind(**options)
    except TypeError as error:
        accepted = ", ".join(name for name in inspect.signature(network_class).parameters if name != "self")
        raise ConfigError(
            f"{description}: options {sorted(options)} do not fit {network_class.__name__} ({error}); "
            f"it accepts: {accepted}"
        ) from None
    skeleton = _skeleton(network_class, backbone, options, description)
    converter = KEY_CONVERTERS.get(backbone)
    architecture = f"{description} ({backbone} {options})"
    if state_dict is not None and skeleton is not None:
        if converter is not None:
            state_dict = _convert_layout(converter, state_dict, skeleton, f"{source} for {architecture}")
        check_state_dict_fits(skeleton.state_dict(), state_dict, f"{source} for {architecture}", network_class.__name__)
    try:
        network = network_class(**options)
    except ValueError as error:
        raise ConfigError(f"{description}: {error}") from None
    if state_dict is not None:
        if converter is not None and skeleton is None:
            state_dict = _convert_layout(converter, state_dict, network, f"{source} for {architecture}")
        load_state_dict_strict(network, state_dict, f"{source} for {architecture}")
    return network


def _checkpoint_state_dict(path: str, key: str | None, content: Any = None) -> tuple[dict, str]:
    """(state_dict, description of where it came from) of a checkpoint file (read once when ``content``)."""
    content = read_checkpoint(path) if content is None else content
    state_dict, used = extract_state_dict(content, key, source=f"checkpoint {path}")
    return state_dict, f"checkpoint {path}" + (f" (entry {used!r})" if used else "")


def build_network(spec: NetworkConfig, description: str = "network", scale: int | None = None) -> nn.Module:
    """Build the network a ``NetworkConfig`` describes and load its checkpoint strictly when given.

    ``backbone: spandrel`` lets spandrel detect the architecture from the checkpoint (``build_spandrel_network``;
    ``scale``, the run's ``data.scale``, is checked against what spandrel read). A spec with only a checkpoint
    must go through ``resolve_network_source`` first."""
    if spec.backbone == SPANDREL_BACKBONE:
        return build_spandrel_network(spec, description, scale)
    record = network_record(spec)
    if not spec.checkpoint:
        return construct_network(record["backbone"], record["options"], description)
    state_dict, source = _checkpoint_state_dict(spec.checkpoint, spec.checkpoint_key)
    return construct_network(record["backbone"], record["options"], description, state_dict, source)


def build_spandrel_network(spec: NetworkConfig, description: str, scale: int | None = None) -> nn.Module:
    """The network spandrel detects in ``spec.checkpoint``, read by dckd's safe reader (spandrel gets the
    state_dict, never the file), wrapped by ``dckd.models.spandrel_network.SpandrelNetwork``; its scale, read by
    spandrel from the weights, must be ``scale`` when given."""
    state_dict, source = _checkpoint_state_dict(spec.checkpoint, spec.checkpoint_key)
    network = load_spandrel_network(state_dict, f"{description} {source}")
    if scale is not None and network.scale != scale:
        raise ConfigError(
            f"data.scale is {scale}, but the {description} in {spec.checkpoint} is a x{network.scale} "
            f"{network.architecture} (spandrel reads the scale from the weights); set data.scale: {network.scale} "
            f"or give a x{scale} {description}"
        )
    return network


def stored_record(path: str | Path, content: Any) -> Any:
    """The unchecked ``network`` record a file carries (check it with ``record_from_file``): a ``.pth``'s
    ``network`` entry, or the metadata of a safetensors file dckd exported; None when there is none."""
    if Path(str(path)).suffix.lower() == ".safetensors":
        return network_spec(path)
    return content.get("network") if isinstance(content, dict) else None


def resolve_network_source(spec: NetworkConfig | None, role: str) -> NetworkConfig | None:
    """``spec`` with its backbone filled in when it gives only a checkpoint (``teacher: {checkpoint: FILE}``).

    - The file's dckd ``network`` record (a ``weights.pth`` or training checkpoint of dckd) names the backbone
      and options: only dckd's ``BACKBONES`` (``record_from_file``).
    - A file without a record: for the teacher, spandrel detects the architecture (``backbone: spandrel``); it
      must import now, else the error says what to install or to name the network. For another role it is an
      error: the network must be named.

    Specs that name a preset or a backbone are returned as they are; nothing is built here.
    """
    if spec is None or spec.preset is not None or spec.backbone is not None:
        return spec
    raw_record = stored_record(spec.checkpoint, read_checkpoint(spec.checkpoint))
    source = f"{role}.checkpoint {spec.checkpoint}"
    if raw_record is not None:
        record = record_from_file(raw_record, source)
        return dataclasses.replace(spec, backbone=record["backbone"], options=record["options"])
    if role != "teacher":
        raise ConfigError(
            f"{source}: the file does not say which network it holds (no dckd 'network' record); set {role}.preset "
            f"or {role}.backbone (with {role}.options)"
        )
    import_spandrel(
        f"{source}: the file does not say which network it holds (no dckd 'network' record), so dckd lets "
        f"spandrel detect its architecture (or set {role}.preset / {role}.backbone to name the network). That"
    )
    return dataclasses.replace(spec, backbone=SPANDREL_BACKBONE)


def resolve_network_sources(config: Config) -> Config:
    """``config`` with the student and teacher specs through ``resolve_network_source`` (read once per run,
    before anything is built; the run's config.yaml then records the backbone that was used)."""
    student = resolve_network_source(config.student, "student")
    teacher = resolve_network_source(config.teacher, "teacher") if config.needs.teacher else config.teacher
    if student is config.student and teacher is config.teacher:
        return config
    return dataclasses.replace(config, student=student, teacher=teacher)


@dataclass
class LoadedNetwork:
    """A network read from a weights file for ``dckd test`` / ``dckd infer`` / ``dckd.load_network``."""

    network: nn.Module
    scale: int
    """Output size / input size: every output is checked to be exactly this times its input."""
    backbone: str
    options: dict[str, Any]


def network_from_weights(
    path: str,
    preset: str | None = None,
    backbone: str | None = None,
    options: dict[str, Any] | None = None,
    key: str | None = None,
    scale: int | None = None,
) -> nn.Module:
    """The network of ``load_weights_network`` (same arguments)."""
    return load_weights_network(path, preset, backbone, options, key, scale).network


def load_weights_network(
    path: str,
    preset: str | None = None,
    backbone: str | None = None,
    options: dict[str, Any] | None = None,
    key: str | None = None,
    scale: int | None = None,
) -> LoadedNetwork:
    """A network for ``dckd test`` / ``dckd infer``: the architecture from the file's own record (weights
    saved by dckd; only dckd's backbones, see ``record_from_file``) or from the user's ``preset`` /
    ``backbone`` + ``options`` (official checkpoints, plain state_dicts of a user's class); EMA weights
    preferred. The scale: the user's ``scale``, the file's record and the network's own attribute must agree.
    """
    source = f"weights {path}"
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise ConfigError(f"--scale {scale!r}: expected a positive integer")
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"--options: expected a JSON object of constructor arguments, got {options!r}")
    content = read_checkpoint(path)
    raw_record = stored_record(path, content)
    record = None
    if raw_record is not None:
        user_class = backbone if backbone is not None and backbone not in BACKBONES else None
        record = record_from_file(raw_record, source, user_class=user_class)
    if preset is None and backbone is None and record is None:
        if options:
            raise ConfigError(f"--options describe a backbone: give --backbone (or --preset) with them for {path}")
        raise ConfigError(
            f"{path} does not say which network it holds; pass --preset (see `dckd models`), or "
            "--backbone package.module:Class --options '{...}' --scale N for your own class"
        )
    try:
        chosen, kwargs = resolve(preset, backbone or (None if preset else record["backbone"]), options)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if record is not None:
        if record["backbone"] != chosen:
            raise ConfigError(
                f"{source} holds a {record['backbone']!r} network, but {'--preset ' + preset if preset else ''}"
                f"{' ' if preset and backbone else ''}{'--backbone ' + backbone if backbone else ''} names "
                f"{chosen!r}; leave it out to use the file's record"
            )
        if preset is None:
            kwargs = {**record["options"], **(options or {})}
    state_dict, where = _checkpoint_state_dict(path, key, content)
    network = construct_network(chosen, kwargs, source, state_dict, where)
    claims = {"--scale": scale, "the file's record": record.get("scale") if record else None}
    own = declared_scale(network)
    if chosen in BACKBONES:  # dckd's backbones know their scale from their options
        claims["the network's options"] = own
    elif own is not None and not any(value is not None for value in claims.values()):
        claims[f"{type(network).__name__}.scale"] = own  # a user's attribute only when nothing else says
    stated = {who: value for who, value in claims.items() if value is not None}
    if len(set(stated.values())) > 1:
        raise ConfigError(
            f"{source}: the scale is ambiguous: "
            + ", ".join(f"{who}: x{value}" for who, value in stated.items())
            + "; they must agree"
        )
    if not stated:
        raise ConfigError(
            f"{source}: {chosen} does not say its scale (no record in the file, no 'scale' attribute); pass --scale N"
        )
    return LoadedNetwork(network, next(iter(stated.values())), chosen, kwargs)


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
    alpha: str = "error",
):
    """One dataset; ``lq_patch_size`` None means whole images (evaluation).

    ``missing_pairs="report"`` leaves files without a partner to the data check (which lists them, or
    skips them with ``data.skip_bad_files``) instead of failing at once. ``alpha``: ``data.alpha``.
    """
    options = dict(lq_patch_size=lq_patch_size, augment=augment, cache_images=spec.cache_images, alpha=alpha)
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
        teacher_backbone=network_record(config.teacher)["backbone"] if config.needs.teacher else None,
    )
    return METHODS[config.method].build(config.method_options, parts)


def build_optimizer(config: Config, parameters) -> torch.optim.Optimizer:
    spec = config.optimizer
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[spec.name]
    return optimizer_class(parameters, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay)
