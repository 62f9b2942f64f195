"""The codebook autoencoder's losses (taming's ``VQLPIPSWithDiscriminator`` without the perceptual term)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def adversarial_factor(step: int, start_step: int) -> float:
    """1 from ``start_step`` on, 0 before (taming's ``adopt_weight``); at 0, skip the discriminator entirely."""
    return 1.0 if step >= start_step else 0.0


def discriminator_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """0.5 * (mean relu(1 - D(x)) + mean relu(1 + D(x_rec))); pass the reconstruction detached."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def autoencoder_loss(
    x: Tensor,
    reconstruction: Tensor,
    codebook_loss: Tensor,
    codebook_weight: float = 1.0,
    fake_logits: Tensor | None = None,
    last_layer: Tensor | None = None,
    adversarial_weight: float = 1.0,
) -> dict[str, Tensor]:
    """The autoencoder's training loss and its terms.

    x, reconstruction: (N, C, H, W); codebook_loss: the quantizer's scalar loss.
    ``loss = mean|x - rec| + codebook_weight * codebook_loss [+ w_adaptive * adversarial_weight * L_G]``.
    The adversarial term is computed only when ``fake_logits`` (the discriminator on ``reconstruction``,
    not detached) is given; ``L_G = -mean(fake_logits)`` and ``w_adaptive = ||dL_rec/dW|| /
    (||dL_G/dW|| + 1e-4)`` clamped to [0, 1e4] and detached, W = ``last_layer`` (taming's rule, which
    balances the two gradients at the decoder output). Without grad mode the adaptive weight is 0.

    Returns {"loss", "reconstruction", "codebook"} plus {"generator", "adaptive_weight"} when adversarial.
    """
    reconstruction_term = (x - reconstruction).abs().mean()
    terms = {"reconstruction": reconstruction_term, "codebook": codebook_loss}
    loss = reconstruction_term + codebook_weight * codebook_loss
    if fake_logits is not None:
        if last_layer is None:
            raise ValueError("autoencoder_loss: fake_logits given without last_layer (needed for the adaptive weight)")
        generator_term = -fake_logits.mean()
        if torch.is_grad_enabled() and last_layer.requires_grad:
            reconstruction_grad = torch.autograd.grad(reconstruction_term, last_layer, retain_graph=True)[0]
            generator_grad = torch.autograd.grad(generator_term, last_layer, retain_graph=True)[0]
            adaptive_weight = (reconstruction_grad.norm() / (generator_grad.norm() + 1e-4)).clamp(0.0, 1e4).detach()
        else:
            adaptive_weight = torch.zeros((), device=x.device)
        loss = loss + adaptive_weight * adversarial_weight * generator_term
        terms.update(generator=generator_term, adaptive_weight=adaptive_weight)
    return {"loss": loss, **terms}
