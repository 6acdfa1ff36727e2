"""The maze2d token layout, in one place: what the training windows write, the model records, the planner reads
and the MPC policy feeds back as history.

A frame is [o_{t+1} (x, y, vx, vy), a_t (ax, ay)]: the action and the observation it led to (FACTS.md). A token
packs `frame_stack` consecutive frames, frame by frame, so it has frame_stack * 6 numbers. The model's context
(what its initial latent starts from) is an observation (x, y, vx, vy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OBS_NAMES = ("x", "y", "vx", "vy")
ACTION_NAMES = ("ax", "ay")
OBS_DIM = len(OBS_NAMES)
ACTION_DIM = len(ACTION_NAMES)
FRAME_DIM = OBS_DIM + ACTION_DIM


def token_spec(frame_stack: int) -> dict[str, Any]:
    """The `DFModelConfig.token_spec` of a maze2d model (recorded in its checkpoint)."""
    if frame_stack < 1:
        raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
    return {"frame_stack": int(frame_stack), "frame": [*OBS_NAMES, *ACTION_NAMES], "obs_dim": OBS_DIM,
            "action_dim": ACTION_DIM, "context": list(OBS_NAMES)}


def frame_stack_of(model: Any) -> int:
    """Frames per token: recorded in the model's token_spec, else token_dim / 6 (maze2d frames)."""
    spec = getattr(model.config, "token_spec", {}) or {}
    token_dim = int(model.config.token_dim)
    frame_stack = int(spec.get("frame_stack", token_dim // FRAME_DIM))
    if frame_stack < 1 or frame_stack * FRAME_DIM != token_dim:
        raise ValueError(f"model token_dim {token_dim} is not frame_stack x {FRAME_DIM} maze2d frames "
                         f"(token_spec: {spec})")
    return frame_stack


def frames_to_tokens(frames: np.ndarray, frame_stack: int) -> np.ndarray:
    """Frames [B, n * frame_stack, 6] -> tokens [B, n, frame_stack * 6]."""
    batch, steps, width = frames.shape
    if width != FRAME_DIM or steps % frame_stack:
        raise ValueError(f"frames must have shape (B, n * {frame_stack}, {FRAME_DIM}), got {frames.shape}")
    return frames.reshape(batch, steps // frame_stack, frame_stack * FRAME_DIM)


def tokens_to_frames(tokens: Any) -> Any:
    """Tokens [B, H, frame_stack * 6] -> frames [B, H * frame_stack, 6] (numpy or torch, differentiable)."""
    return tokens.reshape(tokens.shape[0], -1, FRAME_DIM)
