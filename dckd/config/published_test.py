"""Read a BasicSR *test* options file of the published DCKD code (``options/test/test_SwinIR.yml``).

``dckd test OPTIONS.yml`` evaluates what such a file names, as BasicSR's ``basicsr/test.py`` would: the network
``network_g`` with the weights ``path.pretrain_network_g`` (entry ``param_key_g``; ``params_ema`` falls back to
``params`` as BasicSR does), on every ``datasets.test_*`` (``PairedImageDataset``: ``dataroot_gt`` +
``dataroot_lq`` matched by ``filename_tmpl``), in the order of their keys, with the PSNR/SSIM protocol of
``val.metrics`` (``crop_border``, ``test_y_channel``). Differences, stated in a note: dckd pads every input to
the network's window multiple and crops back (the released test file does not pad, so SwinIR fails on sides
that are not multiples of 8), and it writes images only with ``--save-images``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dckd.config.loading import from_dict
from dckd.config.published import (
    OptionsReader,
    checkpoint_of,
    evaluation_protocol,
    is_published_test_options,
    network_section,
    paired_dataset,
)
from dckd.config.schema import DatasetConfig, NetworkConfig
from dckd.errors import ConfigError

# Keys of a BasicSR test file that need nothing in dckd.
_NO_EFFECT = {
    "num_gpu",
    "manual_seed",
    "is_train",
    "dist",
    "rank",
    "world_size",
    "path.strict_load_g",
    "val.suffix",
    "val.pbar",
}


@dataclass(frozen=True)
class TestOptions:
    """What a BasicSR test file asks ``dckd test`` to do."""

    name: str
    network: NetworkConfig
    """The network with its checkpoint (``path.pretrain_network_g``) and entry."""
    scale: int
    datasets: tuple[DatasetConfig, ...]
    """The test sets, in the order of their keys (``test_1``, ``test_2``, ...)."""
    y_channel: bool | None
    crop_border: int | None
    task: str


def convert_published_test_options(raw: dict, source: str = "options") -> tuple[TestOptions, list[str]]:
    """(what to evaluate, notes) for a BasicSR test options mapping; ``ConfigError`` naming the key otherwise."""
    if not is_published_test_options(raw):
        raise ConfigError(
            f"{source} is not a BasicSR test options file (it has a train section or a training set): train with "
            f"`dckd train {source}`; `dckd test` takes a test file or a weights file and dataset folders"
        )
    reader = OptionsReader(raw, source)
    reader.read.update(_NO_EFFECT)
    notes: list[str] = []
    model_type = reader.get("model_type", "SRModel")
    if model_type not in ("SRModel", "SwinIRModel", "DCKDModel"):
        raise reader.error("model_type", f"{model_type!r} is not supported; expected SRModel")
    scale = reader.number("scale", 4, integer=True)
    name = str(reader.get("name", "test"))
    network = network_section(reader, "network_g")
    if network is None:
        raise reader.error("network_g", "the network to evaluate is missing")
    checkpoint_of(reader, network, "g", notes, "network")
    if "checkpoint" not in network:
        raise reader.error("path.pretrain_network_g", "the weights to evaluate are missing")
    datasets: list[dict[str, Any]] = []
    for key in sorted(reader.get_silently("datasets") or {}):
        dataset = paired_dataset(reader, f"datasets.{key}", notes)
        if dataset is not None:
            datasets.append(dataset)
    if not datasets:
        raise reader.error("datasets", "no test set (PairedImageDataset) to evaluate")
    evaluation = evaluation_protocol(reader, notes)
    if reader.get("val.save_img"):
        notes.append("val.save_img: pass --save-images FOLDER to write the restored images")
    notes.append(
        "padding: dckd pads every input to the network's window multiple (reflect) and crops the output back; "
        "the released test file does not pad (BasicSR's SRModel), so its SwinIR fails on LR sides that are not "
        "multiples of the window size"
    )
    for path in reader.unread():
        notes.append(f"{path}: not understood; ignored")
    options = TestOptions(
        name=name,
        network=from_dict(NetworkConfig, network, "network_g"),
        scale=scale,
        datasets=tuple(from_dict(DatasetConfig, dataset, "datasets") for dataset in datasets),
        y_channel=evaluation.get("y_channel"),
        crop_border=evaluation.get("crop_border"),
        task="sr" if scale > 1 else ("derain" if evaluation.get("y_channel") else "deblur"),
    )
    return options, notes
