"""Per-token loss weights: min-SNR (Hang et al.) and the paper's fused SNR reweighting (appendix B.1)."""

from __future__ import annotations

import torch
from torch import Tensor

from df_agent.diffusion.parameterization import Parameterization
from df_agent.diffusion.schedule import NoiseSchedule


def min_snr_factor(k: Tensor, schedule: NoiseSchedule, clip: float) -> Tensor:
    """S_k = min(SNR_k, clip) / clip, in [0, 1]."""
    return schedule.snr(k).clamp(max=clip) / clip


def _to_target_space(weight_x0: Tensor, k: Tensor, schedule: NoiseSchedule, param: Parameterization) -> Tensor:
    # min-SNR is defined on the x0 loss; the eps and v losses equal the x0 loss times SNR and SNR + 1,
    # so divide those out to weight the actual target.
    snr = schedule.snr(k)
    if param is Parameterization.X0:
        return weight_x0
    if param is Parameterization.EPS:
        return weight_x0 / snr.clamp(min=1e-12)
    return weight_x0 / (snr + 1.0)


def min_snr_weights(k: Tensor, schedule: NoiseSchedule, param: Parameterization | str, clip: float = 5.0) -> Tensor:
    """min(SNR, clip) weighting expressed for the given target, for levels `k` of shape [B, T]."""
    param = Parameterization.parse(param)
    weight_x0 = schedule.snr(k).clamp(max=clip)
    return _to_target_space(weight_x0, k, schedule, param).float()


def _checked_factor(k: Tensor, schedule: NoiseSchedule, clip: float, decay: float) -> Tensor:
    if not 0.0 < decay < 1.0:
        raise ValueError(f"fused SNR decay must be in (0, 1), got {decay}")
    return min_snr_factor(k, schedule, clip)


def _fused(factor: Tensor, prior: Tensor, k: Tensor, schedule: NoiseSchedule, param: Parameterization | str,
           clip: float) -> Tensor:
    """S'_t = 1 - (1 - S_t)(1 - S̄_{t-1}) as a weight on the target; `prior` holds S̄_{t-1} per token."""
    weight_x0 = (1.0 - (1.0 - factor) * (1.0 - prior)) * clip
    return _to_target_space(weight_x0, k, schedule, Parameterization.parse(param)).float()


def fused_snr_weights(
    k: Tensor,
    schedule: NoiseSchedule,
    param: Parameterization | str,
    clip: float = 5.0,
    decay: float = 0.8,
) -> Tensor:
    """Fused SNR reweighting (B.1) for levels `k` of shape [B, T] (time on dim 1).

    S_t = min-SNR factor of token t; cumulative S̄_t = decay * S̄_{t-1} + (1 - decay) * S_t (S̄_0 = 0);
    S'_t = 1 - (1 - S_t)(1 - S̄_{t-1}). The weight on the x0 loss is clip * S'_t, i.e. min-SNR where the
    noisy history carries no signal and a larger weight where it does.
    """
    factor = _checked_factor(k, schedule, clip, decay)
    cumulative = torch.zeros_like(factor[:, 0])
    priors = []
    for t in range(factor.shape[1]):
        priors.append(cumulative)
        cumulative = decay * cumulative + (1.0 - decay) * factor[:, t]
    return _fused(factor, torch.stack(priors, dim=1), k, schedule, param, clip)


def clean_history_fused_snr_weights(
    k: Tensor,
    schedule: NoiseSchedule,
    param: Parameterization | str,
    clip: float = 5.0,
    decay: float = 0.8,
) -> Tensor:
    """Fused SNR weights (B.1) for tokens whose history is clean, levels `k` [B, T] of the tokens themselves.

    This is `fused_snr_weights` of a matrix in which every token before t is at level 0: S̄_{t-1} = 1 - decay^t,
    so S'_t = 1 - (1 - S_t) decay^t. Teacher forcing trains exactly that case (the latent always comes from the
    clean history). Plain min-SNR there would give the high-noise tokens, the ones predicted from the history
    alone, almost no weight, although the history carries the full signal.
    """
    factor = _checked_factor(k, schedule, clip, decay)
    prior = 1.0 - decay ** torch.arange(k.shape[1], device=k.device, dtype=factor.dtype)
    return _fused(factor, prior.expand_as(factor), k, schedule, param, clip)
