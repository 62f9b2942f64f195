"""The options schema: nested dataclasses, a docstring under every field.

YAML presets in ``configs/`` mirror this tree; ``load_config`` validates them (unknown keys and wrong
types are errors naming the option) and applies ``--set a.b=value`` overrides through the same checks.
``dckd.engine.setup`` is the one place that turns a validated ``Config`` into objects.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from dckd.config.loading import apply_overrides, from_dict, read_yaml, to_dict
from dckd.errors import ConfigError
from dckd.methods import METHODS
from dckd.models.backbones import declared_scale, resolve
from dckd.models.spandrel_network import SPANDREL_BACKBONE


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------
@dataclass
class NetworkConfig:
    preset: str | None = None
    """A preset of ``dckd models`` (e.g. ``swinir_s_x4``); ``options`` override its constructor arguments."""
    backbone: str | None = None
    """Key of ``dckd.models.backbones.BACKBONES`` (``swinir``, ``rcan``, ``edsr``, ``nafnet``, ``restormer``), or
    ``package.module:ClassName`` for your own ``nn.Module`` (imported explicitly by that path), or (teacher only)
    ``spandrel``: spandrel, when installed, detects one of its architectures (ESRGAN, SPAN, HAT, ...) from the
    checkpoint's keys (docs/interop.md). Implied by ``preset`` when omitted; with neither, the checkpoint's dckd
    network record names it, and a teacher checkpoint without one goes to spandrel."""
    options: dict[str, Any] = field(default_factory=dict)
    """Constructor keyword arguments, checked against the constructor's signature when the network is built."""
    checkpoint: str | None = None
    """Weights to load (.pth/.pt/.ckpt/.safetensors). Loaded strictly: a missing or unexpected key is an error."""
    checkpoint_key: str | None = None
    """Entry of a wrapped checkpoint holding the weights; null tries params_ema, params, ema, student (dckd training
    checkpoints), state_dict, model, net, generator, in that order."""
    random_init: bool = False
    """Teacher only: true trains against a randomly initialised teacher on purpose (tests, timing runs). A teacher
    without ``checkpoint`` is otherwise an error: the student would learn from noise."""

    def __post_init__(self) -> None:
        _require(
            self.preset is not None or self.backbone is not None or bool(self.checkpoint),
            "preset: give a preset or a backbone (or a checkpoint whose dckd record names its network)",
        )
        _require(
            not (self.random_init and self.checkpoint),
            f"random_init: true contradicts checkpoint {self.checkpoint!r}; keep one of them",
        )
        _require(
            self.preset is not None or self.backbone is not None or not self.options,
            "options: they are constructor arguments of a backbone; give the backbone (or preset) with them",
        )
        if self.backbone == SPANDREL_BACKBONE:
            _require(
                self.preset is None,
                f"preset: {self.preset!r} contradicts backbone: spandrel (spandrel detects the architecture)",
            )
            _require(
                not self.options,
                "options: spandrel reads the architecture's options from the checkpoint; remove them",
            )
            _require(
                bool(self.checkpoint),
                "checkpoint: backbone: spandrel detects the architecture from a weights file; give checkpoint",
            )


@dataclass
class VQGANConfig:
    checkpoint: str = "pretrained/vqgan_imagenet_f16_1024/ckpts/last.ckpt"
    """The frozen VQGAN: taming-transformers ``last.ckpt`` (official "VQGAN ImageNet f=16, 1024 codes"), a plain
    state_dict, or a codebook saved by ``dckd train-codebook``."""
    embed_dim: int | None = None
    """Codebook vector size; null: read from a dckd codebook checkpoint, else 256 (the official f16 model)."""
    n_embed: int | None = None
    """Number of codebook entries; null: from the checkpoint's metadata, else 1024."""
    ddconfig: dict[str, Any] | None = None
    """taming ``ddconfig`` (ch, ch_mult, num_res_blocks, attn_resolutions, z_channels, resolution, ...);
    null: from the checkpoint's metadata, else the official f16 configuration."""


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
@dataclass
class DatasetConfig:
    kind: Literal["benchmark", "paired", "hr_only", "bundled", "gopro", "input_target", "synthetic", "python"]
    """Folder layout. ``benchmark``: ``root/HR`` + ``root/LR_bicubic/X{scale}/*x{scale}.png`` (LR made by
    MATLAB bicubic when absent). ``paired``: ``gt_dir`` + ``lq_dir`` matched by ``filename_template``.
    ``hr_only``: ``gt_dir`` only, LR made by MATLAB bicubic. ``bundled``: the photographs shipped with
    dckd (``split`` train, val or test). ``gopro``: GoPro ``root/{split}/<sequence>/blur|sharp`` or
    ``root/{split}/input|target``. ``input_target``: Rain13K / Test100 / Rain100H/L / Test2800 / Test1200
    (``root/input`` + ``root/target``). ``synthetic``: clean images in ``gt_dir`` degraded on the fly by
    ``synthetic_task`` (a stand-in for GoPro / Rain13K). ``python``: a dataset object given to ``dckd.distill``
    (recorded in a run's config.yaml; a config file cannot rebuild it)."""
    name: str = ""
    """Name shown in logs and tables; defaults to the folder name."""
    root: str | None = None
    """Root folder for ``benchmark``, ``gopro`` and ``input_target``."""
    gt_dir: str | None = None
    """Ground-truth (HR / sharp / clean) folder for ``paired``, ``hr_only`` and ``synthetic``."""
    lq_dir: str | None = None
    """Degraded-input (LR / blurred / rainy) folder for ``paired``."""
    filename_template: str = "{}"
    """Maps a GT file stem to its LQ stem (BasicSR convention), e.g. ``{}x4`` for DIV2K's ``0001x4.png``."""
    meta_info_file: str | None = None
    """``paired`` only: a BasicSR meta-info list; only the GT files it names (first word of each line) are used,
    each with the LQ file ``filename_template.format(stem)`` + the GT's extension; the folders are not scanned."""
    split: Literal["train", "val", "test"] = "train"
    """Which split of a ``bundled`` layout (``train``, ``val``: for choosing settings and validation during
    training, ``test``) or a ``gopro`` one (``train`` or ``test``)."""
    synthetic_task: Literal["deblur", "derain"] = "deblur"
    """Degradation made on the fly for ``synthetic`` datasets."""
    cache_images: bool = False
    """Keep decoded images in memory (fast for small sets; DIV2K needs ~7 GB per worker)."""

    def __post_init__(self) -> None:
        needs = {
            "benchmark": ("root",),
            "paired": ("gt_dir", "lq_dir"),
            "hr_only": ("gt_dir",),
            "bundled": (),
            "gopro": ("root",),
            "input_target": ("root",),
            "synthetic": ("gt_dir",),
            "python": (),
        }[self.kind]
        for option in needs:
            _require(getattr(self, option), f"kind: a dataset of kind {self.kind!r} needs the option {option!r}")
        _require(
            self.kind != "gopro" or self.split in ("train", "test"),
            f"split: GoPro has the splits 'train' and 'test', not {self.split!r}",
        )
        _require("{}" in self.filename_template, f"filename_template {self.filename_template!r} must contain '{{}}'")
        _require(
            self.meta_info_file is None or self.kind == "paired",
            f"meta_info_file: only datasets of kind 'paired' read a meta-info list (this one is {self.kind!r})",
        )


@dataclass
class ProgressiveStage:
    start_iter: int
    """First iteration of this stage."""
    lq_patch_size: int
    """Input patch side from this iteration on."""
    batch_size: int
    """Global batch size from this iteration on."""


@dataclass
class DataConfig:
    train: DatasetConfig | None = None
    """Training set; may be null for ``dckd test``-only configs."""
    validation: list[DatasetConfig] = field(default_factory=list)
    """Sets evaluated every ``train.validate_every_iters`` (whole images)."""
    task: Literal["sr", "deblur", "derain"] = "sr"
    """Restoration task; sets the scale-1 datasets and the default evaluation protocol."""
    scale: int = 4
    """Super-resolution factor (1 for deblurring and deraining)."""
    lq_patch_size: int = 48
    """Side of the random training crop in input pixels (the GT crop is ``lq_patch_size * scale``)."""
    batch_size: int = 16
    """GLOBAL batch size (over all processes). The paper: 16; the released configs: 16 per GPU on 4 GPUs = 64."""
    augment: bool = True
    """Random horizontal/vertical flips and transposes of training crops."""
    num_workers: int = 4
    """DataLoader worker processes per training process."""
    progressive: list[ProgressiveStage] = field(default_factory=list)
    """Restormer's progressive training: (start_iter, lq_patch_size, batch_size) stages after the initial one."""
    check_files: bool = True
    """Decode and check every training and validation file once before training starts."""
    skip_bad_files: bool = False
    """Exclude files that fail the check (listed in the log) instead of stopping."""
    alpha: Literal["error", "drop"] = "error"
    """Images with transparent pixels: ``error`` (the colour under a transparent pixel is arbitrary and would be
    learned as content) or ``drop`` (ignore the alpha channel, keep the stored colours). Fully opaque alpha is
    always dropped."""

    def __post_init__(self) -> None:
        _require(self.scale >= 1, f"scale must be >= 1, got {self.scale}")
        _require(self.task == "sr" or self.scale == 1, f"scale must be 1 for task {self.task!r}, got {self.scale}")
        _require(self.lq_patch_size >= 1, f"lq_patch_size must be positive, got {self.lq_patch_size}")
        _require(self.batch_size >= 1, f"batch_size must be positive, got {self.batch_size}")
        _require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        starts = [stage.start_iter for stage in self.progressive]
        _require(starts == sorted(set(starts)), f"progressive start_iter values must increase: {starts}")


# --------------------------------------------------------------------------------------------------
# Optimisation
# --------------------------------------------------------------------------------------------------
@dataclass
class OptimizerConfig:
    name: Literal["adam", "adamw"] = "adam"
    """Adam (SR recipes) or AdamW (NAFNet, Restormer)."""
    lr: float = 1e-4
    """Initial learning rate."""
    betas: tuple[float, float] = (0.9, 0.99)
    """Adam betas."""
    weight_decay: float = 0.0
    """Weight decay (decoupled for AdamW)."""


@dataclass
class ScheduleConfig:
    name: Literal["constant", "multistep", "cosine"] = "multistep"
    """``multistep``: lr * gamma at each milestone. ``cosine``: cosine annealing with restarts over ``periods_iters``
    (one period = the whole run when empty)."""
    milestones_iters: list[int] = field(default_factory=list)
    """Iterations at which ``multistep`` multiplies the learning rate by ``gamma``."""
    gamma: float = 0.5
    """Multistep factor."""
    periods_iters: list[int] = field(default_factory=list)
    """Cosine periods (Restormer: [92000, 208000]); empty = one period of ``train.total_iters``."""
    restart_weights: list[float] = field(default_factory=list)
    """Peak learning-rate factor of each cosine period (default 1 for all)."""
    eta_min: list[float] = field(default_factory=lambda: [1e-7])
    """Minimum learning rate of each cosine period (one value = the same for all)."""
    warmup_iters: int = 0
    """Linear warm-up from 0 over this many iterations."""


# --------------------------------------------------------------------------------------------------
# Training, evaluation, caching
# --------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    total_iters: int = 250000
    """Optimizer steps."""
    seed: int = 0
    """Base seed; process r uses ``seed + r``; data order and augmentations depend only on it."""
    ema_decay: float = 0.999
    """Student EMA decay (0 = off). Validation and the released weights use the EMA student when on."""
    log_every_iters: int = 100
    """Console / log.jsonl / TensorBoard interval."""
    validate_every_iters: int = 5000
    """Validation interval (0 = only at the end)."""
    checkpoint_every_iters: int = 5000
    """Checkpoint interval (a checkpoint is also written at the end and on SIGTERM/Ctrl-C)."""
    keep_checkpoints: int = 3
    """How many of the latest checkpoints to keep."""
    grad_clip_norm: float = 0.0
    """Clip the gradient norm to this value (0 = off)."""
    max_consecutive_nonfinite: int = 5
    """A non-finite loss skips the step; this many in a row stop the run (the diverged parameters are not kept; the
    newest good checkpoint stays and is named)."""
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    """Autocast dtype for all networks (float32 = the reference path)."""
    channels_last: bool = False
    """Run convolutional networks in channels-last memory format (faster on GPUs with tensor cores)."""
    keep_freed_host_memory: bool = False
    """Linux with glibc: memory the process frees stays in it instead of going back to the system, so large
    activations are not page-faulted in again at every iteration (``dckd.engine.host_memory``; measured on the
    demo's CPU setting: a DCKD iteration 294 -> 226 ms, identical results). Process-wide, for the rest of the
    process; an error on other systems."""
    compile: bool = False
    """``torch.compile`` the student's and frozen networks' forward passes."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, or ``cuda``."""
    auto_resume: bool = True
    """Resume from the newest valid checkpoint in the run folder when one exists."""
    tensorboard: bool = True
    """Write TensorBoard scalars when the tensorboard package is installed."""

    def __post_init__(self) -> None:
        _require(self.total_iters >= 1, f"total_iters must be >= 1, got {self.total_iters}")
        _require(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("log_every_iters", "checkpoint_every_iters", "keep_checkpoints", "max_consecutive_nonfinite"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.validate_every_iters >= 0, "validate_every_iters must be >= 0")
        _require(
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
            f"device {self.device!r}: expected auto, cpu, cuda or cuda:N",
        )


@dataclass
class EvaluationConfig:
    y_channel: bool | None = None
    """PSNR/SSIM on the Y channel; null = by task (SR and deraining: Y; deblurring: RGB)."""
    crop_border: int | None = None
    """Pixels removed from each side before the metrics; null = the scale for SR, 0 otherwise."""
    tile_size: int = 0
    """Restore large images in tiles of this input size (0 = whole image)."""
    tile_overlap: int = 32
    """Overlap between tiles in input pixels."""
    self_ensemble: bool = False
    """x8 self-ensemble (flips and transposes, outputs averaged)."""
    tlc: bool = False
    """NAFNet only: test-time local converter (official NAFNetLocal)."""


@dataclass
class TeacherCacheConfig:
    enabled: bool = False
    """Precompute the teacher's outputs on the whole training images once and reuse them (see docs/speed.md)."""
    directory: str = "cache/teacher"
    """Where cached outputs live; a key (teacher weights hash, data, scale) in the folder name prevents stale use."""


@dataclass
class Config:
    name: str = "run"
    """Run name; the run folder is ``output_dir/name``."""
    output_dir: str = "runs"
    """Parent folder of run folders."""
    method: str = "scratch"
    """Training method, a key of ``dckd.methods.METHODS`` (scratch, logits, fakd, dckd, mclir, codebook); the
    section of the same name holds its options."""
    student: NetworkConfig = field(default_factory=lambda: NetworkConfig(preset="swinir_s_x4"))
    """The network being trained."""
    teacher: NetworkConfig | None = None
    """Frozen teacher (required by the methods that use one: logits, fakd, dckd)."""
    vqgan: VQGANConfig | None = None
    """Frozen VQGAN (required by dckd's contrastive and codebook terms and by mclir's vqgan feature space)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Datasets and batching."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """Optimizer of the student."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Learning-rate schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Loop length, seeds, logging, checkpoints, precision."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """Validation and ``dckd test`` protocol."""
    teacher_cache: TeacherCacheConfig = field(default_factory=TeacherCacheConfig)
    """Teacher-output cache."""
    method_options: Any = field(default=None, metadata={"yaml": False})
    """The selected method's options (its ``Options`` dataclass); in YAML, the section named like the method."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"method: {self.method!r} is not a method; accepted values: {', '.join(map(repr, METHODS))}"
            )
        options_class = METHODS[self.method].Options
        if self.method_options is None:
            self.method_options = options_class()
        if type(self.method_options) is not options_class:
            raise ConfigError(
                f"{self.method}: expected {options_class.__name__}, got {type(self.method_options).__name__}"
            )
        _check_run_name(self.name)
        needs = self.needs
        if needs.teacher and self.teacher is None:
            raise ConfigError(f"method {self.method!r} needs a teacher: set the 'teacher' section")
        if self.student.backbone == SPANDREL_BACKBONE:
            raise ConfigError(
                "student.backbone: spandrel loads frozen teachers only; the student must be a network dckd trains "
                "and saves (a preset, a backbone, or package.module:Class)"
            )
        if self.student.random_init:
            raise ConfigError(
                "student.random_init: only a teacher takes this option (a student without checkpoint starts random)"
            )
        if needs.teacher and self.teacher.checkpoint is None and not self.teacher.random_init:
            raise ConfigError(
                "teacher.checkpoint: not set, so the teacher would be random and the student would learn from "
                "noise; give the teacher's weights (path.pretrain_network_t in a BasicSR options file), or set "
                "teacher.random_init: true to train against a random teacher on purpose"
            )
        self._check_scales(needs)
        if needs.vqgan and self.vqgan is None:
            raise ConfigError(f"method {self.method!r} with these weights needs a 'vqgan' section")
        if self.evaluation.tile_size < 0:
            raise ConfigError("evaluation.tile_size must be >= 0")

    def _check_scales(self, needs) -> None:
        """The student's and the teacher's SR factors (read from their options) equal ``data.scale``; a user's
        class is measured by the engine before the run writes anything."""
        roles = [("student", self.student)] + ([("teacher", self.teacher)] if needs.teacher else [])
        for role, spec in roles:
            try:
                backbone, options = resolve(spec.preset, spec.backbone, spec.options)
            except ValueError:
                continue  # building the network reports an unknown preset
            scale = declared_scale(backbone, options)
            if scale is not None and scale != self.data.scale:
                described = spec.preset or backbone
                raise ConfigError(
                    f"data.scale is {self.data.scale}, but the {role} ({described}) makes x{scale} outputs; set "
                    f"data.scale: {scale} or give the {role} upscale: {self.data.scale}"
                )

    def __getattr__(self, name: str) -> Any:
        # ``config.dckd`` reads the selected method's options by the section's name.
        if name in METHODS and name == self.__dict__.get("method"):
            return self.__dict__["method_options"]
        raise AttributeError(
            f"{type(self).__name__} has no attribute {name!r}"
            + (f" (method is {self.__dict__.get('method')!r})" if name in METHODS else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: the method's options under the method's name; it reloads to an equal ``Config``."""
        data = {
            field.name: to_dict(getattr(self, field.name)) for field in fields(self) if field.name != "method_options"
        }
        data[self.method] = to_dict(self.method_options)
        return data

    @property
    def needs(self):
        """What the selected method needs with these options (``dckd.methods.base.Needs``)."""
        return METHODS[self.method].needs(self.method_options)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def _check_run_name(name: str) -> None:
    """``name`` is one folder name: the run folder ``output_dir/name`` stays inside ``output_dir``."""
    parts = name.replace("\\", "/").split("/")
    if not name or name in (".", "..") or len(parts) > 1 or "\x00" in name or Path(name).is_absolute():
        raise ConfigError(
            f"name: {name!r} is not a folder name; the run folder is output_dir/name, so name must be one "
            "folder name (no '/', not '..'); put the parent folder in output_dir"
        )


def _check_is_dckd_config(data: dict, source: str) -> None:
    """A mapping whose top-level keys are mostly not dckd options (and not typos of them) is another kind of
    YAML file (a CI workflow, a docker-compose file, ...): say so instead of reporting its first key."""
    known = [field.name for field in fields(Config) if field.name != "method_options"] + list(METHODS)
    unknown = [key for key in data if key not in known]
    typos = [key for key in unknown if isinstance(key, str) and difflib.get_close_matches(key, known, n=1)]
    if unknown and not typos and 2 * len(unknown) >= len(data):
        shown = ", ".join(repr(key) for key in list(data)[:8])
        raise ConfigError(
            f"{source} is not a dckd config: its top-level keys ({shown}) are not dckd options; a dckd config has "
            f"{', '.join(known[:11])}, ... (see configs/), a published BasicSR options file has model_type and "
            "network_g"
        )


def config_from_dict(data: dict, overrides: list[str] | None = None, source: str = "config") -> Config:
    """Validate a raw mapping (plus dotted overrides) into a ``Config``; every error names ``source``.

    The section named like ``method`` is read with that method's ``Options``. A section of another method
    is an error (a typo would silently do nothing), unless it holds exactly that method's defaults, as the
    ``config.yaml`` files of dckd 0.1 (which listed every method's section) do.
    """
    try:
        return _config_from_dict(data, overrides, source)
    except ConfigError as error:
        message = str(error)
        if message.startswith(source) or message.startswith(f"config file {source}"):
            raise
        raise ConfigError(f"{source}: {message}") from None


def _config_from_dict(data: dict, overrides: list[str] | None, source: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    _check_is_dckd_config(data, source)
    data = apply_overrides(dict(data), list(overrides or []))
    if "method_options" in data:
        raise ConfigError(
            f"{source}: method_options: unknown option; put the method's options in the section "
            "named like the method (e.g. dckd:)"
        )
    selected = data.get("method", "scratch")
    if not isinstance(selected, str) or selected not in METHODS:
        raise ConfigError(
            f"{source}: method: {selected!r} is not a method; accepted values: {', '.join(map(repr, METHODS))}"
        )
    for name, method_class in METHODS.items():
        if name == selected or name not in data:
            continue
        section = data.pop(name)
        # The defaults of this version, and those of earlier versions whose config.yaml listed the section.
        defaults = [to_dict(method_class.Options())] + [
            to_dict(from_dict(method_class.Options, earlier, name))
            for earlier in getattr(method_class.Options, "earlier_defaults", ())
        ]
        if not (isinstance(section, dict) and to_dict(from_dict(method_class.Options, section, name)) in defaults):
            raise ConfigError(
                f"{source}: section {name!r} is set but method is {selected!r}; remove it or set method: {name}"
            )
    section = data.pop(selected, None)
    options = from_dict(METHODS[selected].Options, section if section is not None else {}, selected)
    return from_dict(Config, {**data, "method_options": options})


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML preset, apply ``--set`` overrides, validate. Nothing is written anywhere."""
    return config_from_dict(read_yaml(path), overrides, source=str(path))
