"""Training a codebook: the VQGAN-style autoencoder DCKD measures images with, on the same engine.

The "student" is a ``dckd.models.vq_autoencoder.CodebookNetwork`` (backbone ``vq_autoencoder``), trained on
random crops of clean images (scale 1: ``lq`` = ``gt``), fed to it as ``2x - 1`` like taming's VQGANs:

    L = mean|x - rec| + codebook_weight * (||sg[z] - e||^2 + beta ||z - sg[e]||^2) [+ adversarial term]

The adversarial term (taming's hinge PatchGAN, its generator term scaled by the adaptive weight) is on
from ``adversarial_start_iters`` when ``adversarial_weight`` > 0; the discriminator and its optimiser
belong to this method and step in ``after_step``. Every ``restart_every_iters`` iterations the codes no
batch chose since the previous restart are re-initialised from encoder outputs of the current batch
(dead-code restart; never in the run's last interval). ``dckd train-codebook`` writes the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dckd.errors import ConfigError
from dckd.losses.autoencoder import adversarial_factor, autoencoder_loss, discriminator_hinge_loss
from dckd.methods.base import Method, Parts, check_weights, result
from dckd.models.averaging import unwrap
from dckd.models.vq_autoencoder import CodebookNetwork, NLayerDiscriminator


@dataclass
class CodebookOptions:
    """Options of method ``codebook`` (the autoencoder's own sizes are the student's options)."""

    codebook_weight: float = 1.0
    """Weight of the quantizer loss next to the L1 reconstruction."""
    adversarial_weight: float = 0.0
    """Weight of taming's adaptive-weighted generator term (0 = no discriminator)."""
    adversarial_start_iters: int = 0
    """First iteration of the adversarial part."""
    discriminator_lr: float = 2e-4
    """Adam learning rate of the discriminator (betas 0.5, 0.9, as taming)."""
    restart_every_iters: int = 200
    """Dead-code restart interval (0 = never)."""

    def __post_init__(self) -> None:
        check_weights(self, ["codebook_weight", "adversarial_weight"])
        if self.restart_every_iters < 0:
            raise ConfigError(f"restart_every_iters must be >= 0 (0 = never), got {self.restart_every_iters}")


class CodebookTraining(Method):
    Options = CodebookOptions
    loss_names = ("reconstruction", "codebook", "adversarial")

    def __init__(
        self, student: nn.Module, options: CodebookOptions, total_iters: int, generator: torch.Generator
    ) -> None:
        network = unwrap(student)
        if not isinstance(network, CodebookNetwork):
            raise ConfigError(
                f"method codebook trains a codebook autoencoder (student backbone 'vq_autoencoder'), "
                f"not a {type(network).__name__}"
            )
        super().__init__(student)
        self.options = options
        self.total_iters = total_iters
        self.generator = generator
        self.discriminator = self.discriminator_optimizer = None
        if options.adversarial_weight > 0:
            device = next(network.parameters()).device
            self.discriminator = NLayerDiscriminator().to(device).train()
            self.discriminator_optimizer = torch.optim.Adam(
                self.discriminator.parameters(), lr=options.discriminator_lr, betas=(0.5, 0.9)
            )
        self.counts_since_restart = torch.zeros(network.n_embed, dtype=torch.long)
        self.counts_since_log = torch.zeros(network.n_embed, dtype=torch.long)
        self.restarted_codes = 0
        self.steps = 0  # optimiser steps done: the adversarial part starts by iteration
        self.interval: dict[str, float] = {}
        self.last: dict[str, Tensor] = {}

    @classmethod
    def build(cls, options: CodebookOptions, parts: Parts) -> CodebookTraining:
        return cls(parts.student, options, parts.total_iters, parts.generator("restarts"))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        parts = self.student(batch["gt"], details=True)
        x, reconstruction = parts["input"], parts["reconstruction"]
        factor = adversarial_factor(self.steps + 1, self.options.adversarial_start_iters)
        fake_logits = self.discriminator(reconstruction) if self.discriminator is not None and factor > 0 else None
        losses = autoencoder_loss(
            x,
            reconstruction,
            parts["quantizer_loss"],
            self.options.codebook_weight,
            fake_logits=fake_logits,
            last_layer=unwrap(self.student).last_layer,
            adversarial_weight=self.options.adversarial_weight * factor,
        )
        terms = {
            "reconstruction": losses["reconstruction"],
            "codebook": self.options.codebook_weight * losses["codebook"],
        }
        if fake_logits is not None:
            terms["adversarial"] = losses["loss"] - terms["reconstruction"] - terms["codebook"]
        self.last = {
            "input": x,
            "reconstruction": reconstruction.detach(),
            "indices": parts["indices"],
            "latent": parts["latent"],
            "adversarial": torch.tensor(float(fake_logits is not None)),
        }
        return result(terms, (reconstruction + 1) / 2)

    def after_step(self, iteration: int, student: nn.Module, ema: nn.Module | None) -> dict[str, float]:
        self.steps = iteration
        events = {}
        counts = torch.bincount(self.last["indices"].reshape(-1).cpu(), minlength=len(self.counts_since_log))
        self.counts_since_restart += counts
        self.counts_since_log += counts
        if bool(self.last["adversarial"]):
            loss = discriminator_hinge_loss(
                self.discriminator(self.last["input"]), self.discriminator(self.last["reconstruction"])
            )
            self.discriminator_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.discriminator_optimizer.step()
            self.interval["discriminator"] = float(loss.detach())
        every = self.options.restart_every_iters
        if every and iteration % every == 0 and iteration + every <= self.total_iters:
            restarted = student.quantize.restart_unused_codes(
                self.counts_since_restart, self.last["latent"], self.generator
            )
            self.restarted_codes += restarted
            self.counts_since_restart.zero_()
            events["restarted_codes"] = float(restarted)
        self.last = {}
        return events

    def interval_values(self) -> dict[str, float]:
        probabilities = self.counts_since_log.float() / self.counts_since_log.sum().clamp_min(1)
        perplexity = float(torch.exp(-(probabilities * probabilities.clamp_min(1e-10).log()).sum()))
        values = {"perplexity": perplexity, **self.interval}
        self.counts_since_log.zero_()
        self.interval = {}
        return values

    def frozen_networks(self) -> dict[str, nn.Module]:
        return {}

    def state_dict(self) -> dict:
        state = {
            "steps": self.steps,
            "counts_since_restart": self.counts_since_restart.clone(),
            "counts_since_log": self.counts_since_log.clone(),
            "restarted_codes": self.restarted_codes,
            "generator": self.generator.get_state(),
        }
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["discriminator_optimizer"] = self.discriminator_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if (self.discriminator is None) != ("discriminator" not in state):
            raise ValueError("the checkpoint's codebook training and this run's differ in the adversarial part")
        self.steps = int(state["steps"])
        self.counts_since_restart.copy_(state["counts_since_restart"])
        self.counts_since_log.copy_(state["counts_since_log"])
        self.restarted_codes = int(state["restarted_codes"])
        self.generator.set_state(state["generator"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
