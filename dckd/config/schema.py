"""The options schema: nested dataclasses, a docstring under every field.

YAML presets in ``configs/`` mirror this tree; ``load_config`` validates them (unknown keys and wrong
types are errors naming the option) and applies ``--set a.b=value`` overrides through the same checks.
``dckd.engine.setup`` is the one place that turns a validated ``Config`` into objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dckd.config.loading import ConfigError, apply_overrides, from_dict, read_yaml

METHOD_NAMES = ("scratch", "logits", "fakd", "dckd", "mclir")
METHODS_WITH_TEACHER = ("logits", "fakd", "dckd")


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
    ``package.module:ClassName`` for your own ``nn.Module`` (imported explicitly by that path).
    Implied by ``preset`` when omitted."""
    options: dict[str, Any] = field(default_factory=dict)
    """Constructor keyword arguments, checked against the constructor's signature when the network is built."""
    checkpoint: str | None = None
    """Weights to load (.pth/.pt/.ckpt/.safetensors). Loaded strictly: a missing or unexpected key is an error."""
    checkpoint_key: str | None = None
    """Entry of a wrapped checkpoint holding the weights; null tries params_ema, params, ema, student (dckd training
    checkpoints), state_dict, model, net, generator, in that order."""

    def __post_init__(self) -> None:
        _require(self.preset is not None or self.backbone is not None, "preset: give a preset or a backbone")


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
    kind: Literal["benchmark", "paired", "hr_only", "bundled", "gopro", "input_target", "synthetic"]
    """Folder layout. ``benchmark``: ``root/HR`` + ``root/LR_bicubic/X{scale}/*x{scale}.png`` (LR made by
    MATLAB bicubic when absent). ``paired``: ``gt_dir`` + ``lq_dir`` matched by ``filename_template``.
    ``hr_only``: ``gt_dir`` only, LR made by MATLAB bicubic. ``bundled``: the photographs shipped with
    dckd (``split`` train or test). ``gopro``: GoPro ``root/{split}/<sequence>/blur|sharp`` or
    ``root/{split}/input|target``. ``input_target``: Rain13K / Test100 / Rain100H/L / Test2800 / Test1200
    (``root/input`` + ``root/target``). ``synthetic``: clean images in ``gt_dir`` degraded on the fly by
    ``synthetic_task`` (a stand-in for GoPro / Rain13K)."""
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
    split: Literal["train", "test"] = "train"
    """Which split of a ``bundled`` or ``gopro`` layout."""
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
        }[self.kind]
        for option in needs:
            _require(getattr(self, option), f"kind: a dataset of kind {self.kind!r} needs the option {option!r}")
        _require("{}" in self.filename_template, f"filename_template {self.filename_template!r} must contain '{{}}'")


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
# Methods: one section per method; only the selected method's section may be set in a YAML file.
# --------------------------------------------------------------------------------------------------
ReconstructionLoss = Literal["l1", "charbonnier"]


@dataclass
class ScratchConfig:
    reconstruction_loss: ReconstructionLoss = "l1"
    """Loss to ground truth."""
    reconstruction_weight: float = 1.0
    """Weight of the loss to ground truth."""


@dataclass
class LogitsConfig:
    reconstruction_loss: ReconstructionLoss = "l1"
    """Loss to ground truth."""
    reconstruction_weight: float = 1.0
    """Weight of the loss to ground truth."""
    kd_weight: float = 1.0
    """Weight of mean|S(x) - T(x)| (output distillation)."""


@dataclass
class FAKDConfig:
    reconstruction_loss: ReconstructionLoss = "l1"
    """Loss to ground truth."""
    reconstruction_weight: float = 1.0
    """Weight of the loss to ground truth."""
    kd_weight: float = 0.0
    """Weight of the output-distillation term mean|S(x) - T(x)| (off in the FAKD paper)."""
    affinity_weight: float = 1.0
    """Weight of the spatial-affinity loss (mean over the layer pairs of mean|A_S - A_T|)."""
    student_layers: list[str] = field(default_factory=list)
    """Module paths in the student whose outputs are compared (forward hooks; empty = the backbone's default)."""
    teacher_layers: list[str] = field(default_factory=list)
    """Matching module paths in the teacher (same length as ``student_layers``)."""

    def __post_init__(self) -> None:
        _require(
            len(self.student_layers) == len(self.teacher_layers),
            f"student_layers ({len(self.student_layers)}) and fakd.teacher_layers ({len(self.teacher_layers)}) "
            "must pair up one to one",
        )


@dataclass
class HistoryConfig:
    decay: float = 0.1
    """alpha in theta_H <- alpha * theta_H + (1 - alpha) * theta_source (published: 0.1)."""
    source: Literal["ema", "student"] = "ema"
    """Where the history model's new weights come from: the EMA student (published code) or the live student (paper)."""
    initial_interval_iters: int = 1000
    """Update every s iterations; s starts here (paper's best: 1000)."""
    interval_growth_iters: int = 1000
    """s grows by this much ..."""
    interval_growth_every_iters: int = 100000
    """... every this many iterations (published: s = 1000 / 2000 / 3000 over 0-100k / 100k-200k / 200k-300k;
    this rule continues the pattern for runs of any length)."""

    def __post_init__(self) -> None:
        _require(0.0 <= self.decay <= 1.0, f"decay must be in [0, 1], got {self.decay}")
        _require(self.initial_interval_iters >= 1, "initial_interval_iters must be >= 1")
        _require(self.interval_growth_iters >= 0, "interval_growth_iters must be >= 0")
        _require(self.interval_growth_every_iters >= 1, "interval_growth_every_iters must be >= 1")


DEGRADATION_KINDS = ("noise", "blur", "resize", "mix")
LCR_OPERATIONS = ("invert", "vflip", "hflip", "transpose")


@dataclass
class DCKDConfig:
    reconstruction_loss: ReconstructionLoss = "l1"
    """Loss to ground truth (L_rec)."""
    reconstruction_weight: float = 1.0
    """Weight of L_rec."""
    kd_weight: float = 1.0
    """Weight of L_kd = mean|S(x) - T(x)|."""
    contrastive_weight: float = 0.1
    """lambda_dcl, the dynamic contrastive regularisation (0 = off: no history model, no negatives, no VQGAN features)."""
    layer_weights: list[float] = field(default_factory=lambda: [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0])
    """Weight of each VQGAN feature level in L_dcl."""
    num_negatives: int = 5
    """Negatives per anchor: the history model on the clean input plus ``num_negatives - 1`` degraded copies
    (the published ``num_neg`` is ``num_negatives - 1``)."""
    include_clean_negative: bool = True
    """Whether the history model's restoration of the clean input is one of the negatives (published: yes)."""
    degradations: list[Literal["noise", "blur", "resize", "mix"]] = field(default_factory=lambda: ["noise"])
    """Degradations of the negatives' inputs (published configs: noise only; ``mix`` = blur, resize and noise)."""
    history: HistoryConfig = field(default_factory=HistoryConfig)
    """The history model that restores the negatives."""
    codebook_weight: float = 0.001
    """lambda_ce, the distribution-mapping cross-entropy over VQGAN codebook assignments (0 = off)."""
    codebook_formula: Literal["released", "paper"] = "released"
    """``released``: cross_entropy(input=C_S, target=C_T) as the published code (a second softmax over
    probabilities); ``paper``: -sum_k C_T log C_S (Eq. 9)."""
    vqgan_input_range: Literal["zero_one", "minus_one_one"] = "zero_one"
    """Range of the images fed to the VQGAN: [0, 1] as the published code (the VQGAN was trained on
    [-1, 1]; ``minus_one_one`` feeds it what it expects)."""
    lcr_weight: float = 0.0
    """DCKD*: weight of the label-consistency term (released configs: 1.0; 0 = plain DCKD)."""
    lcr_side: Literal["teacher", "student"] = "teacher"
    """``teacher``: the released DCKD code, L = mean|S(x) - A^-1(T(A(x)))|; ``student``: DUKD's own form,
    L = mean|S(A(x)) - T(A(x))|."""
    lcr_probability: float = 0.5
    """Per-sample probability of each augmentation (released DCKD: 0.5; DUKD: 0.3)."""
    lcr_operations: list[Literal["invert", "vflip", "hflip", "transpose"]] = field(
        default_factory=lambda: ["invert", "vflip", "hflip", "transpose"]
    )
    """Invertible augmentations: colour inversion 1-x, vertical flip, horizontal flip, H/W transpose."""
    upcycling_weight: float = 0.0
    """DUKD data upcycling: weight of mean|S(u) - T(u)| on zoom-in / zoom-out inputs u (0 = off)."""
    upcycling_zoom_in: bool = True
    """Zoom-in: GT sub-patches of the input patch size become extra inputs."""
    upcycling_zoom_out: bool = True
    """Zoom-out: the input downscaled by the SR scale (bicubic) becomes an extra input."""

    def __post_init__(self) -> None:
        for name in ("reconstruction_weight", "kd_weight", "contrastive_weight", "codebook_weight", "lcr_weight",
                     "upcycling_weight"):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(self.num_negatives >= 1, f"num_negatives must be >= 1, got {self.num_negatives}")
        _require(
            self.include_clean_negative or self.num_negatives >= 1,
            "num_negatives must leave at least one negative",
        )
        _require(0.0 <= self.lcr_probability <= 1.0, f"lcr_probability must be in [0, 1], got {self.lcr_probability}")
        _require(len(self.layer_weights) >= 1, "layer_weights must not be empty")
        _require(len(self.degradations) >= 1 or (self.include_clean_negative and self.num_negatives == 1),
                 "degradations is empty but degraded negatives are requested")

    @property
    def num_degraded_negatives(self) -> int:
        return self.num_negatives - 1 if self.include_clean_negative else self.num_negatives


@dataclass
class MCLIRConfig:
    reconstruction_loss: ReconstructionLoss = "l1"
    """Loss to ground truth."""
    reconstruction_weight: float = 1.0
    """Weight of the loss to ground truth."""
    contrast_weight: float = 0.1
    """Weight of the model-contrastive term: anchor S(x), positive the ground truth, negative the history model H(x)."""
    feature_space: Literal["vqgan", "pixel"] = "vqgan"
    """Where distances are taken: the frozen VQGAN's feature levels, or plain pixels."""
    layer_weights: list[float] = field(default_factory=lambda: [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0])
    """Weight of each VQGAN level (``vqgan`` feature space)."""
    vqgan_input_range: Literal["zero_one", "minus_one_one"] = "zero_one"
    """Range of the images fed to the VQGAN."""
    history: HistoryConfig = field(default_factory=HistoryConfig)
    """The history model (a slowly updated copy of the student)."""


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
    """A non-finite loss skips the step; this many in a row stop the run (after saving the last good state)."""
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    """Autocast dtype for all networks (float32 = the reference path)."""
    channels_last: bool = False
    """Run convolutional networks in channels-last memory format (faster on GPUs with tensor cores)."""
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
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                 f"device {self.device!r}: expected auto, cpu, cuda or cuda:N")


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
    method: Literal["scratch", "logits", "fakd", "dckd", "mclir"] = "scratch"
    """Training method; its section below holds its loss weights."""
    student: NetworkConfig = field(default_factory=lambda: NetworkConfig(preset="swinir_s_x4"))
    """The network being trained."""
    teacher: NetworkConfig | None = None
    """Frozen teacher (required by logits, fakd and dckd)."""
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
    scratch: ScratchConfig = field(default_factory=ScratchConfig)
    """Options of method ``scratch``."""
    logits: LogitsConfig = field(default_factory=LogitsConfig)
    """Options of method ``logits``."""
    fakd: FAKDConfig = field(default_factory=FAKDConfig)
    """Options of method ``fakd``."""
    dckd: DCKDConfig = field(default_factory=DCKDConfig)
    """Options of method ``dckd`` (DCKD* = ``lcr_weight > 0``)."""
    mclir: MCLIRConfig = field(default_factory=MCLIRConfig)
    """Options of method ``mclir``."""

    def __post_init__(self) -> None:
        if self.method in METHODS_WITH_TEACHER:
            _require(self.teacher is not None, f"method {self.method!r} needs a teacher: set the 'teacher' section")
        needs_vqgan = (self.method == "dckd" and (self.dckd.contrastive_weight > 0 or self.dckd.codebook_weight > 0)) or (
            self.method == "mclir" and self.mclir.contrast_weight > 0 and self.mclir.feature_space == "vqgan"
        )
        if needs_vqgan:
            _require(self.vqgan is not None, f"method {self.method!r} with these weights needs a 'vqgan' section")
        _require(self.evaluation.tile_size >= 0, "evaluation.tile_size must be >= 0")

    @property
    def method_options(self) -> Any:
        """The section of the selected method."""
        return getattr(self, self.method)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def config_from_dict(data: dict, overrides: list[str] | None = None, source: str = "config") -> Config:
    """Validate a raw mapping (plus dotted overrides) into a ``Config``."""
    data = apply_overrides(dict(data), list(overrides or []))
    selected = data.get("method", "scratch")
    for section in METHOD_NAMES:
        if section in data and section != selected:
            raise ConfigError(
                f"{source}: section {section!r} is set but method is {selected!r}; remove it or set method: {section}"
            )
    return from_dict(Config, data)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML preset, apply ``--set`` overrides, validate. Nothing is written anywhere."""
    return config_from_dict(read_yaml(path), overrides, source=str(path))
