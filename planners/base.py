"""The Planner interface: a batch of observations (and goals) in, a batch of plans out.

A plan is in the environment's own units: `actions [B, H * frame_stack, action_dim]` (what an MPC policy
executes, unclipped) and `observations [B, H * frame_stack, obs_dim]` (what the model predicts those actions
lead to: frame i is o_{t+i+1}, the observation after action i). `H` is the horizon in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Plan:
    actions: np.ndarray  # [B, H * frame_stack, action_dim], unnormalised, not clipped
    observations: np.ndarray  # [B, H * frame_stack, obs_dim], predicted o_{t+1} .. o_{t+H*fs}
    diagnostics: dict[str, Any] = field(default_factory=dict)  # planner-specific (timings, rewards, levels...)

    def __post_init__(self) -> None:
        if self.actions.ndim != 3 or self.observations.ndim != 3:
            raise ValueError(f"Plan actions and observations must be [B, steps, dim], got {self.actions.shape} "
                             f"and {self.observations.shape}")
        if self.actions.shape[:2] != self.observations.shape[:2]:
            raise ValueError(f"Plan actions {self.actions.shape} and observations {self.observations.shape} "
                             "disagree on batch or step count")

    @property
    def num_envs(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[1])

    def select(self, indices: np.ndarray | list[int]) -> Plan:
        """The plans of some environments only (diagnostics are shared, not sliced)."""
        return Plan(self.actions[indices], self.observations[indices], dict(self.diagnostics))


@dataclass
class History:
    """Executed, observed tokens to run through the model's latent before planning (optional context).

    start_observation [B, obs_dim] is the observation before the first history token; tokens [B, n, D] are raw
    (unnormalised) tokens in the model's layout; levels [B, n] say how far to trust each token
    (0 = trusted, 0 < k < K noisy, K missing; None = all trusted).
    """

    start_observation: np.ndarray
    tokens: np.ndarray
    levels: np.ndarray | None = None


@runtime_checkable
class Planner(Protocol):
    """Plans for a batch of environments at once.

    observation [B, obs_dim]: the current observations. goal [B, 2] or None (unguided). horizon: tokens to plan
    (None: the planner's default). history: executed tokens to condition on (see `History`). noise_level: how
    far to trust `observation`, an int for the batch or an array [B] (0 = clean, 0 < k < K noisy, K missing; a
    missing observation's value is never used).
    """

    frame_stack: int

    def plan(
        self,
        observation: np.ndarray,
        goal: np.ndarray | None = None,
        horizon: int | None = None,
        history: History | None = None,
        noise_level: int | np.ndarray = 0,
    ) -> Plan: ...
