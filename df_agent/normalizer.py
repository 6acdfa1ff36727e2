"""Per-dimension affine normaliser, stored as module buffers so it travels inside `model.safetensors`."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """x_normalised = (x - shift) / scale, per feature (last dimension).

    Two modes: "gaussian" (mean / std) and "minmax" (maps [min, max] to [-1, 1]). Constant features get
    scale 1 so they are shifted but never divided by zero.
    """

    def __init__(self, dim: int, mode: str = "gaussian", eps: float = 1e-6) -> None:
        super().__init__()
        if mode not in ("gaussian", "minmax"):
            raise ValueError(f"Normalizer mode must be 'gaussian' or 'minmax', got {mode!r}")
        self.dim = dim
        self.mode = mode
        self.eps = eps
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, data: Tensor) -> Normalizer:
        """Fit on samples `[..., dim]` (any leading shape)."""
        data = torch.as_tensor(data, dtype=torch.float64)
        if data.shape[-1] != self.dim:
            raise ValueError(f"Normalizer.fit expects last dimension {self.dim}, got shape {tuple(data.shape)}")
        flat = data.reshape(-1, self.dim)
        if flat.shape[0] == 0:
            raise ValueError("Normalizer.fit got no samples")
        if not torch.isfinite(flat).all():
            raise ValueError("Normalizer.fit got non-finite values (NaN or inf)")
        if self.mode == "gaussian":
            shift, scale = flat.mean(0), flat.std(0, unbiased=False)
        else:
            low, high = flat.min(0).values, flat.max(0).values
            shift, scale = (high + low) / 2, (high - low) / 2
        scale = torch.where(scale < self.eps, torch.ones_like(scale), scale)
        self.shift.copy_(shift.to(self.shift.dtype))
        self.scale.copy_(scale.to(self.scale.dtype))
        self.fitted.fill_(True)
        return self

    def set_stats(self, shift: Tensor, scale: Tensor) -> Normalizer:
        shift, scale = torch.as_tensor(shift).reshape(-1), torch.as_tensor(scale).reshape(-1)
        if shift.numel() != self.dim or scale.numel() != self.dim:
            raise ValueError(f"Normalizer stats must have {self.dim} entries, got {shift.numel()} and {scale.numel()}")
        if not (scale > 0).all():
            raise ValueError("Normalizer scale must be positive")
        self.shift.copy_(shift)
        self.scale.copy_(scale)
        self.fitted.fill_(True)
        return self

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)

    def unnormalize(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, mode={self.mode!r}"
