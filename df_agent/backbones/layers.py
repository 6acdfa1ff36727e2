"""Small building blocks: residual MLPs and the noise-level embedding."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LevelEmbedding(nn.Module):
    """Sinusoidal embedding of an integer noise level k in 0..K, scaled to the unit interval first."""

    def __init__(self, dim: int, num_levels: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"level embedding dimension must be even, got {dim}")
        self.dim = dim
        self.num_levels = num_levels
        frequencies = torch.exp(-math.log(10_000.0) * torch.arange(dim // 2) / (dim // 2))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, k: Tensor) -> Tensor:
        position = k.float()[..., None] * (1000.0 / self.num_levels) * self.frequencies
        return torch.cat([position.sin(), position.cos()], dim=-1)


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(nn.functional.silu(self.fc1(self.norm(x))))


class ResMLP(nn.Module):
    """Linear -> `blocks` pre-norm residual blocks -> LayerNorm -> Linear (the 'ResNet of MLPs')."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden_dim)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden_dim) for _ in range(blocks)])
        self.norm = nn.LayerNorm(hidden_dim)
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(nn.functional.silu(self.norm(self.blocks(self.inp(x)))))
