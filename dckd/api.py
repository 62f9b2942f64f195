"""The Python API: distill a student you hold in memory, load networks, evaluate them.

The same engine as the command line (``dckd.engine.loop.train``) with the same validated options: ``distill``
writes the usual run folder (``config.yaml``, ``log.jsonl``, checkpoints, ``weights.pth``) and returns the
trained student.

    import dckd
    teacher = dckd.load_network("dckd:weights/demo_teacher_x4.pth")
    student = dckd.distill(MyNet(), teacher, "bundled", method="dckd", vqgan="dckd:weights/demo_codebook.pth",
                           total_iters=200, ema_decay=0)
    print(dckd.evaluate(student, "bundled:test"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from dckd.config.schema import Config, DataConfig, TrainConfig, config_from_dict
from dckd.engine.checkpoints import network_spec
from dckd.engine.distributed import resolve_device
from dckd.engine.loop import train
from dckd.engine.setup import network_from_weights, record_from_file
from dckd.errors import ConfigError, DatasetError
from dckd.eval.report import dataset_from_folder
from dckd.eval.restoration import evaluate_dataset, evaluation_protocol
from dckd.files.weights import load_network_weights
from dckd.methods import METHODS

SECTIONS = ("optimizer", "schedule", "train", "evaluation", "teacher_cache")
"""Config sections ``distill`` takes as dicts (``optimizer={"lr": 2e-4}``)."""
FLAT_DATA = tuple(field.name for field in dataclasses.fields(DataConfig) if field.name not in ("train", "validation"))
"""Data options ``distill`` takes as keywords (``batch_size=8``, ``lq_patch_size=32``)."""
FLAT_TRAIN = tuple(field.name for field in dataclasses.fields(TrainConfig) if field.name != "device")
"""Training options ``distill`` takes as keywords (``total_iters=1000``, ``ema_decay=0``)."""


def load_network(
    path: str | Path,
    *,
    preset: str | None = None,
    backbone: str | None = None,
    options: dict[str, Any] | None = None,
    key: str | None = None,
    scale: int | None = None,
) -> nn.Module:
    """A network in eval mode from a weights file: a dckd ``weights.pth`` (its own record says which of dckd's
    backbones it is; a record naming your own class needs ``backbone=`` naming it too), an official checkpoint
    with ``preset`` (``dckd models``) or ``backbone`` + ``options``, loaded strictly; ``scale`` for a state_dict
    of your class that does not say it."""
    return network_from_weights(
        str(path), preset=preset, backbone=backbone, options=options, key=key, scale=scale
    ).eval()


def network_scale(network: nn.Module, scale: int | None = None) -> int:
    """The network's SR factor: ``scale`` when given, else its ``scale`` / ``upscale`` attribute, else measured
    by one forward pass on a 16x16 input (output side / input side, which must be a whole number)."""
    if scale is not None:
        return int(scale)
    for attribute in ("scale", "upscale"):
        value = getattr(network, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    parameter = next(network.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = network.training
    with torch.no_grad():
        output = network.eval()(torch.zeros(1, 3, 16, 16, device=device))
    network.train(was_training)
    if output.dim() != 4 or output.shape[-1] % 16 or output.shape[-1] != output.shape[-2]:
        raise ConfigError(
            f"{type(network).__name__}: a 16x16 input gave an output of shape {tuple(output.shape)}, "
            "not a whole multiple; pass scale="
        )
    return output.shape[-1] // 16


class KeyedDataset(Dataset):
    """A user's dataset (``dataset[i] -> {"lq": (C, h, w), "gt": (C, sh, sw)}``) behind dckd's key protocol:
    the training sampler asks for ``(index, seed)``; crops and augmentations are the dataset's own."""

    def __init__(self, dataset: Dataset, name: str = "python") -> None:
        self.dataset, self.name = dataset, name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index = key[0] if isinstance(key, tuple) else key
        sample = self.dataset[index]
        if not (isinstance(sample, dict) and torch.is_tensor(sample.get("lq")) and torch.is_tensor(sample.get("gt"))):
            raise DatasetError(f"dataset {self.name}: item {index} is not a dict with 'lq' and 'gt' tensors")
        if sample["lq"].dim() != 3 or sample["gt"].dim() != 3:
            raise DatasetError(
                f"dataset {self.name}: item {index} has lq {tuple(sample['lq'].shape)} and gt "
                f"{tuple(sample['gt'].shape)}; expected (C, H, W) tensors in [0, 1]"
            )
        return {"lq": sample["lq"].float(), "gt": sample["gt"].float(), "name": str(sample.get("name", index))}


def _dataset_spec(data: str | Path) -> dict[str, Any]:
    """A dataset section for a folder or a bundled name (the layouts of ``dckd test``)."""
    text = str(data)
    if text.startswith("bundled"):
        return {"kind": "bundled", "split": text.split(":", 1)[1] if ":" in text else "train"}
    root = Path(text)
    if (root / "HR").is_dir():
        return {"kind": "benchmark", "root": text}
    if (root / "input").is_dir() and (root / "target").is_dir():
        return {"kind": "input_target", "root": text}
    return {"kind": "hr_only", "gt_dir": text}


def _class_path(network: nn.Module) -> str:
    return f"{type(network).__module__}:{type(network).__qualname__}"


def distill(
    student: nn.Module,
    teacher: nn.Module | str | Path | None = None,
    data: str | Path | Dataset = "bundled",
    method: str = "dckd",
    *,
    vqgan: nn.Module | str | Path | None = None,
    validation: Sequence[str | Path | Dataset] = (),
    scale: int | None = None,
    name: str | None = None,
    output_dir: str | Path = "runs",
    device: str = "auto",
    resume: str | Path | None = None,
    **options: Any,
) -> nn.Module:
    """Train ``student`` with ``method`` (a key of ``dckd.methods.METHODS``) and return it, trained.

    Args:
        student: your network (an ``nn.Module``, trained in place).
        teacher: a frozen teacher: an ``nn.Module``, or a weights file (a dckd ``weights.pth``; a file without
            dckd's record, e.g. an ESRGAN from the community, is detected by spandrel when it is installed,
            docs/interop.md); None for scratch.
        data: a folder (HR images, the benchmark layout, or ``input/`` + ``target/``), ``"bundled"`` (the
            photographs shipped with dckd), or a ``torch.utils.data.Dataset`` whose items are
            ``{"lq": (C, h, w), "gt": (C, s*h, s*w)}`` tensors in [0, 1] (its own crops and augmentations).
        method: ``scratch``, ``logits``, ``fakd``, ``dckd``, ``mclir``.
        vqgan: the frozen VQGAN (an encoder, or a checkpoint such as ``"dckd:weights/demo_codebook.pth"``).
        validation: folders / bundled names / datasets evaluated every ``train.validate_every_iters``.
        scale: the SR factor (default: the student's ``scale``/``upscale`` attribute, else measured).
        name, output_dir: the run folder is ``output_dir/name`` (default name: the method).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        resume: a checkpoint to resume from (default: the newest in the run folder, if any).
        **options: the method's options (``contrastive_weight=0.1``), the data options (``batch_size=8``,
            ``lq_patch_size=32``), the training options (``total_iters=1000``, ``ema_decay=0``, ``seed=1``), and
            the sections ``optimizer``, ``schedule``, ``train``, ``evaluation``, ``teacher_cache`` as dicts;
            validated as a config file is.

    Returns:
        ``student`` with its final weights: the EMA weights when ``train.ema_decay`` > 0 (as ``weights.pth``'s
        ``params_ema``), else the trained ones.
    """
    if method not in METHODS:
        raise ConfigError(f"method {method!r}: expected one of {', '.join(METHODS)}")
    method_fields = [field.name for field in dataclasses.fields(METHODS[method].Options)]
    groups = {"method": method_fields, "data": FLAT_DATA, "train": FLAT_TRAIN, "section": SECTIONS}
    chosen: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in options.items():
        owners = [group for group, names in groups.items() if key in names]
        if not owners:
            raise ConfigError(
                f"distill: unknown option {key!r}; it takes the {method} options ({', '.join(method_fields)}), "
                f"the data options ({', '.join(FLAT_DATA)}), the training options ({', '.join(FLAT_TRAIN)}) "
                f"and the sections {', '.join(SECTIONS)} as dicts"
            )
        if len(owners) > 1:
            raise ConfigError(
                f"distill: option {key!r} is both a {' and a '.join(owners)} option; pass it in a section "
                "dict (train={...}) instead"
            )
        chosen[owners[0]][key] = value
    sections = {key: dict(value) for key, value in chosen["section"].items()}
    method_options = chosen["method"]

    datasets: dict[str, Any] = {}
    data_section = {**chosen["data"], "scale": network_scale(student, scale)}
    if isinstance(data, Dataset):
        datasets["train"] = KeyedDataset(data, "train")
        data_section["train"] = {"kind": "python", "name": type(data).__name__}
        data_section.setdefault("check_files", False)
    else:
        data_section["train"] = _dataset_spec(data)
    if any(isinstance(item, Dataset) for item in validation):
        datasets["validation"] = [
            KeyedDataset(item, f"validation{index}")
            if isinstance(item, Dataset)
            else dataset_from_folder(str(item), data_section["scale"], "sr")
            for index, item in enumerate(validation)
        ]
    else:
        data_section["validation"] = [_dataset_spec(item) for item in validation]
    data_section.setdefault("num_workers", 0)
    train_section = {"device": device, **sections.pop("train", {}), **chosen["train"]}

    raw: dict[str, Any] = {
        "name": name or method,
        "output_dir": str(output_dir),
        "method": method,
        "student": {"backbone": _class_path(student)},
        "data": data_section,
        "train": train_section,
        **sections,
        method: method_options,
    }
    networks: dict[str, nn.Module] = {"student": student}
    if isinstance(teacher, (str, Path)):  # a file: recorded so that the run's config.yaml rebuilds it
        stored = network_spec(teacher)
        if stored is None:  # no dckd record: spandrel detects the architecture (the engine says what to install)
            raw["teacher"] = {"checkpoint": str(teacher)}
        else:
            record = record_from_file(stored, f"teacher {teacher}")  # only dckd's backbones: a file names no code
            raw["teacher"] = {"backbone": record["backbone"], "options": record["options"], "checkpoint": str(teacher)}
    elif teacher is not None:
        # Its weights are in memory: recorded as such (a config file cannot rebuild them), as for the VQGAN.
        raw["teacher"] = {"backbone": _class_path(teacher), "checkpoint": f"<in memory: {type(teacher).__name__}>"}
        networks["teacher"] = teacher
    if isinstance(vqgan, (str, Path)):
        raw["vqgan"] = {"checkpoint": str(vqgan)}
    elif vqgan is not None:
        raw["vqgan"] = {"checkpoint": f"<in memory: {type(vqgan).__name__}>"}
        networks["vqgan"] = vqgan
    config = config_from_dict(raw, source="dckd.distill")
    run_dir = train(config, resume=str(resume) if resume else None, networks=networks, datasets=datasets)
    key = "params_ema" if config.train.ema_decay > 0 else "params"
    load_network_weights(student, run_dir / "weights.pth", key=key, architecture=type(student).__name__)
    return student


def evaluate(
    network: nn.Module,
    data: str | Path | Dataset | Sequence[str | Path | Dataset],
    *,
    scale: int | None = None,
    task: str = "sr",
    y_channel: bool | None = None,
    crop_border: int | None = None,
    device: str = "auto",
    tile: int = 0,
    self_ensemble: bool = False,
    precision: str = "float32",
) -> dict[str, dict[str, Any]]:
    """PSNR/SSIM of ``network`` on datasets, as ``dckd test`` computes them.

    ``data``: a folder in a known layout, ``"bundled"`` / ``"bundled:test"`` / ``"bundled:val"``, a dataset of whole images
    (``{"lq", "gt"}``), or a list of these. Returns ``{dataset name: {"psnr", "ssim", "images": [{"name",
    "psnr", "ssim"}, ...]}}`` (Y channel and crop border by task, as the literature: SR crops the scale).
    """
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    scale = network_scale(network, scale)
    target = resolve_device(device)
    use_y, border = evaluation_protocol(task, scale, y_channel, crop_border)
    results = {}
    for index, item in enumerate(items):
        dataset = (
            KeyedDataset(item, f"dataset{index}")
            if isinstance(item, Dataset)
            else dataset_from_folder(str(item), scale, task)
        )
        result = evaluate_dataset(
            network.to(target),
            dataset,
            scale,
            target,
            use_y,
            border,
            tile,
            self_ensemble=self_ensemble,
            precision=precision,
        )
        results[getattr(dataset, "name", f"dataset{index}")] = {
            "psnr": result["psnr"],
            "ssim": result["ssim"],
            "images": [{"name": score.name, "psnr": score.psnr, "ssim": score.ssim} for score in result["images"]],
        }
    return results


__all__ = ["Config", "distill", "evaluate", "load_network", "network_scale"]
