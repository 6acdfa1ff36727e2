"""DDIM steps between arbitrary levels, and the 'token stays at its level' corner case (appendix B.5)."""

from __future__ import annotations

from enum import Enum

import torch
from torch import Tensor

from df_agent.diffusion.parameterization import to_eps
from df_agent.diffusion.schedule import NoiseSchedule


class StayPolicy(str, Enum):
    """What to do with a token whose level does not change in a sampling step (appendix B.5)."""

    COPY = "copy"  # keep its current value
    RESAMPLE = "resample"  # predict x0 and re-noise to the same level with fresh noise (used by MCG)


def renoise(x0: Tensor, k: Tensor, schedule: NoiseSchedule, noise: Tensor | None = None) -> Tensor:
    """Sample q(x_k | x0) with fresh noise: the 'resample' corner-case policy."""
    noise = torch.randn_like(x0) if noise is None else noise
    return schedule.q_sample(x0, k, noise)


def ddim_step(
    x_k: Tensor,
    x0_hat: Tensor,
    k: Tensor,
    k_next: Tensor,
    schedule: NoiseSchedule,
    eta: float = 0.0,
    noise: Tensor | None = None,
    stay_policy: StayPolicy | str = StayPolicy.COPY,
) -> Tensor:
    """Move x_k to level k_next <= k given an x0 estimate (per-token levels, leading shape of x_k).

    eta = 0 is deterministic DDIM, eta = 1 the DDPM posterior variance. Tokens with k_next == k follow
    `stay_policy`; k_next == 0 returns x0_hat exactly.
    """
    k = torch.as_tensor(k, device=x_k.device)
    k_next = torch.as_tensor(k_next, device=x_k.device)
    if bool((k_next > k).any()):
        raise ValueError("ddim_step only lowers noise levels; use renoise() to add noise")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    alpha_bar = schedule.alpha_bar(k, like=x_k)
    alpha_bar_next = schedule.alpha_bar(k_next, like=x_k)
    eps_hat = to_eps(x0_hat, x_k, k, schedule)
    # DDIM's sigma; zero wherever k_next == 0 or k_next == k.
    ratio = (1.0 - alpha_bar_next) / (1.0 - alpha_bar).clamp(min=1e-12)
    sigma = eta * (ratio * (1.0 - alpha_bar / alpha_bar_next)).clamp(min=0.0).sqrt()
    direction = (1.0 - alpha_bar_next - sigma**2).clamp(min=0.0).sqrt()
    x_next = alpha_bar_next.sqrt() * x0_hat + direction * eps_hat
    if eta > 0:
        noise = torch.randn_like(x_k) if noise is None else noise
        x_next = x_next + sigma * noise
    stay = (k_next == k).reshape(k.shape + (1,) * (x_k.dim() - k.dim()))
    if StayPolicy(stay_policy) is StayPolicy.COPY:
        stayed = x_k
    else:
        stayed = renoise(x0_hat, k, schedule)
        # Clean tokens are final and pure-noise tokens carry no information: resampling them is moot,
        # and keeping them avoids needless randomness (B.5).
        keep = ((k == 0) | (k == schedule.num_levels)).reshape(stay.shape)
        stayed = torch.where(keep, x_k, stayed)
    return torch.where(stay, stayed, x_next)
