"""Convolutional GRU cell: the recurrent latent z_t = GRU(U-Net output, z_{t-1}) of the video model (B.2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvGRUCell(nn.Module):
    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.gates = nn.Conv2d(input_channels + hidden_channels, 2 * hidden_channels, kernel_size, padding=padding)
        self.candidate_input = nn.Conv2d(input_channels, hidden_channels, kernel_size, padding=padding)
        self.candidate_hidden = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=padding)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate_input(x) + reset * self.candidate_hidden(h))
        return (1 - update) * candidate + update * h
