"""DCKD: Dynamic Contrastive Knowledge Distillation (Zhou et al., AAAI 2025), and DCKD*.

    L = w_rec L_rec(S(x), y) + w_kd |S(x) - T(x)| + w_dcl L_dcl + w_ce L_ce [+ w_lcr L_lcr + w_up L_up]

- L_dcl, dynamic contrastive regularisation: anchor S(x), positive T(x), negatives H(x) and H(D_j(x))
  from the history model H on the clean and degraded inputs, compared in the frozen VQGAN's five
  feature levels by ``contrastive_ratio_loss``. Only the anchor carries gradients.
- L_ce, distribution mapping: cross-entropy between the teacher's and student's soft assignments to the
  VQGAN codebook (``codebook_cross_entropy``, released or paper formula).
- DCKD* adds label-consistency regularisation with invertible augmentations A: on the teacher side as in
  the released code, L_lcr = |S(x) - A^-1(T(A(x)))|; or on the student side as DUKD, |S(A(x)) - T(A(x))|.
  DUKD's data upcycling (zoom-in GT sub-patches, zoom-out downscaled inputs; targets from the teacher)
  is the optional L_up. DUKD takes a second optimizer step for the upcycled data; here it is one more
  term of the same step.

Every term with weight 0 is skipped with all the forward passes only it needs (teacher, history
model, VQGAN passes). Frozen passes run under ``no_grad`` and are batched: the teacher runs once on
[x, A(x)], the history model once on all negatives, the VQGAN once on [T(x), negatives] (the whole
encoder when the codebook term needs T(x)'s code distribution, else up to the last feature level) and
once on S(x), whose features and code logits come from that same pass. Each part runs in a
``record_function`` scope (``dckd.teacher``, ``dckd.student``, ``dckd.history``, ``dckd.vqgan_frozen``,
``dckd.vqgan_anchor``) that ``benchmarks/demo_step.py`` reads to attribute the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from dckd.data.imresize import imresize_tensor
from dckd.errors import ConfigError
from dckd.losses.codebook import codebook_cross_entropy
from dckd.losses.contrastive import contrastive_ratio_loss
from dckd.losses.pixel import l1_loss
from dckd.methods.base import (
    Method,
    Needs,
    Parts,
    ReconstructionOptions,
    check_weights,
    frozen_forward,
    result,
    teacher_outputs,
)
from dckd.methods.dckd.feature_space import VQGANSpace
from dckd.methods.dckd.history import HistoryModel, HistoryOptions
from dckd.methods.dckd.invertible import InvertibleAugmentation
from dckd.methods.dckd.negatives import NegativeInputs


@dataclass
class DCKDOptions(ReconstructionOptions):
    """Options of method ``dckd`` (DCKD* = ``lcr_weight > 0``)."""

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
    negative_sampling: Literal["released", "per_sample"] = "released"
    """How the degraded copies draw their parameters. ``released``, as the released code: per copy, shared by
    the whole batch, one blur kernel, one resize scale and both modes, and whether each degradation is applied
    at all; noise added at the resized size, then resized back; sizes truncated (int); no clamp after a
    resize; one gray-noise field shared by the copy's gray samples (``released_degradations``).
    ``per_sample``: every sample of every copy draws its own parameters; resize round trip (rounded sizes,
    clamped) before the noise; its own gray field per sample (``degradations``)."""
    blur_probability: float | None = None
    """Probability that a degraded copy is blurred (per sample for ``per_sample``); null = 1 when blur (or
    mix) is in ``degradations``, else 0. Released option: ``train.gaussian_blur_prob``."""
    resize_probability: float | None = None
    """Probability that a degraded copy is resized (down/up and back); null = 1 when resize (or mix) is in
    ``degradations``, else 0. Released option: ``train.resize_prob``."""
    noise_probability: float | None = None
    """Probability that a degraded copy gets Gaussian noise; null = 1 when noise (or mix) is in
    ``degradations``, else 0. Released option: ``train.gaussian_noise_prob``."""
    gray_noise_probability: float = 0.5
    """Per-sample probability that the noise is gray (the same on every channel). Released option:
    ``train.gray_noise_prob`` (the released files: 0.5)."""
    history: HistoryOptions = field(default_factory=HistoryOptions)
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
    vqgan_chunk_images: int = 0
    """How the frozen VQGAN passes run (the result is the same): on all their images at once (0, best on GPUs),
    or this many images at a time (fewer activations alive at once: less memory, and on a CPU whose freed memory
    goes back to the system, faster; see ``VQGANSpace._chunks``)."""
    contrastive_start_iters: int = 0
    """Beyond the paper (0 = the paper: on from the first iteration): the contrastive term is off, and not
    computed, during the first this many iterations, while the history model is still (nearly) the student."""
    contrastive_ramp_iters: int = 0
    """Beyond the paper (0 = the paper: full weight at once): after ``contrastive_start_iters`` the contrastive
    weight grows linearly from 0 to ``contrastive_weight`` over this many iterations."""

    def __post_init__(self) -> None:
        check_weights(
            self,
            [
                "reconstruction_weight",
                "kd_weight",
                "contrastive_weight",
                "codebook_weight",
                "lcr_weight",
                "upcycling_weight",
            ],
        )
        if self.num_negatives < 1:
            raise ConfigError(f"num_negatives must be >= 1, got {self.num_negatives}")
        if not 0.0 <= self.lcr_probability <= 1.0:
            raise ConfigError(f"lcr_probability must be in [0, 1], got {self.lcr_probability}")
        if len(self.layer_weights) < 1:
            raise ConfigError("layer_weights must not be empty")
        if not self.degradations and self.num_degraded_negatives > 0:
            raise ConfigError("degradations is empty but degraded negatives are requested")
        selected = {"blur", "resize", "noise"} if "mix" in self.degradations else set(self.degradations)
        for kind in ("blur", "resize", "noise"):
            value = getattr(self, f"{kind}_probability")
            if value is None:
                continue
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{kind}_probability must be in [0, 1], got {value}")
            if value > 0 and kind not in selected:
                raise ConfigError(
                    f"{kind}_probability is {value:g} but {kind} is not in degradations "
                    f"{list(self.degradations)}; add it there or set {kind}_probability to 0"
                )
        if not 0.0 <= self.gray_noise_probability <= 1.0:
            raise ConfigError(f"gray_noise_probability must be in [0, 1], got {self.gray_noise_probability}")
        if self.upcycling_weight and not (self.upcycling_zoom_in or self.upcycling_zoom_out):
            raise ConfigError("upcycling_weight > 0 but both upcycling_zoom_in and upcycling_zoom_out are off")
        if self.vqgan_chunk_images < 0:
            raise ConfigError(f"vqgan_chunk_images must be >= 0 (0 = one pass), got {self.vqgan_chunk_images}")
        if self.contrastive_start_iters < 0 or self.contrastive_ramp_iters < 0:
            raise ConfigError("contrastive_start_iters and contrastive_ramp_iters must be >= 0")

    @property
    def num_degraded_negatives(self) -> int:
        return self.num_negatives - 1 if self.include_clean_negative else self.num_negatives

    @property
    def degradation_probabilities(self) -> dict[str, float]:
        """Per kind in ``degradations`` (mix = all three), the probability that a copy gets it."""
        selected = {"blur", "resize", "noise"} if "mix" in self.degradations else set(self.degradations)
        return {
            kind: 1.0 if getattr(self, f"{kind}_probability") is None else getattr(self, f"{kind}_probability")
            for kind in ("blur", "resize", "noise")
            if kind in selected
        }


class DCKD(Method):
    Options = DCKDOptions
    loss_names = ("reconstruction", "kd", "contrastive", "codebook", "lcr", "upcycling")

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        vqgan: VQGANSpace | None,
        history: HistoryModel | None,
        negatives: NegativeInputs | None,
        augmentation: InvertibleAugmentation | None,
        *,
        scale: int,
        reconstruction_loss: str = "l1",
        reconstruction_weight: float = 1.0,
        kd_weight: float = 1.0,
        contrastive_weight: float = 0.1,
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
        codebook_weight: float = 0.001,
        codebook_formula: str = "released",
        lcr_weight: float = 0.0,
        lcr_side: str = "teacher",
        upcycling_weight: float = 0.0,
        upcycling_zoom_in: bool = True,
        upcycling_zoom_out: bool = True,
        generator: torch.Generator | None = None,
        contrastive_start_iters: int = 0,
        contrastive_ramp_iters: int = 0,
    ) -> None:
        if contrastive_weight and (history is None or negatives is None or vqgan is None):
            raise ValueError("the contrastive term needs a VQGAN, a history model and a negative sampler")
        if codebook_weight and vqgan is None:
            raise ValueError("the codebook term needs a VQGAN")
        if lcr_weight and augmentation is None:
            raise ValueError("the label-consistency term needs an augmentation")
        if lcr_side not in ("teacher", "student"):
            raise ValueError(f"lcr_side {lcr_side!r}: expected 'teacher' or 'student'")
        if upcycling_weight and not (upcycling_zoom_in or upcycling_zoom_out):
            raise ValueError("upcycling_weight > 0 but both zoom-in and zoom-out are off")
        super().__init__(student, reconstruction_loss, reconstruction_weight)
        self.teacher = teacher
        self.vqgan, self.history, self.negatives, self.augmentation = vqgan, history, negatives, augmentation
        self.scale = scale
        self.kd_weight = kd_weight
        self.contrastive_weight = contrastive_weight
        self.layer_weights = tuple(layer_weights)
        self.codebook_weight = codebook_weight
        self.codebook_formula = codebook_formula
        self.lcr_weight = lcr_weight
        self.lcr_side = lcr_side
        self.upcycling_weight = upcycling_weight
        self.upcycling_zoom_in = upcycling_zoom_in
        self.upcycling_zoom_out = upcycling_zoom_out
        # Zoom-in crop positions; only drawn when upcycling is on.
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.contrastive_start_iters = contrastive_start_iters
        self.contrastive_ramp_iters = contrastive_ramp_iters
        self.steps = 0  # optimiser steps done (the contrastive schedule beyond the paper counts them)

    @classmethod
    def needs(cls, options: DCKDOptions) -> Needs:
        uses_teacher = any(
            getattr(options, name) > 0
            for name in ("kd_weight", "contrastive_weight", "codebook_weight", "lcr_weight", "upcycling_weight")
        )
        return Needs(
            teacher=uses_teacher,
            vqgan=options.contrastive_weight > 0 or options.codebook_weight > 0,
            history=options.contrastive_weight > 0,
            teacher_cache=True,
        )

    @classmethod
    def build(cls, options: DCKDOptions, parts: Parts) -> DCKD:
        uses_vqgan = options.contrastive_weight > 0 or options.codebook_weight > 0
        contrastive = options.contrastive_weight > 0
        history = (
            HistoryModel.from_options(parts.student, options.history, parts.ema_decay, "dckd") if contrastive else None
        )
        negatives = (
            NegativeInputs(
                options.num_degraded_negatives,
                options.include_clean_negative,
                options.degradations,
                parts.generator("negatives"),
                options.negative_sampling,
                options.degradation_probabilities,
                options.gray_noise_probability,
            )
            if contrastive
            else None
        )
        augmentation = (
            InvertibleAugmentation(options.lcr_operations, options.lcr_probability, parts.generator("lcr"))
            if options.lcr_weight > 0
            else None
        )
        return cls(
            parts.student,
            parts.teacher,
            vqgan=VQGANSpace(parts.vqgan, options.vqgan_input_range, options.vqgan_chunk_images)
            if uses_vqgan
            else None,
            history=history,
            negatives=negatives,
            augmentation=augmentation,
            scale=parts.scale,
            reconstruction_loss=options.reconstruction_loss,
            reconstruction_weight=options.reconstruction_weight,
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
            generator=parts.generator("upcycling"),
            contrastive_start_iters=options.contrastive_start_iters,
            contrastive_ramp_iters=options.contrastive_ramp_iters,
        )

    # ------------------------------------------------------------------ forward
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        lq, gt = batch["lq"], batch["gt"]
        size = lq.shape[0]
        teacher_side_lcr = self.lcr_weight > 0 and self.lcr_side == "teacher"
        student_side_lcr = self.lcr_weight > 0 and self.lcr_side == "student"
        plan = self.augmentation.draw(size) if self.lcr_weight else None
        augmented = self.augmentation.apply(lq, plan) if plan is not None else None

        # Teacher, once, on [x, A(x)] (no gradients). T(x) may come from the teacher-output cache.
        needs_teacher = self.kd_weight or self.contrastive_weight or self.codebook_weight or self.lcr_weight
        teacher_clean = teacher_augmented = None
        if needs_teacher:
            with record_function("dckd.teacher"):
                teacher_clean, teacher_augmented = teacher_outputs(self.teacher, batch, augmented)

        # Student, once, on [x] or [x, A(x)] (DUKD's student-side augmentation).
        with record_function("dckd.student"):
            if student_side_lcr:
                student_outputs = self.student(torch.cat([lq, augmented]))
                output, student_augmented = student_outputs[:size], student_outputs[size:]
            else:
                output = self.student(lq)

        terms = self.reconstruction_terms(output, gt)
        if self.kd_weight:
            terms["kd"] = self.kd_weight * l1_loss(output, teacher_clean)
        if teacher_side_lcr:
            terms["lcr"] = self.lcr_weight * l1_loss(output, self.augmentation.invert(teacher_augmented, plan))
        if student_side_lcr:
            terms["lcr"] = self.lcr_weight * l1_loss(student_augmented, teacher_augmented)
        if (self.contrastive_weight and self.contrastive_factor()) or self.codebook_weight:
            terms.update(self._vqgan_terms(lq, output, teacher_clean))
        if self.upcycling_weight:
            terms["upcycling"] = self.upcycling_weight * self._upcycling(lq, gt)
        return result(terms, output)

    def contrastive_factor(self) -> float:
        """The schedule beyond the paper at this iteration: 0 (term off), a ramp, or 1 (the paper)."""
        iteration = self.steps + 1
        if iteration <= self.contrastive_start_iters:
            return 0.0
        if self.contrastive_ramp_iters:
            return min(1.0, (iteration - self.contrastive_start_iters) / self.contrastive_ramp_iters)
        return 1.0

    def _vqgan_terms(self, lq: Tensor, output: Tensor, teacher_clean: Tensor) -> dict[str, Tensor]:
        size = output.shape[0]
        full_pass = self.codebook_weight > 0
        contrastive_weight = self.contrastive_weight * self.contrastive_factor()
        with torch.no_grad():
            negatives = None
            if contrastive_weight:
                with record_function("dckd.history"):
                    negatives = self.history.network(self.negatives(lq))  # (J*N, C, sH, sW)
            with record_function("dckd.vqgan_frozen"):
                # One batched pass over [T(x), negatives]: the whole encoder when the codebook term needs the
                # teacher's code distribution, else only up to the last feature level.
                frozen_batch = teacher_clean if negatives is None else torch.cat([teacher_clean, negatives])
                if full_pass:
                    frozen_features, frozen_logits = self.vqgan.features_and_code_logits(frozen_batch)
                    positions = frozen_logits.shape[0] * size // frozen_batch.shape[0]  # T(x)'s rows come first
                    teacher_logits = frozen_logits[:positions]
                else:
                    frozen_features = self.vqgan.features(frozen_batch)
                positive_features = [feature[:size] for feature in frozen_features]
                negative_features = [feature[size:] for feature in frozen_features]
        with record_function("dckd.vqgan_anchor"):
            if full_pass:
                anchor_features, student_logits = self.vqgan.features_and_code_logits(output)
            else:
                anchor_features = self.vqgan.features(output)
        terms = {}
        if contrastive_weight:
            terms["contrastive"] = contrastive_weight * contrastive_ratio_loss(
                anchor_features, positive_features, negative_features, self.layer_weights
            )
        if self.codebook_weight:
            teacher_probabilities = torch.softmax(teacher_logits, dim=-1)  # (N*h*w, K), rows as the student's
            terms["codebook"] = self.codebook_weight * codebook_cross_entropy(
                torch.log_softmax(student_logits, dim=-1), teacher_probabilities, self.codebook_formula
            )
        return terms

    def _upcycling(self, lq: Tensor, gt: Tensor) -> Tensor:
        """DUKD data upcycling: student matches teacher on zoom-in / zoom-out inputs (no ground truth needed)."""
        inputs = []
        if self.upcycling_zoom_in:
            # One random lq-sized crop of each GT patch (same position for the whole batch).
            height, width = lq.shape[-2:]
            top = int(torch.randint(0, gt.shape[-2] - height + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, gt.shape[-1] - width + 1, (1,), generator=self.generator))
            inputs.append(gt[..., top : top + height, left : left + width])
        if self.upcycling_zoom_out and self.scale > 1:
            inputs.append(imresize_tensor(lq, 1 / self.scale).clamp(0, 1))
        losses = [l1_loss(self.student(upcycled), frozen_forward(self.teacher, upcycled)) for upcycled in inputs]
        return sum(losses) / len(losses)

    # ------------------------------------------------------------------ schedule and state
    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        self.steps = iteration
        return self.history.after_step(iteration, student, ema) if self.history is not None else {}

    def frozen_networks(self) -> dict[str, nn.Module]:
        return {"history": self.history.network} if self.history is not None else {}

    def state_dict(self) -> dict:
        state = {"generator": self.generator.get_state(), "steps": self.steps}
        if self.history is not None:
            state["history"] = self.history.state_dict()
        if self.negatives is not None:
            state["negatives"] = self.negatives.state_dict()
        if self.augmentation is not None:
            state["augmentation"] = self.augmentation.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.steps = int(state.get("steps", 0))  # checkpoints of dckd 0.1 hold no count (their runs had no schedule)
        for name in ("history", "negatives", "augmentation"):
            part = getattr(self, name)
            if (part is None) != (name not in state):
                raise ValueError(
                    f"checkpoint {'lacks' if part is not None else 'has'} DCKD state {name!r}; "
                    "the run's configuration differs from the checkpoint's"
                )
            if part is not None:
                part.load_state_dict(state[name])
