"""Teleoperation demos in a zarr replay buffer -> DF imitation tokens (`df_agent.imitation.windows`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.replay_buffer import ReplayBuffer
from df_agent.imitation.config import ImitationConfig
from df_agent.imitation.windows import DEFAULT_DATA_KEYS, EpisodeTokens, episode_to_tokens


def load_replay_buffer_episodes(path: str | Path, config: ImitationConfig, keys: Mapping[str, Any] | None = None,
                                episodes: Sequence[int] | None = None,
                                ) -> tuple[list[EpisodeTokens], list[np.ndarray], list[np.ndarray]]:
    """Read episodes of a zarr replay buffer and tokenise them; also returns their raw actions and proprio
    (for fitting the normalisers). Missing keys or wrong shapes are errors naming the buffer and key."""
    keys = dict(keys or DEFAULT_DATA_KEYS)
    buffer = ReplayBuffer.open(path, mode="r")
    image_keys = {camera: keys["images"][camera] for camera in config.cameras if camera in keys["images"]}
    absent_cameras = [camera for camera in config.cameras if camera not in image_keys]
    if absent_cameras:
        raise KeyError(f"no replay-buffer key configured for camera(s) {absent_cameras}")
    needed = [keys["action"], *image_keys.values(), *(keys["proprio"] if config.proprio_dim else [])]
    absent = [key for key in needed if key not in buffer.keys]
    if absent:
        raise KeyError(f"{path}: replay buffer lacks key(s) {absent} needed for imitation (has {buffer.keys})")
    if buffer.n_episodes == 0:
        raise ValueError(f"{path}: replay buffer holds no episodes")
    indices = range(buffer.n_episodes) if episodes is None else episodes
    tokens, raw_actions, raw_proprio = [], [], []
    for index in indices:
        episode = buffer.get_episode(int(index), keys=needed)
        action = episode[keys["action"]]
        proprio = None
        if config.proprio_dim:
            parts = [episode[key].reshape(len(action), -1) for key in keys["proprio"]]
            proprio = np.concatenate(parts, axis=1).astype(np.float32)
            if proprio.shape[1] != config.proprio_dim:
                raise ValueError(f"{path}: proprio keys {keys['proprio']} give {proprio.shape[1]} numbers per step, "
                                 f"the model expects proprio_dim={config.proprio_dim}")
        frames = {camera: episode[key] for camera, key in image_keys.items()}
        try:
            tokens.append(episode_to_tokens(action, proprio, frames, config))
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path}: episode {index}: {error}") from error
        raw_actions.append(action)
        if proprio is not None:
            raw_proprio.append(proprio)
    return tokens, raw_actions, raw_proprio
