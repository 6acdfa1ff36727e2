"""Discrete noise schedules over levels 0..K (k = 0 clean)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SCHEDULE_NAMES = ("linear", "cosine", "sigmoid")


def _linear_alpha_bar(num_levels: int) -> Tensor:
    # DDPM's 1e-4..0.02 for K = 1000, scaled so other K keep the same total noise (improved-DDPM rule).
    scale = 1000.0 / num_levels
    betas = torch.linspace(scale * 1e-4, scale * 0.02, num_levels, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def _alpha_bar_from_curve(curve: Tensor) -> Tensor:
    # Turn a continuous alpha_bar(t) curve on t = 0..1 into per-level betas clipped at 0.999 (as in
    # improved DDPM) so the last level never becomes exactly pure noise with a division by zero.
    ratios = curve[1:] / curve[:-1]
    betas = (1.0 - ratios).clamp(0.0, 0.999)
    return torch.cumprod(1.0 - betas, dim=0)


def _cosine_alpha_bar(num_levels: int, offset: float = 0.008) -> Tensor:
    t = torch.linspace(0, 1, num_levels + 1, dtype=torch.float64)
    curve = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    return _alpha_bar_from_curve(curve / curve[0])


def _sigmoid_alpha_bar(num_levels: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> Tensor:
    # The sigmoid schedule of Jabri et al. (used by the paper for video, via its reference [9]).
    t = torch.linspace(0, 1, num_levels + 1, dtype=torch.float64)
    v_start, v_end = torch.sigmoid(torch.tensor(start / tau)), torch.sigmoid(torch.tensor(end / tau))
    curve = (-torch.sigmoid((t * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    return _alpha_bar_from_curve(curve.clamp(min=1e-9))


class NoiseSchedule(nn.Module):
    """alpha_bar for levels 0..K, with k = 0 exactly clean.

    The tables are non-persistent buffers: they follow the module across devices but are not saved in
    checkpoints, since they are a pure function of (name, K) recorded in the config.
    """

    def __init__(self, name: str = "linear", num_levels: int = 1000) -> None:
        super().__init__()
        if name not in SCHEDULE_NAMES:
            raise ValueError(f"unknown noise schedule {name!r}; choose one of {SCHEDULE_NAMES}")
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        self.name = name
        self.num_levels = num_levels
        builder = {"linear": _linear_alpha_bar, "cosine": _cosine_alpha_bar, "sigmoid": _sigmoid_alpha_bar}[name]
        alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), builder(num_levels)])
        self.register_buffer("alphas_cumprod", alpha_bar, persistent=False)

    @property
    def K(self) -> int:  # the paper's symbol
        return self.num_levels

    def _check_levels(self, k: Tensor) -> Tensor:
        k = torch.as_tensor(k, device=self.alphas_cumprod.device)
        if k.dtype.is_floating_point:
            raise TypeError(f"noise levels must be integers, got dtype {k.dtype}")
        if k.numel() and (int(k.min()) < 0 or int(k.max()) > self.num_levels):
            raise ValueError(f"noise levels must lie in 0..{self.num_levels}, got range {int(k.min())}..{int(k.max())}")
        return k.long()

    def alpha_bar(self, k: Tensor, like: Tensor | None = None) -> Tensor:
        """alpha_bar_k; with `like`, cast to its dtype and reshaped to broadcast over its trailing dims."""
        values = self.alphas_cumprod[self._check_levels(k)]
        if like is None:
            return values
        return values.to(like.dtype).reshape(values.shape + (1,) * (like.dim() - values.dim()))

    def snr(self, k: Tensor) -> Tensor:
        alpha_bar = self.alpha_bar(k)
        return alpha_bar / (1.0 - alpha_bar).clamp(min=1e-20)

    def q_sample(self, x0: Tensor, k: Tensor, noise: Tensor) -> Tensor:
        """Forward noising q(x_k | x_0): `k` has the leading shape of `x0` (e.g. [B, T])."""
        alpha_bar = self.alpha_bar(k, like=x0)
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise

    def extra_repr(self) -> str:
        return f"name={self.name!r}, K={self.num_levels}"
