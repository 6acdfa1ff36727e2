"""Uniform random actions in [-1, 1]: D4RL's reference policy for ref_min_score."""

from __future__ import annotations

from typing import Any

import numpy as np


class RandomPolicy:
    """A batched Policy drawing every action component uniformly from [low, high].

    With `reset(..., episode_seeds=[N])` each environment draws from its own generator seeded from
    (seed, episode seed), so an episode's actions do not depend on how episodes are batched.
    """

    def __init__(self, action_dim: int = 2, seed: int | None = 0, low: float = -1.0, high: float = 1.0) -> None:
        if action_dim < 1:
            raise ValueError(f"RandomPolicy action_dim must be >= 1, got {action_dim}")
        if not low < high:
            raise ValueError(f"RandomPolicy needs low < high, got low={low}, high={high}")
        self.action_dim, self.low, self.high = action_dim, low, high
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.num_envs: int | None = None
        self.env_rngs: list[np.random.Generator] | None = None

    def reset(self, num_envs: int | None = None, episode_seeds: list[int] | None = None, **kwargs: Any) -> None:
        self.num_envs = num_envs
        self.env_rngs = None
        if episode_seeds is not None:
            base = 0 if self.seed is None else self.seed
            self.env_rngs = [np.random.default_rng([base, int(s)]) for s in episode_seeds]

    def act(self, observation: Any, noise_level: int | np.ndarray = 0) -> np.ndarray:
        first = next(iter(observation.values())) if isinstance(observation, dict) else observation
        num_envs = int(np.asarray(first).shape[0])
        if self.env_rngs is not None:
            if len(self.env_rngs) != num_envs:
                raise ValueError(
                    f"RandomPolicy was reset for {len(self.env_rngs)} envs but got {num_envs} observations"
                )
            draws = [rng.uniform(self.low, self.high, size=self.action_dim) for rng in self.env_rngs]
            return np.stack(draws).astype(np.float32)
        return self.rng.uniform(self.low, self.high, size=(num_envs, self.action_dim)).astype(np.float32)
