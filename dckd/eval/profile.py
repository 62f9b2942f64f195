"""Student against teacher: size, cost, speed, memory and quality of networks side by side (``dckd profile``).

Per network, at one input size (batch 1):

- ``parameters``: every parameter's elements;
- ``multiply_adds``: one forward pass, counted by ``dckd.eval.model_table.count_multiply_adds`` (torch's
  FlopCounterMode on a meta-device copy: convolutions, matmuls, attention; elementwise ops are not counted);
- ``latency_ms``: the median of ``repeats`` timed forward passes after ``warmup`` untimed ones, on a crop of a
  bundled photograph (CPU: with the thread count of the process; CUDA: synchronised before and after);
- ``peak_memory_bytes``: the largest total of tensors allocated during one forward pass and alive at once, above
  what was allocated before it (weights and input excluded). CUDA: ``torch.cuda.max_memory_allocated`` minus the
  memory allocated before the pass. CPU: the same quantity from ``torch.profiler``'s memory events (every
  allocation and free of the CPU allocator, in order); memory outside torch's allocator is not seen;
- ``psnr`` / ``ssim``: ``dckd.eval.restoration.evaluate_dataset`` on the dataset when one is given.

``profile_networks`` returns a ``ProfileReport``; ``format_table`` (terminal), ``markdown_table``,
``report_dict`` (JSON) and ``plot_profile`` (speed against quality, PNG) render it; ``write_profile`` writes
the three files.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from dckd.data import read_image
from dckd.errors import DckdError
from dckd.eval.model_table import count_multiply_adds, count_parameters
from dckd.eval.restoration import evaluate_dataset, evaluation_protocol
from dckd.files.paths import resolve_path
from dckd.files.weights import atomic_write

PHOTO = "dckd:bundled/test/HR/astronaut.png"
"""The real image whose crops the measurements and ``dckd export``'s checks run on (512 x 512, shipped)."""
CPU_MEMORY_METHOD = "the peak of live tensors allocated in one forward pass (torch.profiler memory events)"
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated minus the memory allocated before one forward pass"
REPORT_FILES = ("profile.json", "profile.md", "profile.png")


@dataclass
class NetworkProfile:
    """The measurements of one network."""

    label: str
    parameters: int
    multiply_adds: int
    latency_ms: float
    peak_memory_bytes: int | None
    scale: int
    psnr: float | None = None
    ssim: float | None = None


@dataclass
class ProfileReport:
    """Measurements of several networks under the same conditions (``profile_networks``)."""

    rows: list[NetworkProfile]
    input_size: tuple[int, int]
    device: str
    threads: int | None
    repeats: int
    warmup: int
    memory_method: str
    date: str
    torch_version: str
    dataset: str | None = None
    protocol: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def conditions(self) -> str:
        """One line: what, where and when (for tables and plot titles)."""
        threads = f", {self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else ""
        text = (
            f"batch 1, {self.input_size[0]}x{self.input_size[1]} input; {self.device}{threads}; torch "
            f"{self.torch_version}; latency: median of {self.repeats} after {self.warmup} warm-up; {self.date}"
        )
        if self.dataset:
            text += f"; PSNR/SSIM on {self.dataset} ({self.protocol})"
        return text


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
def input_channels(network: nn.Module) -> int:
    """Channels the network takes: those of its first convolution (3 when it has none)."""
    first = next((module for module in network.modules() if isinstance(module, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


def photo_batch(batch: int, height: int, width: int, channels: int = 3) -> torch.Tensor:
    """(batch, channels, height, width) float32 crops in [0, 1] of the bundled photograph (``PHOTO``), each image
    of the batch from another place; sides larger than the photo are mirrored, channels beyond 3 repeat RGB."""
    photo = read_image(resolve_path(PHOTO))  # (512, 512, 3) float32 in [0, 1]
    crops = []
    for index in range(batch):
        top, left = 20 + 17 * index, 30 + 23 * index
        need_height, need_width = top + height - photo.shape[0], left + width - photo.shape[1]
        source = photo
        if need_height > 0 or need_width > 0:
            source = np.pad(photo, ((0, max(need_height, 0)), (0, max(need_width, 0)), (0, 0)), mode="symmetric")
        crops.append(source[top : top + height, left : left + width])
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
    return images[:, [index % 3 for index in range(channels)]].contiguous()


def device_description(device: torch.device) -> str:
    """ "NVIDIA H200 (cuda:0)" or the CPU's model name from /proc/cpuinfo (or platform) with "(cpu)"."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} (cpu)"


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def median_latency_ms(network: nn.Module, images: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median wall time of ``network(images)`` in milliseconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        network(images)
    _synchronize(images.device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        network(images)
        _synchronize(images.device)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


@contextlib.contextmanager
def native_output_silenced(*descriptors: int):
    """Send the file descriptors (default: 2, stderr) to /dev/null for the block: native libraries print there
    what Python cannot silence (the profiler's start/stop lines, the ONNX exporter's graph dump on failure). An
    exception raised in the block is still raised, and shown, after it."""
    descriptors = descriptors or (2,)
    saved = []
    try:
        for descriptor in descriptors:
            saved.append((descriptor, os.dup(descriptor)))
    except OSError:  # a descriptor that is not open: leave everything as it is
        for _, copy in saved:
            os.close(copy)
        yield
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        with open(os.devnull, "w") as null:
            for descriptor, _ in saved:
                os.dup2(null.fileno(), descriptor)
            yield
    finally:
        for descriptor, copy in saved:
            os.dup2(copy, descriptor)
            os.close(copy)


@torch.no_grad()
def peak_memory_bytes(network: nn.Module, images: torch.Tensor) -> int | None:
    """Largest total of tensors allocated during ``network(images)`` and alive at once (see the module doc);
    None when the profiler gives no memory events."""
    device = images.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        network(images)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with native_output_silenced(), torch.profiler.profile(activities=activities, profile_memory=True) as profiler:
        network(images)
    results = getattr(profiler.profiler, "kineto_results", None)
    if results is None:
        return None
    events = sorted((event for event in results.events() if event.name() == "[memory]"), key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:  # allocations are positive, frees negative
        live += event.nbytes()
        peak = max(peak, live)
    return int(peak)


def network_scale(network: nn.Module, images: torch.Tensor) -> int:
    """The SR factor: the network's ``scale`` attribute, else output width / input width of one pass."""
    scale = getattr(network, "scale", None)
    if isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1:
        return scale
    with torch.no_grad():
        output = network(images)
    if output.shape[-1] % images.shape[-1]:
        raise DckdError(
            f"{type(network).__name__}: a {images.shape[-1]} pixels wide input gave {output.shape[-1]}, not a multiple"
        )
    return output.shape[-1] // images.shape[-1]


def profile_networks(
    networks: Sequence[nn.Module],
    labels: Sequence[str],
    dataset=None,
    *,
    input_size: tuple[int, int] = (64, 64),
    device: str | torch.device = "cpu",
    repeats: int = 20,
    warmup: int = 3,
    task: str = "sr",
) -> ProfileReport:
    """Measure every network under the same conditions (module doc); the networks are put in eval mode on
    ``device``. ``dataset`` (whole images, ``dataset[i] -> {"lq", "gt"[, "name"]}``, e.g.
    ``bundled_dataset("test", 4)``) adds PSNR/SSIM with ``task``'s protocol (SR: Y channel, border = scale);
    its pairs must match every network's scale."""
    if len(networks) != len(labels):
        raise DckdError(f"{len(networks)} networks but {len(labels)} labels")
    if repeats < 1 or warmup < 0:
        raise DckdError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = torch.device(device)
    height, width = input_size
    rows, protocol = [], None
    for network, label in zip(networks, labels):
        was_training = network.training
        network = network.to(device).eval()
        images = photo_batch(1, height, width, input_channels(network)).to(device)
        scale = network_scale(network, images)
        row = NetworkProfile(
            label=label,
            parameters=count_parameters(network),
            multiply_adds=count_multiply_adds(network, height, width, input_channels(network)),
            latency_ms=median_latency_ms(network, images, repeats, warmup),
            peak_memory_bytes=peak_memory_bytes(network, images),
            scale=scale,
        )
        if dataset is not None:
            _check_dataset_scale(dataset, scale, label)
            y_channel, crop_border = evaluation_protocol(task, scale, None, None)
            result = evaluate_dataset(network, dataset, scale, device, y_channel, crop_border)
            row.psnr, row.ssim = float(result["psnr"]), float(result["ssim"])
            protocol = f"{'Y' if y_channel else 'RGB'}, crop border {crop_border}"
        network.train(was_training)
        rows.append(row)
    return ProfileReport(
        rows=rows,
        input_size=(height, width),
        device=device_description(device),
        threads=torch.get_num_threads() if device.type == "cpu" else None,
        repeats=repeats,
        warmup=warmup,
        memory_method=CUDA_MEMORY_METHOD if device.type == "cuda" else CPU_MEMORY_METHOD,
        date=datetime.date.today().isoformat(),
        torch_version=torch.__version__,
        dataset=getattr(dataset, "name", type(dataset).__name__) if dataset is not None else None,
        protocol=protocol,
    )


def _check_dataset_scale(dataset, scale: int, label: str) -> None:
    item = dataset[0]
    lq_height, gt_height = item["lq"].shape[-2], item["gt"].shape[-2]
    if gt_height != lq_height * scale:
        raise DckdError(
            f"{label} is a x{scale} network, but the dataset's pairs are x{gt_height / lq_height:g} "
            f"(lq height {lq_height}, gt height {gt_height})"
        )


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
def _columns(report: ProfileReport) -> list[tuple[str, list[str]]]:
    """(header, cells) per column, shared by the terminal and Markdown tables."""
    rows = report.rows

    def memory(row: NetworkProfile) -> str:
        return f"{row.peak_memory_bytes / 2**20:.1f}" if row.peak_memory_bytes is not None else "-"

    columns = [
        ("network", [row.label for row in rows]),
        ("scale", [f"x{row.scale}" for row in rows]),
        ("params", [f"{row.parameters / 1e6:.3f}M" for row in rows]),
        ("GMACs", [f"{row.multiply_adds / 1e9:.3f}" for row in rows]),
        ("latency (ms)", [f"{row.latency_ms:.2f}" for row in rows]),
        ("peak memory (MiB)", [memory(row) for row in rows]),
    ]
    if any(row.psnr is not None for row in rows):
        columns.append(("PSNR (dB)", [f"{row.psnr:.3f}" if row.psnr is not None else "-" for row in rows]))
        columns.append(("SSIM", [f"{row.ssim:.4f}" if row.ssim is not None else "-" for row in rows]))
    return columns


def format_table(report: ProfileReport) -> str:
    """The table for a terminal, under the line of conditions."""
    columns = _columns(report)
    widths = [max(len(header), *(len(cell) for cell in cells)) for header, cells in columns]
    lines = [report.conditions, f"peak memory: {report.memory_method}", ""]
    lines.append("  ".join(header.ljust(width) for (header, _), width in zip(columns, widths)))
    for index in range(len(report.rows)):
        lines.append("  ".join(cells[index].ljust(width) for (_, cells), width in zip(columns, widths)))
    return "\n".join(lines)


def markdown_table(report: ProfileReport) -> str:
    columns = _columns(report)
    lines = [
        "| " + " | ".join(header for header, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for index in range(len(report.rows)):
        lines.append("| " + " | ".join(cells[index] for _, cells in columns) + " |")
    return f"{report.conditions}. Peak memory: {report.memory_method}.\n\n" + "\n".join(lines) + "\n"


def report_dict(report: ProfileReport) -> dict:
    document = asdict(report)
    document["input_size"] = list(report.input_size)
    return document


def plot_profile(report: ProfileReport, path: str | Path) -> Path:
    """Latency (x) against PSNR, or against parameters without a dataset; marker area grows with the
    multiply-adds. Written with matplotlib's object API (no pyplot state)."""
    rows = report.rows
    quality = all(row.psnr is not None for row in rows)
    figure = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    most = max(row.multiply_adds for row in rows) or 1
    for row in rows:
        y = row.psnr if quality else row.parameters / 1e6
        axis.scatter([row.latency_ms], [y], s=40 + 400 * row.multiply_adds / most, alpha=0.7)
        axis.annotate(row.label, (row.latency_ms, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    axis.margins(x=0.25, y=0.15)  # room for the labels right of the points
    axis.set_xlim(left=0)
    axis.set_xlabel(
        f"latency (ms, median, batch 1, {report.input_size[0]}x{report.input_size[1]}); marker area: multiply-adds"
    )
    axis.set_ylabel(f"PSNR (dB) on {report.dataset}" if quality else "parameters (M)")
    threads = f", {report.threads} thread{'s' if report.threads > 1 else ''}" if report.threads else ""
    axis.set_title(f"{report.device}{threads}, {report.date}", fontsize=9)
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=110, format="png"))
    return path


def write_profile(report: ProfileReport, folder: str | Path, overwrite: bool = False) -> list[Path]:
    """profile.json, profile.md and profile.png in ``folder``; refuses (before writing any) to replace an
    existing one unless ``overwrite``."""
    folder = Path(folder)
    paths = [folder / name for name in REPORT_FILES]
    existing = [str(path) for path in paths if path.exists()]
    if existing and not overwrite:
        raise DckdError(f"{', '.join(existing)} exist; pass --overwrite to replace them")
    json_path, markdown_path, plot_path = paths
    atomic_write(json_path, lambda temporary: temporary.write_text(json.dumps(report_dict(report), indent=2) + "\n"))
    atomic_write(markdown_path, lambda temporary: temporary.write_text(markdown_table(report)))
    plot_profile(report, plot_path)
    return paths
