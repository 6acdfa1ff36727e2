"""The Policy interface shared by gymnasium loops, vectorised evaluation and the ROS 2 node."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A batched policy.

    `observation` is a batch: an array `[num_envs, obs_dim]` or a dict of such arrays (images,
    proprioception). `noise_level` tells a Diffusion Forcing policy how far to trust each observation:
    0 = clean, 0 < k < K = noisy, K = missing; an int applies to the whole batch, an array `[num_envs]`
    per environment (or a dict of those per observation key). Policies that cannot use it ignore it.
    """

    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        """Start new episodes (forget memory, replanning cadence and cached plans)."""

    def act(self, observation: Any, noise_level: int | np.ndarray = 0) -> np.ndarray:
        """Return actions `[num_envs, action_dim]` for a batch of observations."""
