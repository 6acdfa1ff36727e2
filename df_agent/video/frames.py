"""Pixels <-> tokens. A token stacks `frame_stack` consecutive RGB frames along channels, scaled to [-1, 1]:
video [B, F, H, W, 3] (uint8 or 0..255 floats) <-> tokens [B, F / frame_stack, 3 * frame_stack, H, W]."""

from __future__ import annotations

import torch
from torch import Tensor


def frames_to_tokens(video: Tensor, frame_stack: int) -> Tensor:
    if video.dim() != 5 or video.shape[-1] != 3:
        raise ValueError(f"video must be [batch, frames, H, W, 3], got shape {tuple(video.shape)}")
    b, f, h, w, _ = video.shape
    if f % frame_stack:
        raise ValueError(f"{f} frames cannot be stacked {frame_stack} to a token")
    x = video.float() / 127.5 - 1.0
    x = x.reshape(b, f // frame_stack, frame_stack, h, w, 3).permute(0, 1, 2, 5, 3, 4)
    return x.reshape(b, f // frame_stack, frame_stack * 3, h, w)


def tokens_to_frames(tokens: Tensor, frame_stack: int) -> Tensor:
    """Inverse of `frames_to_tokens`, as uint8 [B, F, H, W, 3] (values clipped to the pixel range)."""
    b, t, c, h, w = tokens.shape
    if c != 3 * frame_stack:
        raise ValueError(f"tokens have {c} channels, expected 3 * frame_stack = {3 * frame_stack}")
    x = tokens.reshape(b, t, frame_stack, 3, h, w).permute(0, 1, 2, 4, 5, 3).reshape(b, t * frame_stack, h, w, 3)
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
