"""Networks that spandrel detects, as frozen dckd teachers (``teacher: {backbone: spandrel, checkpoint: ...}``).

spandrel (github.com/chaiNNer-org/spandrel, MIT; the model loader of chaiNNer and ComfyUI) recognises about 40
restoration architectures (ESRGAN, SPAN, HAT, DAT, OmniSR, ...) by the keys of a state_dict, reads their
hyper-parameters from the tensor shapes and builds the network from its own code. dckd reads the file itself
(``dckd.files.weights.read_checkpoint``: no pickled code runs, spandrel never opens the file) and hands spandrel
the state_dict; ``load_spandrel_network`` checks what spandrel detected and wraps it in ``SpandrelNetwork``.

A file never decides which code runs: spandrel chooses among its own fixed registry of architectures
(``spandrel.MAIN_REGISTRY``, code installed with spandrel), as dckd chooses among ``BACKBONES``. A file's keys
select one of those; a file cannot name a module to import.

spandrel is optional: it is imported only inside ``import_spandrel``, never when dckd is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from dckd.errors import CheckpointError, ConfigError
from dckd.files.weights import tensor_kind_mismatches
from dckd.models.padding import pad_bottom_right

SPANDREL_BACKBONE = "spandrel"
"""The ``backbone`` value that lets spandrel detect the architecture from the checkpoint (teachers only)."""

CHECKED_WITH = "spandrel 0.4.2 with torch 2.14.1 and torchvision 0.29.1"
"""The versions dckd's spandrel support was checked with (docs/interop.md)."""

INSTALL_ADVICE = (
    f"install it with `pip install spandrel` (dckd was checked with {CHECKED_WITH}; torchvision, which spandrel "
    "imports, must be the build made for the installed torch; tools/spandrel_env.sh makes such an environment "
    "and docs/interop.md says how)"
)

ACCEPTED_PURPOSES = ("SR", "Restoration")
"""spandrel's purposes of image-to-image networks a teacher can have (not FaceSR's fixed 512-pixel faces, not
inpainting, which takes a mask)."""

RGB_CHANNELS = 3
"""dckd's networks see RGB images (grayscale inputs are replicated to three channels)."""


def import_spandrel(purpose: str) -> Any:
    """The ``spandrel`` module; a ``ConfigError`` that starts with ``purpose`` and says what to install when it is
    missing or fails to import (a torchvision made for another torch fails while spandrel imports it)."""
    try:
        import spandrel
    except ModuleNotFoundError as error:
        missing = error.name or "spandrel"
        if missing.split(".")[0] == "spandrel":
            raise ConfigError(f"{purpose} needs spandrel, which is not installed: {INSTALL_ADVICE}") from None
        raise ConfigError(
            f"{purpose} needs spandrel, which is installed but needs {missing!r}, which is not: {INSTALL_ADVICE}"
        ) from None
    except Exception as error:  # e.g. RuntimeError "operator torchvision::nms does not exist"
        raise ConfigError(
            f"{purpose} needs spandrel, which is installed but does not import ({type(error).__name__}: {error}); "
            f"torch here is {torch.__version__}. {INSTALL_ADVICE[0].upper()}{INSTALL_ADVICE[1:]}"
        ) from None
    return spandrel


def padding_for(height: int, width: int, minimum: int, multiple_of: int, square: bool) -> tuple[int, int]:
    """(bottom, right) padding that makes a ``height`` x ``width`` image meet spandrel's size requirements: each
    side at least ``minimum`` and a multiple of ``multiple_of``, and both equal when ``square``."""
    padded_height, padded_width = max(height, minimum), max(width, minimum)
    padded_height = -(-padded_height // multiple_of) * multiple_of
    padded_width = -(-padded_width // multiple_of) * multiple_of
    if square:
        padded_height = padded_width = max(padded_height, padded_width)
    return padded_height - height, padded_width - width


class SpandrelNetwork(nn.Module):
    """A network spandrel built, as a dckd network: (N, C, H, W) in [0, 1] -> (N, C, scale*H, scale*W), any H, W.

    ``forward`` pads the bottom and right to the size requirements spandrel declares (reflect, then replicate,
    as spandrel's own call), calls the model through the architecture's call function (DRUNet's extra
    noise-level channel, FBCNN's tuple, ...), and crops the output back. It differs from calling spandrel's
    descriptor on purpose:

    - no ``torch.inference_mode``: the outputs are ordinary tensors that losses can use, and forward hooks
      (FAKD's features) and ``torch.compile`` work (the engine runs a frozen teacher under ``no_grad``);
    - no clamp to [0, 1]: the teacher computes its network's function, as dckd's own backbones do (a SwinIR
      loaded by spandrel gives the same outputs as the same weights loaded by dckd);
    - the input is never modified (spandrel's RCAN multiplies its input in place: the model gets a copy);
    - any batch size: spandrel's call takes one image, and some architectures fail or compute something else on a
      batch (SeemoRe, DRUNet's noise-level map); ``check_batches`` measures it once, and a network that does not
      give each image of a batch what it gives that image alone runs one image at a time.

    Precision: under ``torch.autocast`` in a dtype the architecture does not support (spandrel's
    ``supports_half`` / ``supports_bfloat16``), the network runs in float32 with autocast off, as the VQGAN does.
    """

    def __init__(
        self,
        model: nn.Module,
        call: Callable[[nn.Module, Tensor], Any],
        architecture: str,
        scale: int,
        minimum_size: int = 0,
        multiple_of: int = 1,
        square: bool = False,
        supports_float16: bool = True,
        supports_bfloat16: bool = True,
        description: str = "",
    ) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale={scale!r}: expected a positive integer")
        if minimum_size < 0 or multiple_of < 1:
            raise ValueError(f"size requirements minimum={minimum_size}, multiple_of={multiple_of} are not valid")
        self.model = model
        self.call = call
        self.architecture = architecture
        self.scale: int = scale
        """Output size / input size (spandrel's descriptor)."""
        self.size_multiple: int = 1
        """Any input size works: ``forward`` pads to the requirements itself."""
        self.minimum_size, self.multiple_of, self.square = minimum_size, multiple_of, square
        self.supports_float16, self.supports_bfloat16 = supports_float16, supports_bfloat16
        self.description = description or architecture
        self.batched = False
        """Whether a batch goes through in one call (``check_batches``); else one image at a time."""

    def unsupported_autocast(self, device_type: str) -> torch.dtype | None:
        """The autocast dtype active on ``device_type`` when this architecture does not support it, else None."""
        if not torch.is_autocast_enabled(device_type):
            return None
        dtype = torch.get_autocast_dtype(device_type)
        supported = {torch.float16: self.supports_float16, torch.bfloat16: self.supports_bfloat16}
        return dtype if not supported.get(dtype, True) else None

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, scale*H, scale*W)."""
        if self.unsupported_autocast(x.device.type) is not None:
            with torch.autocast(device_type=x.device.type, enabled=False):
                return self.run(x.float())
        return self.run(x)

    def run(self, x: Tensor, batched: bool | None = None) -> Tensor:
        """``forward`` without the precision rule; ``batched`` overrides ``self.batched``."""
        height, width = x.shape[-2:]
        pad_height, pad_width = padding_for(height, width, self.minimum_size, self.multiple_of, self.square)
        padded = pad_bottom_right(x, pad_height, pad_width)
        if padded is x:
            padded = x.clone()
        if (self.batched if batched is None else batched) or len(padded) == 1:
            output = self.call_model(padded)
        else:
            output = torch.cat([self.call_model(padded[index : index + 1]) for index in range(len(padded))])
        return output[..., : height * self.scale, : width * self.scale]

    def call_model(self, images: Tensor) -> Tensor:
        output = self.call(self.model, images)
        if not isinstance(output, Tensor):
            raise TypeError(f"{self.description} returned a {type(output).__name__}, expected a tensor")
        return output

    @torch.no_grad()
    def check_batches(self, side: int = 16) -> bool:
        """Measure whether a batch of two random ``side`` x ``side`` images gives each image what it gives alone
        (relative difference under 1e-4), set ``self.batched`` accordingly and return it."""
        images = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
        parameter = next(self.model.parameters(), None)
        if parameter is not None:
            images = images.to(parameter.device)
        was_training = self.training
        self.eval()
        try:
            alone = self.run(images, batched=False)
            try:
                together = self.run(images, batched=True)
            except Exception:  # e.g. a shape error inside the architecture
                together = None
        finally:
            self.train(was_training)
        scale = max(1.0, alone.abs().max().item())
        self.batched = (
            together is not None
            and together.shape == alone.shape
            and (together - alone).abs().max().item() <= 1e-4 * scale
        )
        return self.batched

    def summary(self, precision: str = "float32") -> str:
        """One line for the run's log: what spandrel detected, and how it runs at ``precision``."""
        requirements = []
        if self.minimum_size:
            requirements.append(f"at least {self.minimum_size} pixels")
        if self.multiple_of > 1:
            requirements.append(f"multiples of {self.multiple_of}")
        if self.square:
            requirements.append("square")
        text = f"{self.description}: x{self.scale}"
        text += f", inputs padded to {', '.join(requirements)} and cropped back" if requirements else ""
        text += "" if self.batched else ", one image at a time (a batch gives another result or fails)"
        supported = {"float16": self.supports_float16, "bfloat16": self.supports_bfloat16}
        if not supported.get(precision, True):
            text += f"; {precision} is not supported by {self.architecture}: the teacher runs in float32"
        return text


def load_spandrel_network(state_dict: Mapping[str, Tensor], source: str) -> SpandrelNetwork:
    """Let spandrel detect and build the network of ``state_dict`` (read by dckd from ``source``, a description
    of the file for messages), check that it is an RGB image-to-image network, and wrap it (eval mode).

    Errors name ``source``: no architecture recognised, spandrel failing to build what it detected, a network of
    another kind (inpainting, face restoration, other channel counts), values of another kind than the
    network's (an integer tensor where float weights belong would be cast silently).
    """
    spandrel = import_spandrel(f"{source}: letting spandrel detect the architecture")
    version = getattr(spandrel, "__version__", "?")
    state_dict = dict(state_dict)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError:
        shown = ", ".join(list(state_dict)[:6]) + (", ..." if len(state_dict) > 6 else "")
        raise CheckpointError(
            f"{source}: spandrel {version} does not recognise these weights (keys {shown}) as any of its "
            f"{len(spandrel.MAIN_REGISTRY)} architectures; name the network instead (a preset, or a backbone "
            "with its options)"
        ) from None
    except Exception as error:  # spandrel detected an architecture but could not build or load it
        raise CheckpointError(
            f"{source}: spandrel {version} recognised an architecture in these weights but could not load them: "
            f"{type(error).__name__}: {error}"
        ) from None
    name = f"{descriptor.architecture.name} (spandrel {version})"
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.purpose not in ACCEPTED_PURPOSES:
        raise CheckpointError(
            f"{source}: spandrel detected {name}, a {descriptor.purpose} network; a teacher must restore images "
            f"(spandrel purposes {', '.join(ACCEPTED_PURPOSES)})"
        )
    channels = (descriptor.input_channels, descriptor.output_channels)
    if channels != (RGB_CHANNELS, RGB_CHANNELS):
        raise CheckpointError(
            f"{source}: spandrel detected {name} with {channels[0]} input and {channels[1]} output channels; "
            f"dckd trains on RGB images ({RGB_CHANNELS} channels in and out)"
        )
    wrong_kind = tensor_kind_mismatches(descriptor.model.state_dict(), state_dict)
    if wrong_kind:
        raise CheckpointError(
            f"{source}: values of another kind than {name}'s, never cast silently: " + ", ".join(wrong_kind[:8])
        )
    call = getattr(descriptor, "_call_fn", None)  # how spandrel runs the architecture; no public name in 0.4.2
    if not callable(call):
        raise ConfigError(
            f"{source}: spandrel {version}'s model descriptor has no call function (0.4.2 has one, `_call_fn`); "
            f"dckd was checked with {CHECKED_WITH}"
        )
    requirements = descriptor.size_requirements
    network = SpandrelNetwork(
        descriptor.model,
        call,
        descriptor.architecture.name,
        int(descriptor.scale),
        int(requirements.minimum),
        int(requirements.multiple_of),
        bool(requirements.square),
        bool(descriptor.supports_half),
        bool(descriptor.supports_bfloat16),
        description=f"{name} from {source}",
    ).eval()
    try:
        network.check_batches()
    except Exception as error:  # the network fails on a plain 16x16 image
        raise CheckpointError(
            f"{source}: {name}, as spandrel built it, fails on a 16x16 image: {type(error).__name__}: {error}"
        ) from None
    return network
