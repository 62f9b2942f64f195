"""``dckd export``: a network to safetensors (with its description), ONNX or TorchScript, verified against PyTorch.

Every export is written to a temporary file beside ``OUT``, checked, and only then renamed onto ``OUT``; a
failed check raises ``ExportError`` and leaves no file (and an existing ``OUT`` untouched).

- **safetensors**: the state_dict in the official key layout (BasicSR for SwinIR/RCAN/EDSR, the authors'
  repositories for NAFNet/Restormer) and, as metadata, what rebuilds it (``dckd.engine.checkpoints``:
  architecture, constructor options, scale, dckd version, key layout). Checked by loading the file back through
  ``network_from_weights`` (the loader of ``dckd test``) and comparing one output with the source network.
- **ONNX** (``torch.onnx.export``) with dynamic batch, height and width; the TorchScript-based exporter by default
  (fast, honours opsets 14-23), or ``exporter="dynamo"`` (torch.export; opset 18 and above, needs onnxscript).
- **TorchScript** by ``torch.jit.trace`` (``torch.jit.script`` fails on Python constructs of four backbones).

ONNX and TorchScript files are checked by running them (onnxruntime on the CPU, ``torch.jit.load``) on crops of a
bundled photograph at sizes other than the traced one: an odd size, a batch of 2 at a multiple of 8 and 16, a
tiny size, and for NAFNet with TLC a size beyond its local-pooling window; the largest absolute difference to the
float32 PyTorch network must stay within ``TOLERANCE`` (1e-4 for float32, 5e-3 for float16 files). The traced
example (43x51) is odd and aligned to nothing, so every "pad needed" path is the one recorded.

dckd's backbones compute their padding, SwinIR's shift mask and NAFNet-TLC's pooling with tensor ops while they
are traced (``dckd.models.padding.exporting``), so the graphs are valid for every input size; other networks
are checked the same way, and a Python branch on the input size shows up as a failed check that names the
lines the tracer recorded as constants.
"""

from __future__ import annotations

import contextlib
import copy
import linecache
import logging
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

import dckd
from dckd.engine.checkpoints import weights_metadata
from dckd.engine.setup import network_from_weights
from dckd.errors import ExportError
from dckd.eval.profile import input_channels, native_output_silenced, photo_batch
from dckd.files.weights import atomic_write
from dckd.models.backbones import OFFICIAL_LAYOUTS, official_state_dict
from dckd.models.backbones.nafnet import LocalAvgPool2d

FORMATS: dict[str, tuple[str, ...]] = {
    "safetensors": (".safetensors",),
    "onnx": (".onnx",),
    "torchscript": (".pt", ".ts", ".torchscript"),
}
"""Export formats and the file name endings each accepts (``dckd test`` reads safetensors by its ending)."""
EXPORTERS = ("torchscript", "dynamo")
"""ONNX exporters of ``torch.onnx.export``: ``dynamo=False`` (TorchScript-based) or ``dynamo=True``."""
DEFAULT_OPSET = {"torchscript": 17, "dynamo": 18}
"""ONNX opset when none is asked: 17 has LayerNormalization and runs in every current runtime; the dynamo
exporter cannot convert below 18 (it silently keeps 18, so dckd refuses such a request)."""
TOLERANCE = {"float32": 1e-4, "float16": 5e-3}
"""Largest accepted |exported - PyTorch float32| on images in [0, 1]. Measured on every backbone: float32 graphs
differ by at most 1.2e-6 and float16 ones by at most 1.0e-3 (about PyTorch's own float16 error)."""
EXAMPLE_SIZE = (43, 51)
"""Traced input (H, W): odd and a multiple of nothing, so every "pad needed" branch is the one recorded."""
CHECK_SHAPES = ((1, 37, 45), (2, 64, 48), (1, 5, 7))
"""(batch, H, W) the exported file is run at: odd; a batch of 2 at a multiple of 8 and 16; tiny (smaller
than SwinIR's window and NAFNet/Restormer's level multiple, so padding is longer than the side)."""
KEY_LAYOUTS = {
    "swinir": "BasicSR 1.4.2 SwinIR (basicsr/archs/swinir_arch.py)",
    "rcan": "BasicSR 1.4.2 RCAN (basicsr/archs/rcan_arch.py)",
    "edsr": "BasicSR 1.4.2 EDSR (basicsr/archs/edsr_arch.py)",
    "nafnet": "megvii-research/NAFNet (basicsr/models/archs/NAFNet_arch.py)",
    "restormer": "swz30/Restormer (basicsr/models/archs/restormer_arch.py)",
}
"""The official code whose ``load_state_dict(strict=True)`` accepts a dckd backbone's state_dict as it is."""
LAYOUTS = ("dckd", "original")
"""Key layouts of a safetensors export: dckd's own (``KEY_LAYOUTS``) or the architecture's original code's."""


@dataclass
class Check:
    """One verification run: the input shape and the largest |exported - PyTorch| over the output."""

    shape: tuple[int, ...]
    max_difference: float


@dataclass
class ExportResult:
    path: Path
    format: str
    dtype: str
    tolerance: float
    checks: list[Check] = field(default_factory=list)
    opset: int | None = None
    exporter: str | None = None
    runtime: str = ""

    @property
    def max_difference(self) -> float:
        return max((check.max_difference for check in self.checks), default=0.0)


def format_for(path: str | Path, format: str | None) -> str:
    """The export format: ``format`` when given (checked against the file name's ending), else from the ending."""
    suffix = Path(path).suffix.lower()
    if format is None:
        for name, suffixes in FORMATS.items():
            if suffix in suffixes:
                return name
        endings = ", ".join(f"{name}: {' '.join(suffixes)}" for name, suffixes in FORMATS.items())
        raise ExportError(f"{path}: cannot tell the format from the ending {suffix!r}; pass --format ({endings})")
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    if suffix not in FORMATS[format]:
        raise ExportError(f"{path}: a {format} file must end with {' or '.join(FORMATS[format])}, not {suffix!r}")
    return format


# --------------------------------------------------------------------------------------------------
# Inputs for the checks
# --------------------------------------------------------------------------------------------------
def check_shapes(network: nn.Module) -> list[tuple[int, int, int]]:
    """``CHECK_SHAPES``, plus for NAFNet with TLC one size beyond the largest local-pooling window (the local
    branch; below 1.5x the training size every window covers the whole map)."""
    shapes = list(CHECK_SHAPES)
    windows = [module.kernel_size for module in network.modules() if isinstance(module, LocalAvgPool2d)]
    if windows:
        window = max(max(kernel) for kernel in windows)
        shapes.append((1, window + 9, window + 5))
    return shapes


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------
def check_exportable(network: nn.Module) -> None:
    """Refuse, before any work, the parts known to give graphs that are wrong at other sizes."""
    for name, module in network.named_modules():
        if isinstance(module, LocalAvgPool2d) and (module.fast_imp or not module.auto_pad):
            raise ExportError(
                f"{name}: NAFNet's TLC pooling with fast_imp=True or auto_pad=False chooses its subsampling and "
                "output size by Python code on the input size, which an exported graph would fix at the traced "
                "size; use the exact TLC pooling (dckd's --tlc, to_local(fast_imp=False)), which exports"
            )


def export_network(
    network: nn.Module,
    path: str | Path,
    format: str,
    *,
    record: dict[str, Any] | None = None,
    half: bool = False,
    opset: int | None = None,
    exporter: str = "torchscript",
    tolerance: float | None = None,
    overwrite: bool = False,
    layout: str = "dckd",
    say: Callable[[str], None] = print,
) -> ExportResult:
    """Export ``network`` (on the CPU) to ``path`` in ``format``, verify the file, then move it into place.

    ``record`` ({"backbone", "options"[, "scale"]}) is required for safetensors (its metadata); ``half`` writes
    float16 weights / a float16 graph (float16 input and output); ``opset`` and ``exporter`` are for ONNX;
    ``tolerance`` overrides ``TOLERANCE``; ``layout`` (safetensors) is ``dckd`` (BasicSR's keys, ``KEY_LAYOUTS``)
    or ``original`` (the architecture's original code, which spandrel / chaiNNer / ComfyUI read:
    ``dckd.models.backbones.official_state_dict``; RCAN differs). Raises ``ExportError`` (no file written) when
    a check fails.
    """
    path = Path(path)
    format = format_for(path, format)
    if format != "onnx" and (opset is not None or exporter != "torchscript"):
        raise ExportError(f"--opset and --exporter are options of ONNX export, not of {format}")
    if layout not in LAYOUTS:
        raise ExportError(f"unknown key layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if layout != "dckd" and format != "safetensors":
        raise ExportError(f"--layout is an option of safetensors export, not of {format}")
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter {exporter!r}; expected one of {', '.join(EXPORTERS)}")
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give the file to write")
    if path.exists() and not overwrite:
        raise ExportError(f"{path} exists; pass --overwrite to replace it")
    dtype = "float16" if half else "float32"
    tolerance = TOLERANCE[dtype] if tolerance is None else float(tolerance)
    network = copy.deepcopy(network).float().cpu().eval()
    check_exportable(network)
    result = ExportResult(path=path, format=format, dtype=dtype, tolerance=tolerance)
    if format == "safetensors":
        write = _safetensors_writer(network, record, half, layout, result)
    elif format == "onnx":
        opset = DEFAULT_OPSET[exporter] if opset is None else int(opset)
        result.opset, result.exporter = opset, exporter
        write = _onnx_writer(network, half, opset, exporter, result)
    else:
        write = _torchscript_writer(network, half, result)
    # The temporary file keeps the ending (the safetensors check loads it by name, onnxruntime reads it).
    atomic_write(path, write, temporary_suffix=f".partial{path.suffix}")
    say(describe(result))
    return result


def describe(result: ExportResult) -> str:
    """The lines ``dckd export`` prints: what was written and every check with its largest difference."""
    what = {"safetensors": "safetensors", "torchscript": "TorchScript (torch.jit.trace)"}.get(result.format)
    if result.format == "onnx":
        what = f"ONNX opset {result.opset} ({result.exporter} exporter), dynamic batch, height and width"
    lines = [f"wrote {result.path}: {what}, {result.dtype}", f"checked with {result.runtime} against PyTorch float32:"]
    for check in result.checks:
        lines.append(f"  input {'x'.join(map(str, check.shape)):<14} max |difference| {check.max_difference:.2e}")
    lines.append(f"largest difference {result.max_difference:.2e} <= tolerance {result.tolerance:g}")
    return "\n".join(lines)


def _safetensors_writer(network: nn.Module, record: dict | None, half: bool, layout: str, result: ExportResult):
    if record is None:
        raise ExportError(
            "safetensors export needs the network's description (architecture and options) for its metadata; "
            "the weights file has none: pass --preset"
        )
    if any(isinstance(module, LocalAvgPool2d) for module in network.modules()):
        raise ExportError(
            "this NAFNet uses TLC pooling, which is no weight: a safetensors file would hold the plain network. "
            "Export it without TLC and pass --tlc when loading it (ONNX and TorchScript build TLC into the graph)"
        )
    scale = int(record.get("scale") or getattr(network, "scale", 1))
    if layout == "original":
        try:
            weights = official_state_dict(record["backbone"], network)
        except ValueError as error:
            raise ExportError(f"--layout original: {error}") from None
        described = OFFICIAL_LAYOUTS[record["backbone"]]
    else:
        weights = network.state_dict()
        described = KEY_LAYOUTS.get(
            record["backbone"], f"the state_dict of {type(network).__module__}.{type(network).__name__}"
        )
    metadata = weights_metadata(record, scale, result.dtype, described)
    metadata["dckd_version"] = dckd.__version__
    state = {
        name: (tensor.half() if half and tensor.is_floating_point() else tensor).detach().contiguous().cpu()
        for name, tensor in weights.items()
    }

    def write(temporary: Path) -> None:
        save_file(state, str(temporary), metadata=metadata)
        result.runtime = "dckd's loader (network_from_weights)"
        loaded = network_from_weights(str(temporary)).eval()
        _verify(result, network, [CHECK_SHAPES[0]], lambda images: loaded(images))

    return write


def _onnx_writer(network: nn.Module, half: bool, opset: int, exporter: str, result: ExportResult):
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ExportError(f"ONNX export needs onnx and onnxruntime ({error}): pip install 'dckd[export]'") from None
    exported = copy.deepcopy(network).half() if half else network
    channels = input_channels(network)
    # The dynamo exporter needs a batch of 2: with 1, Restormer's pixel_unshuffle reshape fixes the batch at 1.
    example = photo_batch(2 if exporter == "dynamo" else 1, *EXAMPLE_SIZE, channels)
    example = example.half() if half else example

    def write(temporary: Path) -> None:
        with _exporter_quiet() as tracer_warnings:
            try:
                if exporter == "torchscript":
                    axes = {"input": {0: "batch", 2: "height", 3: "width"}}
                    axes["output"] = {0: "batch", 2: "out_height", 3: "out_width"}
                    torch.onnx.export(
                        exported,
                        (example,),
                        str(temporary),
                        dynamo=False,
                        opset_version=opset,
                        input_names=["input"],
                        output_names=["output"],
                        dynamic_axes=axes,
                    )
                else:
                    dynamic = torch.export.Dim.DYNAMIC
                    program = torch.onnx.export(
                        exported,
                        (example,),
                        dynamo=True,
                        opset_version=opset,
                        dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic},),
                        input_names=["input"],
                        output_names=["output"],
                        verbose=False,
                    )
                    program.save(str(temporary))
            except Exception as error:
                raise ExportError(_export_failure("ONNX", exporter, opset, error, network)) from None
        model = onnx.load(str(temporary), load_external_data=False)
        written = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
        if written != opset:
            raise ExportError(
                f"the {exporter} exporter wrote opset {written} when opset {opset} was asked"
                + (" (it cannot convert below 18); use --exporter torchscript for this opset" if opset < 18 else "")
            )
        dims = [dim.dim_param or dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or any(not isinstance(dims[axis], str) for axis in (0, 2, 3)):
            raise ExportError(f"the exported input has the fixed shape {dims}; expected dynamic batch, height, width")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 4  # fatal only: a failed run is reported in the ExportError's message
        session = onnxruntime.InferenceSession(str(temporary), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        result.runtime = f"onnxruntime {onnxruntime.__version__} (CPU)"

        def run(images: torch.Tensor) -> torch.Tensor:
            feed = images.half() if half else images
            return torch.from_numpy(session.run(None, {input_name: feed.numpy()})[0])

        _verify(result, network, check_shapes(network), run, tracer_warnings, tuple(example.shape[:1]) + EXAMPLE_SIZE)

    return write


def _torchscript_writer(network: nn.Module, half: bool, result: ExportResult):
    exported = copy.deepcopy(network).half() if half else network
    example = photo_batch(1, *EXAMPLE_SIZE, input_channels(network))
    example = example.half() if half else example

    def write(temporary: Path) -> None:
        with _exporter_quiet() as tracer_warnings:
            try:
                traced = torch.jit.trace(exported, (example,), check_trace=False)
                torch.jit.save(traced, str(temporary))
                loaded = torch.jit.load(str(temporary), map_location="cpu")
            except Exception as error:
                raise ExportError(_export_failure("TorchScript", "torch.jit.trace", None, error, network)) from None
        result.runtime = f"torch.jit.load (torch {torch.__version__})"

        def run(images: torch.Tensor) -> torch.Tensor:
            return loaded(images.half() if half else images)

        _verify(result, network, check_shapes(network), run, tracer_warnings, (1, *EXAMPLE_SIZE))

    return write


@torch.no_grad()
def _verify(
    result: ExportResult,
    network: nn.Module,
    shapes: list[tuple[int, int, int]],
    run: Callable[[torch.Tensor], torch.Tensor],
    tracer_warnings: list[str] | None = None,
    example: tuple[int, int, int] | None = None,
) -> None:
    """Run the exported file and the float32 network on photo crops of every shape; record the differences and
    raise ``ExportError`` at the first shape that fails, does not run, or exceeds the tolerance. ``example``
    (batch, H, W) is the traced input's shape, run again to tell a size problem from an arithmetic one."""
    channels = input_channels(network)
    for batch, height, width in shapes:
        images = photo_batch(batch, height, width, channels)
        shape = tuple(images.shape)
        label = "x".join(map(str, shape))
        try:
            reference = network(images).float()
        except Exception as error:
            raise ExportError(
                f"the PyTorch network itself fails on a {label} input ({type(error).__name__}: "
                f"{_first_line(error)}); dckd's checks need a network that takes any height and width"
            ) from None
        try:
            output = run(images).float()
        except Exception as error:
            raise ExportError(
                f"the exported file does not run on a {label} input, although the network does: "
                f"{type(error).__name__}: {_first_line(error, 600)}" + _baked_hint(tracer_warnings)
            ) from None
        if output.shape != reference.shape:
            raise ExportError(
                f"the exported file gives an output of shape {tuple(output.shape)} for a {label} input, PyTorch "
                f"{tuple(reference.shape)}" + _baked_hint(tracer_warnings)
            )
        difference = (output - reference).abs().max().item()
        if not np.isfinite(difference):
            raise ExportError(f"the exported file gives non-finite values on a {label} input")
        result.checks.append(Check(shape, difference))
        if difference > result.tolerance:
            message = (
                f"the exported file differs from PyTorch by {difference:.2e} on a {label} input, more than the "
                f"tolerance {result.tolerance:g}"
            )
            raise ExportError(message + _cause(network, run, example, result.tolerance, tracer_warnings))


def _difference(network: nn.Module, run, shape: tuple[int, int, int]) -> float:
    images = photo_batch(*shape, input_channels(network))
    return (run(images).float() - network(images).float()).abs().max().item()


def _cause(network: nn.Module, run, example: tuple[int, int, int] | None, tolerance: float, tracer_warnings) -> str:
    """Why a check exceeded the tolerance: the arithmetic (the traced size differs too) or the input size."""
    if example is None:
        return ". The file was not written."
    at_example = _difference(network, run, example)
    if at_example > tolerance:
        return (
            f". At the traced size {'x'.join(map(str, example))} it differs by {at_example:.2e} as well, so the "
            "cause is the arithmetic, not the input size (float16 rounding, an operation the format computes "
            "differently); pass a larger --tolerance if that precision is enough. The file was not written."
        )
    return f". At the traced size it differs by only {at_example:.2e}" + _baked_hint(tracer_warnings)


# --------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _exporter_quiet():
    """Silence the exporters' deprecation notices and log lines; collect the tracer's warnings (Python values it
    recorded as constants) as "file:line: message" for the error message of a failed check."""
    tracer_warnings: list[str] = []
    # The exporters log their progress, skipped torchvision ops and failed opset conversions (dckd reports
    # what matters: the written opset is checked, a failure raises with the exporter's message). torch 2.13's
    # TorchScript-based exporter also switches its native log on for good (setup_onnx_logging tests the
    # function _jit_is_onnx_log_enabled instead of calling it) and dumps the whole graph to stderr on failure.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    onnx_log = torch._C._jit_is_onnx_log_enabled()
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(record=True) as caught, native_output_silenced(1, 2):
            warnings.simplefilter("always")
            yield tracer_warnings
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        torch._C._jit_set_onnx_log_enabled(onnx_log)
    for warning in caught:
        if issubclass(warning.category, torch.jit.TracerWarning):
            source = linecache.getline(warning.filename, warning.lineno).strip()
            reason = str(warning.message).split(". ")[0].strip()
            text = f"{Path(warning.filename).name}:{warning.lineno} `{source}` ({reason})"
            if text not in tracer_warnings:
                tracer_warnings.append(text)


def _baked_hint(tracer_warnings: list[str] | None) -> str:
    hint = (
        ". A value that depends on the input size was probably fixed at the traced size (a Python branch, int() or "
        "min() on a shape, a cached tensor)"
    )
    if tracer_warnings:
        hint += "; the tracer recorded these as constants:\n  " + "\n  ".join(tracer_warnings[:8])
        hint += "\nWrite them as tensor operations while dckd.models.padding.exporting() is true"
    else:
        hint += "; try the other --exporter"
    return hint + ". The file was not written."


def _export_failure(kind: str, exporter: str, opset: int | None, error: Exception, network: nn.Module) -> str:
    """The exporter's error with the line of the network's code it stopped at, and what to do."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if "/torch/" not in frame.filename and "/onnxscript/" not in frame.filename
    ]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno} `{frames[-1].line}`" if frames[1:] else ""
    message = f"{kind} export of {type(network).__name__} ({exporter} exporter"
    message += f", opset {opset})" if opset else ")"
    message += f" failed{where}: {type(error).__name__}: {_first_line(error, 600)}"
    text = str(error)
    if opset is not None and ("opset" in text.lower() or "not supported" in text.lower()):
        message += "\nAn operation has no ONNX form at this opset: try a higher --opset (SwinIR's attention needs 14+)"
    elif kind == "ONNX":
        other = "dynamo" if exporter == "torchscript" else "torchscript"
        message += f"\nTry --exporter {other}, or --format torchscript"
    return message


def _first_line(error: Exception, limit: int = 300) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return " | ".join(lines[:4])[:limit]
