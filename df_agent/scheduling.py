"""Scheduling matrices for Algorithm 2.

A scheduling matrix is an integer tensor `[rows, tokens]`. Builders here return *sampling-step indices*
in 0..S (S = number of sampling steps, S = "all noise", 0 = clean); `steps_to_levels` maps them to noise
levels 0..K, which is what the sampler consumes. Every matrix starts with a row of S (pure noise), ends
with a row of 0, and each column is non-increasing.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _check(num_tokens: int, num_steps: int) -> None:
    if num_tokens < 1:
        raise ValueError(f"a scheduling matrix needs at least one token, got {num_tokens}")
    if num_steps < 1:
        raise ValueError(f"a scheduling matrix needs at least one sampling step, got {num_steps}")


def full_sequence(num_tokens: int, num_steps: int) -> Tensor:
    """All tokens share one level (full-sequence / Diffuser-style diffusion): S+1 rows."""
    _check(num_tokens, num_steps)
    levels = torch.arange(num_steps, -1, -1)
    return levels[:, None].expand(num_steps + 1, num_tokens).clone()


def pyramid(num_tokens: int, num_steps: int, uncertainty_scale: float = 1.0) -> Tensor:
    """Near tokens are denoised first; token t starts t * u rows after token 0 (appendix B.7).

    Entry [m, t] = clip(S + floor(t * u) - m, 0, S) for rows m = 0 .. S + floor((T - 1) u), less rows
    in which no token moves.
    u = 0 gives full_sequence; larger u keeps the future noisier for longer.
    """
    _check(num_tokens, num_steps)
    if uncertainty_scale < 0 or not math.isfinite(uncertainty_scale):
        raise ValueError(f"uncertainty_scale must be a finite number >= 0, got {uncertainty_scale}")
    offsets = torch.floor(torch.arange(num_tokens, dtype=torch.float64) * uncertainty_scale).long()
    height = num_steps + int(offsets[-1]) + 1
    rows = torch.arange(height)[:, None]
    return _drop_repeated_rows((num_steps + offsets[None, :] - rows).clamp(0, num_steps))


def _drop_repeated_rows(matrix: Tensor) -> Tensor:
    # With u * gap > S no token moves in some rows; such rows would cost a pass and change nothing.
    keep = torch.cat([torch.tensor([True]), (matrix[1:] != matrix[:-1]).any(dim=1)])
    return matrix[keep]


def autoregressive(num_tokens: int, num_steps: int) -> Tensor:
    """One token at a time: token t is fully denoised before token t + 1 leaves pure noise."""
    return stabilized_autoregressive(num_tokens, num_steps, stabilization_step=0)


def stabilized_autoregressive(num_tokens: int, num_steps: int, stabilization_step: int = 1) -> Tensor:
    """Autoregression that stops each token at a small level and keeps it there (section 3.3, C.4).

    Each generated token is denoised only down to `stabilization_step` and later tokens condition on
    it at that small level, so the model treats its own outputs as slightly noisy and errors do not
    compound; the final row takes every token to 0.
    """
    _check(num_tokens, num_steps)
    if not 0 <= stabilization_step < num_steps:
        raise ValueError(f"stabilization_step must be in 0..{num_steps - 1}, got {stabilization_step}")
    rows = [torch.full((num_tokens,), num_steps)]
    current = rows[0].clone()
    for t in range(num_tokens):
        for step in range(num_steps - 1, stabilization_step - 1, -1):
            current[t] = step
            rows.append(current.clone())
    if stabilization_step > 0:
        rows.append(torch.zeros(num_tokens, dtype=torch.long))
    return torch.stack(rows)


def steps_to_levels(matrix: Tensor, num_steps: int, num_levels: int) -> Tensor:
    """Map sampling-step indices 0..S to noise levels 0..K, evenly spaced (S -> K, 0 -> 0)."""
    matrix = torch.as_tensor(matrix)
    if matrix.dtype.is_floating_point:
        raise TypeError("scheduling matrices hold integers")
    if int(matrix.min()) < 0 or int(matrix.max()) > num_steps:
        raise ValueError(f"scheduling matrix entries must be in 0..{num_steps}")
    return torch.round(matrix.double() * num_levels / num_steps).long()


def validate(matrix: Tensor, max_value: int) -> None:
    """Raise ValueError unless `matrix` is a usable scheduling matrix with entries in 0..max_value."""
    matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2 or matrix.shape[0] < 2:
        raise ValueError(f"a scheduling matrix must be 2-D with at least 2 rows, got shape {tuple(matrix.shape)}")
    if matrix.dtype.is_floating_point:
        raise TypeError("scheduling matrices hold integers")
    if int(matrix.min()) < 0 or int(matrix.max()) > max_value:
        raise ValueError(f"scheduling matrix entries must be in 0..{max_value}")
    if bool((matrix[1:] > matrix[:-1]).any()):
        row = int((matrix[1:] > matrix[:-1]).any(dim=1).nonzero()[0])
        raise ValueError(f"scheduling matrix raises a noise level between rows {row} and {row + 1}")
