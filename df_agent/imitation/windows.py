"""Teleoperation episodes -> DF imitation tokens, and the training data source over them.

An episode of L steps (observation o_t, action a_t at 10 Hz) becomes N = ceil(L / H) + 1 + hold tokens:
token 0 = (no actions, o_0); token n >= 1 = (a_{(n-1)H} .. a_{nH-1}, o_{min(nH, L-1)}). Actions past the end
of the demonstration are "hold" actions (zero motion, the last gripper command), and `hold_tokens` extra
tokens of holding are appended so the policy learns to stay put once the swap is done.

The source keeps every episode's tokens in memory (images are small uint8 arrays) and draws whole episodes
(the latent must carry memory from the first frame on) or, with `window_tokens`, windows of that many tokens
starting anywhere (the memoryless baseline's training: the latent never sees more than the window).
Randomness comes only from the generator the training loop hands in, as its contract requires.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from df_agent.imitation.config import ImitationConfig

log = logging.getLogger(__name__)

# Replay-buffer keys written by `df-agent data import-bags` with data/topics_example.yaml.
DEFAULT_DATA_KEYS: dict[str, Any] = {
    "images": {"front": "front_image", "wrist": "wrist_image"},
    "proprio": ["ee_pose", "gripper_width"],
    "action": "action",
}


@dataclass
class EpisodeTokens:
    actions: Tensor  # [N, H, A] float32, raw
    proprio: Tensor  # [N, P] float32, raw
    images: Tensor  # [N, cameras, 3, S, S] uint8
    no_actions: Tensor  # [N] bool: token 0

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def resize_frames(frames: np.ndarray | Tensor, size: int) -> Tensor:
    """uint8 frames [N, h, w, 3] -> uint8 [N, 3, size, size] by area averaging (as the bag importer does)."""
    frames = torch.as_tensor(np.array(frames, dtype=np.uint8))  # a copy: ROS message buffers are read-only
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"camera frames must be [N, height, width, 3] RGB, got shape {tuple(frames.shape)}")
    images = frames.permute(0, 3, 1, 2).float()
    if tuple(images.shape[-2:]) != (size, size):
        images = F.adaptive_avg_pool2d(images, (size, size))
    return images.round().clamp(0, 255).to(torch.uint8)


def episode_to_tokens(actions: np.ndarray, proprio: np.ndarray | None, frames: Mapping[str, np.ndarray],
                      config: ImitationConfig, hold_tokens: int = 1) -> EpisodeTokens:
    """One episode's arrays (time-major, length L) -> its DF tokens (see the module docstring)."""
    actions = np.asarray(actions, dtype=np.float32)
    length = actions.shape[0]
    if actions.ndim != 2 or actions.shape[1] != config.action_dim or length < 1:
        raise ValueError(f"actions must be [L >= 1, {config.action_dim}], got shape {actions.shape}")
    if config.proprio_dim:
        proprio = np.asarray(proprio, dtype=np.float32)
        if proprio.shape != (length, config.proprio_dim):
            raise ValueError(f"proprio must be [{length}, {config.proprio_dim}], got shape {proprio.shape}")
    missing = [camera for camera in config.cameras if camera not in frames]
    if missing:
        raise KeyError(f"episode has no frames for camera(s) {missing} (has {sorted(frames)})")
    horizon = config.actions_per_token
    num_tokens = math.ceil(length / horizon) + 1 + hold_tokens
    hold = np.zeros(config.action_dim, dtype=np.float32)
    hold[-1] = actions[-1, -1]  # keep the last gripper command; no motion (FrankaFruitSwap action layout)
    padded = np.concatenate([actions, np.repeat(hold[None], num_tokens * horizon - length, axis=0)])
    token_actions = np.zeros((num_tokens, horizon, config.action_dim), dtype=np.float32)
    token_actions[1:] = padded[: (num_tokens - 1) * horizon].reshape(num_tokens - 1, horizon, config.action_dim)
    observation_index = np.minimum(np.arange(num_tokens) * horizon, length - 1)
    images = torch.stack([resize_frames(np.asarray(frames[c])[observation_index], config.image_size)
                          for c in config.cameras], dim=1)
    token_proprio = (torch.from_numpy(proprio[observation_index]) if config.proprio_dim
                     else torch.zeros(num_tokens, 0))
    no_actions = torch.zeros(num_tokens, dtype=torch.bool)
    no_actions[0] = True
    return EpisodeTokens(torch.from_numpy(token_actions), token_proprio, images, no_actions)


def collate(episodes: Sequence[EpisodeTokens], starts: Sequence[int] | None = None,
            window_tokens: int | None = None) -> dict[str, Tensor]:
    """Stack (windows of) episodes into a padded batch with a mask."""
    pieces = []
    for i, episode in enumerate(episodes):
        start = 0 if starts is None else int(starts[i])
        stop = len(episode) if window_tokens is None else min(len(episode), start + window_tokens)
        pieces.append((episode, start, stop))
    length = max(stop - start for _, start, stop in pieces)
    first = episodes[0]
    batch = len(pieces)
    out = {
        "actions": torch.zeros(batch, length, *first.actions.shape[1:]),
        "proprio": torch.zeros(batch, length, *first.proprio.shape[1:]),
        "images": torch.zeros(batch, length, *first.images.shape[1:], dtype=torch.uint8),
        "no_actions": torch.zeros(batch, length, dtype=torch.bool),
        "mask": torch.zeros(batch, length, dtype=torch.bool),
    }
    for row, (episode, start, stop) in enumerate(pieces):
        n = stop - start
        out["actions"][row, :n] = episode.actions[start:stop]
        out["proprio"][row, :n] = episode.proprio[start:stop]
        out["images"][row, :n] = episode.images[start:stop]
        out["no_actions"][row, :n] = episode.no_actions[start:stop]
        out["mask"][row, :n] = True
    return out


class TeleopTokenSource:
    """`sample_batch(batch_size, generator)` over tokenised episodes: whole episodes, or random windows."""

    def __init__(self, episodes: Sequence[EpisodeTokens], *, window_tokens: int | None = None,
                 validation: Sequence[EpisodeTokens] = (), description: Mapping[str, Any] | None = None) -> None:
        if not episodes:
            raise ValueError("TeleopTokenSource needs at least one training episode")
        if window_tokens is not None and window_tokens < 1:
            raise ValueError(f"window_tokens must be >= 1 or None, got {window_tokens}")
        self.episodes = list(episodes)
        self.validation = list(validation)
        self.window_tokens = window_tokens
        self.description = dict(description or {})

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        chosen = torch.randint(0, len(self.episodes), (batch_size,), generator=generator).tolist()
        episodes = [self.episodes[i] for i in chosen]
        if self.window_tokens is None:
            return collate(episodes)
        draws = torch.rand(batch_size, generator=generator).tolist()
        starts = [int(u * max(1, len(e) - self.window_tokens + 1)) for u, e in zip(draws, episodes)]
        return collate(episodes, starts, self.window_tokens)

    def validation_batches(self, batch_size: int = 16) -> Iterator[dict[str, Tensor]]:
        for start in range(0, len(self.validation), batch_size):
            yield collate(self.validation[start:start + batch_size])

    def describe(self) -> dict[str, Any]:
        lengths = [len(e) for e in self.episodes]
        return {
            "source": type(self).__name__,
            "train_episodes": len(self.episodes),
            "validation_episodes": len(self.validation),
            "tokens_per_episode": [min(lengths), max(lengths)],
            "window_tokens": self.window_tokens,
            **self.description,
        }
