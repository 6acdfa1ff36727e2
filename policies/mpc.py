"""Model-predictive control with a planner: plan, execute the first part of the plan, replan.

`MPCPolicy` follows the authors' maze2d protocol by default: replan every 10 env steps (one token of a
frame_stack-10 model) over the rest of the episode (the horizon shrinks as the episode runs out), starting
each plan from the current observation, and execute the plan's own actions clipped to [-1, 1]. The same
class runs the baselines: `execution="pd"` tracks the planned states with Diffuser's PD controller instead,
and `replan_every=None` plans once and follows that plan until it runs out (Diffuser's protocol).

Noise flags (`act(obs, noise_level=...)`, 0 clean / 0 < k < K noisy / K missing, per env) go to the planner,
which starts the latent from the observation at that level; with `execution="actions"` the observation is only
read at replanning steps, so flags given between replans have no effect (the PD tracker reads every observation).

It is batched: one `plan` call serves every environment, which all start and replan in lockstep (as the
evaluation runner steps them). The runner announces each batch of episodes with
`reset(num_envs, goals, max_episode_steps, env_id, episode_seeds)`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

import numpy as np

from planners.base import Plan, Planner

log = logging.getLogger(__name__)

EXECUTIONS = ("actions", "pd")


class MPCPolicy:
    def __init__(
        self,
        planner: Planner,
        replan_every: int | None = 10,
        *,
        execution: str = "actions",
        max_horizon: int | None = None,
        keep_plans: int = 64,
        action_limit: float = 1.0,
    ) -> None:
        """replan_every: env steps between plans (None: plan once, replan only when the plan runs out).
        max_horizon: cap on the planned tokens (None: the rest of the episode).
        keep_plans: how many recent plans `plan_log` keeps (for figures)."""
        if replan_every is not None and replan_every < 1:
            raise ValueError(f"replan_every must be >= 1 env step or None, got {replan_every}")
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        if max_horizon is not None and max_horizon < 1:
            raise ValueError(f"max_horizon must be >= 1 token or None, got {max_horizon}")
        if not action_limit > 0:
            raise ValueError(f"action_limit must be positive, got {action_limit}")
        self.planner = planner
        self.replan_every = replan_every
        self.execution = execution
        self.max_horizon = max_horizon
        self.action_limit = action_limit
        self.plan_log: deque[tuple[int, Plan]] = deque(maxlen=keep_plans)  # (episode step, plan)
        self.num_envs: int | None = None
        self.goals: np.ndarray | None = None
        self.max_episode_steps: int | None = None
        self.step = 0
        self.current_plan: Plan | None = None
        self.plan_step = 0  # episode step at which current_plan was made
        self.replans = 0

    @classmethod
    def from_preset(cls, name: str, model: Any, replan_every: int | None = None, **planner_overrides: Any
                    ) -> MPCPolicy:
        """The policy of a named planner preset (see `planners.baselines.PRESETS`)."""
        from planners.baselines import get_preset, make_planner

        preset = get_preset(name)
        planner = make_planner(name, model, **planner_overrides)
        if preset.replan_once:
            cadence = None
        else:
            cadence = planner.frame_stack if replan_every is None else replan_every
        return cls(planner, cadence, execution=preset.execution)

    @property
    def frame_stack(self) -> int:
        return int(getattr(self.planner, "frame_stack", 1))

    def reset(
        self,
        num_envs: int | None = None,
        goals: np.ndarray | None = None,
        max_episode_steps: int | None = None,
        env_id: str | None = None,
        episode_seeds: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self.num_envs = num_envs
        if goals is not None:
            goals = np.asarray(goals, dtype=np.float64)
            if goals.ndim != 2 or goals.shape[1] != 2 or (num_envs is not None and goals.shape[0] != num_envs):
                raise ValueError(f"goals must have shape ({num_envs}, 2), got {goals.shape}")
        self.goals = goals
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.max_episode_steps = max_episode_steps
        self.step = 0
        self.current_plan = None
        self.plan_step = 0
        self.replans = 0
        self.plan_log.clear()
        # Seed the planner from the batch's first episode seed, so a seeded evaluation is reproducible.
        if episode_seeds is not None and len(episode_seeds) and hasattr(self.planner, "reseed"):
            self.planner.reseed(int(episode_seeds[0]))

    def horizon_tokens(self) -> int | None:
        """Tokens to plan now: the rest of the episode (rounded up to whole tokens), capped by max_horizon."""
        if self.max_episode_steps is None:
            return self.max_horizon
        remaining = max(1, self.max_episode_steps - self.step)
        horizon = math.ceil(remaining / self.frame_stack)
        return horizon if self.max_horizon is None else min(horizon, self.max_horizon)

    def _needs_plan(self) -> bool:
        if self.current_plan is None:
            return True
        offset = self.step - self.plan_step
        if offset >= self.current_plan.num_steps:
            return True
        return self.replan_every is not None and offset >= self.replan_every

    def act(self, observation: np.ndarray, noise_level: int | np.ndarray = 0) -> np.ndarray:
        observation = np.asarray(observation, dtype=np.float64)
        if observation.ndim != 2:
            raise ValueError(f"observation must be [num_envs, obs_dim], got shape {observation.shape}")
        batch = observation.shape[0]
        if self.num_envs is None:
            self.num_envs = batch
        if batch != self.num_envs:
            raise ValueError(f"MPCPolicy was reset for {self.num_envs} envs but got {batch} observations")
        if self.goals is not None and self.goals.shape[0] != batch:
            raise ValueError(f"{self.goals.shape[0]} goals for {batch} observations")
        if self._needs_plan():
            self.current_plan = self.planner.plan(observation, self.goals, self.horizon_tokens(),
                                                  noise_level=noise_level)
            if self.current_plan.num_envs != batch:
                raise ValueError(f"planner returned {self.current_plan.num_envs} plans for {batch} envs")
            self.plan_step = self.step
            self.replans += 1
            self.plan_log.append((self.step, self.current_plan))
        offset = self.step - self.plan_step
        if self.execution == "actions":
            actions = self.current_plan.actions[:, offset]
        else:
            from planners.baselines import pd_tracking_action

            actions = pd_tracking_action(self.current_plan.observations[:, offset], observation)
        self.step += 1
        return np.clip(actions, -self.action_limit, self.action_limit).astype(np.float32)
