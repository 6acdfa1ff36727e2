"""A diffusion U-Net (Ho et al.) conditioned on the noise level: the transition model p(x_t^k | z_{t-1})."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def level_embedding(k: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of integer noise levels `k` [B] -> [B, dim]."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=k.device, dtype=torch.float32) / half)
    angles = k.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    groups = min(8, channels)
    if channels % groups:
        groups = math.gcd(8, channels)  # e.g. 28 = z (16) + token (12) in gpu64's observation head
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int | None = None) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embedding_dim, 2 * out_channels) if embedding_dim else None
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.embed is not None and embedding is not None:
            scale, shift = self.embed(embedding)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift  # FiLM by the noise level
        h = self.conv2(nn.functional.silu(h))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(seq, seq, seq, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        channel_mults: tuple[int, ...],
        res_blocks_per_level: int,
        embedding_dim: int,
        resolution: int,
        attention_resolution: int = 0,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.level_mlp = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skip_channels = [base_channels]
        channels, size = base_channels, resolution
        for level, mult in enumerate(channel_mults):
            for _ in range(res_blocks_per_level):
                block = nn.ModuleList([ResBlock(channels, base_channels * mult, embedding_dim)])
                channels = base_channels * mult
                if size == attention_resolution:
                    block.append(SelfAttention(channels))
                self.down.append(block)
                skip_channels.append(channels)
            if level < len(channel_mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(channels, channels, 3, stride=2, padding=1)]))
                skip_channels.append(channels)
                size //= 2
        self.mid1 = ResBlock(channels, channels, embedding_dim)
        self.mid_attention = SelfAttention(channels) if attention_resolution else nn.Identity()
        self.mid2 = ResBlock(channels, channels, embedding_dim)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(res_blocks_per_level + 1):
                block = nn.ModuleList([ResBlock(channels + skip_channels.pop(), base_channels * mult, embedding_dim)])
                channels = base_channels * mult
                if size == attention_resolution:
                    block.append(SelfAttention(channels))
                self.up.append(block)
            if level > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(channels, channels, 3, padding=1)]))
                size *= 2
        self.out = nn.Sequential(_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))

    def forward(self, x: Tensor, k: Tensor) -> Tensor:
        embedding = self.level_mlp(level_embedding(k, self.embedding_dim))
        h = self.stem(x)
        skips = [h]
        for block in self.down:
            if isinstance(block[0], ResBlock):
                h = block[0](h, embedding)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[0](h)
            skips.append(h)
        h = self.mid2(self.mid_attention(self.mid1(h, embedding)), embedding)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = block[0](torch.cat([h, skips.pop()], dim=1), embedding)
                for extra in block[1:]:
                    h = extra(h)
            else:
                h = block[1](block[0](h))
        return self.out(h)
