"""Frame stacking as a data-side transform: k consecutive frames become one token (appendix B.6).

Adjacent frames are nearly identical, so rolling the recurrent unit once per frame wastes compute;
stacking k frames per token divides the sequence length (and the sampler's work) by k.
"""

from __future__ import annotations

from torch import Tensor


def stack_frames(frames: Tensor, frame_stack: int) -> Tensor:
    """[B, T*k, *frame_shape] -> [B, T, k * prod(frame_shape)] (frames of a token stay in time order)."""
    if frame_stack < 1:
        raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
    if frames.dim() < 3:
        raise ValueError(f"frames must be [batch, time, ...], got shape {tuple(frames.shape)}")
    batch, length = frames.shape[:2]
    if length % frame_stack:
        raise ValueError(f"sequence length {length} is not a multiple of frame_stack {frame_stack}")
    return frames.reshape(batch, length // frame_stack, -1)


def unstack_frames(tokens: Tensor, frame_stack: int, frame_shape: tuple[int, ...]) -> Tensor:
    """Inverse of `stack_frames`: [B, T, k * prod(frame_shape)] -> [B, T*k, *frame_shape]."""
    batch, length, width = tokens.shape
    expected = frame_stack
    for size in frame_shape:
        expected *= size
    if width != expected:
        raise ValueError(f"token width {width} != frame_stack {frame_stack} x frame shape {frame_shape}")
    return tokens.reshape(batch, length * frame_stack, *frame_shape)
