"""Model-predictive control with a planner: plan, execute the first part of the plan, replan.

`MPCPolicy` follows the authors' maze2d protocol by default: replan every 10 env steps (one token of a
frame_stack-10 model) over the rest of the episode (the horizon shrinks as the episode runs out), starting
each plan from the current observation, and execute the plan's own actions clipped to [-1, 1]. The same
class runs the baselines: `execution="pd"` tracks the planned states with Diffuser's PD controller instead,
and `replan_every=None` plans once and follows that plan until it runs out (Diffuser's protocol).

Noise flags (`act(obs, noise_level=...)`, 0 clean / 0 < k < K noisy / K missing, per env) go to the planner,
which starts the latent from the observation at that level; with `execution="actions"` the observation is only
read at replanning steps, so flags given between replans have no effect (the PD tracker reads every observation).
A missing observation (level K) is not planned from pure noise when a plan exists: the current plan's own
prediction of this step's observation (the world model's estimate) replaces it, flagged noisy at
`predicted_obs_level`. `noise_level_for_std(std)` gives the level that matches Gaussian noise of that std on the
reported position (policies/corruption.py), so an evaluation runner can flag noisy observations.

It is batched: one `plan` call serves every environment, which all start and replan in lockstep (as the
evaluation runner steps them). The runner announces each batch of episodes with
`reset(num_envs, goals, max_episode_steps, env_id, episode_seeds)`.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import deque
from typing import Any

import numpy as np

from planners.base import Plan, Planner
from planners.maze2d_tokens import frames_to_tokens
from policies.corruption import noise_level_for_std
from policies.stall_backoff import StallBackoff

log = logging.getLogger(__name__)

EXECUTIONS = ("actions", "pd")
CONTEXTS = ("observation", "history")
# Trust given to the plan's own prediction of a missing observation (K = 1000 linear schedule). Quick checks on
# the shipped umaze checkpoint (df preset, 10 DDIM steps; small samples, so only the coarse trend counts):
# - one token (10 env steps) after a replan the predicted observation is off the real one by 0.16 normaliser
#   stds RMS over (x, y, vx, vy) (0.13 over x, y; 4 episodes, 116 replans), which the std -> level rule of
#   policies/corruption.py maps to k = 47 (38);
# - closed loop with half the observations dropped (8 episodes, seeds 0-7): levels 20 / 60 / 200 / 999 scored
#   35 / 17 / 4 / -23 (999 is nearly "missing", i.e. planning from pure noise); seeds 8-15: 20 / 50 scored 66 / 68.
# So: near the measured prediction error, not much above it; 50.
# Capped at K - 1 on schedules with fewer levels (a prediction is never as uninformative as a missing one).
DEFAULT_PREDICTED_OBS_LEVEL = 50


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
        predicted_obs_level: int = DEFAULT_PREDICTED_OBS_LEVEL,
        context: str = "observation",
        history_tokens: int | None = None,
        stall_backoff: StallBackoff | dict | float | None = None,
    ) -> None:
        """replan_every: env steps between plans (None: plan once, replan only when the plan runs out).
        max_horizon: cap on the planned tokens (None: the rest of the episode).
        keep_plans: how many recent plans `plan_log` keeps (for figures).
        predicted_obs_level: the level at which the plan's prediction stands in for a missing observation.
        context: "observation" starts every plan from the current observation alone (the authors' protocol);
        "history" runs the episode's executed tokens (observations as seen, actions as executed, each token at
        the highest level of its frames' flags) through the latent from the episode's first observation, so
        observations flagged noisy are filtered over time by the model (the Bayes-filter view of section 4.4).
        history_tokens: keep only the last N executed tokens in "history" mode (None: the whole episode).
        stall_backoff: scale an environment's goal guidance down when its ball made none of the progress towards
        the goal its last plan predicted (policies/stall_backoff.py; None = off). Needs a planner whose plan()
        takes guidance_weight."""
        if replan_every is not None and replan_every < 1:
            raise ValueError(f"replan_every must be >= 1 env step or None, got {replan_every}")
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        if max_horizon is not None and max_horizon < 1:
            raise ValueError(f"max_horizon must be >= 1 token or None, got {max_horizon}")
        if not action_limit > 0:
            raise ValueError(f"action_limit must be positive, got {action_limit}")
        if predicted_obs_level < 1:
            raise ValueError(f"predicted_obs_level must be >= 1 (a prediction is not a clean observation), "
                             f"got {predicted_obs_level}")
        self.predicted_obs_level = int(predicted_obs_level)
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        if context == "history" and replan_every is not None and replan_every != int(
                getattr(planner, "frame_stack", replan_every)):
            # A plan starts after the last complete executed token, so replans must fall on token boundaries.
            raise ValueError(f"context='history' needs replan_every = frame_stack "
                             f"({getattr(planner, 'frame_stack', None)}), got {replan_every}")
        if history_tokens is not None and history_tokens < 1:
            raise ValueError(f"history_tokens must be >= 1 or None, got {history_tokens}")
        self.context = context
        self.history_tokens = history_tokens
        self.stall_backoff = StallBackoff.from_value(stall_backoff)
        if self.stall_backoff is not None:
            if execution != "actions":
                raise ValueError("stall_backoff compares the observation with the plan's prediction of the executed "
                                 f"actions, so it needs execution='actions', got {execution!r}")
            if "guidance_weight" not in inspect.signature(planner.plan).parameters:
                raise ValueError(f"stall_backoff needs a planner whose plan() takes guidance_weight; "
                                 f"{type(planner).__name__} does not")
        self.guidance_weight: np.ndarray | None = None  # per env, with stall_backoff
        self._plan_start_xy: np.ndarray | None = None  # where the current plan was made from (stall_backoff)
        self.stall_events = 0  # replans at which an environment's guidance was backed off (this batch)
        self._frames: list[np.ndarray] = []  # per executed step: [B, obs + action] frame [o_{t+1}, a_t]
        self._frame_levels: list[np.ndarray] = []  # per executed step: [B] level of o_{t+1}
        self._start: tuple[np.ndarray, np.ndarray] | None = None  # first observation [B, obs] and its level [B]
        self._last_action: np.ndarray | None = None
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
        self.predicted_substitutions = 0  # missing observations replaced by the plan's prediction (this batch)

    @classmethod
    def from_preset(
        cls,
        name: str,
        model: Any,
        replan_every: int | None = None,
        max_horizon: int | None = None,
        predicted_obs_level: int | None = None,
        context: str = "observation",
        history_tokens: int | None = None,
        stall_backoff: StallBackoff | dict | float | None = None,
        free_space: Any | None = None,
        **planner_overrides: Any,
    ) -> MPCPolicy:
        """The policy of a named planner preset (see `planners.baselines.PRESETS`); `planner_overrides` replace
        DFPlannerConfig or SamplerConfig fields (e.g. guidance_scale, precision="bf16"); max_horizon caps the
        planned tokens."""
        from planners.baselines import get_preset, make_planner

        preset = get_preset(name)
        planner = make_planner(name, model, free_space=free_space, **planner_overrides)
        if preset.replan_once:
            cadence = None
        else:
            cadence = planner.frame_stack if replan_every is None else replan_every
        options: dict[str, Any] = {}
        if predicted_obs_level is not None:
            options["predicted_obs_level"] = predicted_obs_level
        return cls(planner, cadence, execution=preset.execution, max_horizon=max_horizon, context=context,
                   history_tokens=history_tokens, stall_backoff=stall_backoff, **options)

    @property
    def frame_stack(self) -> int:
        return int(getattr(self.planner, "frame_stack", 1))

    @property
    def num_levels(self) -> int | None:
        """K, the level that flags an observation missing (None if the planner does not say)."""
        levels = getattr(self.planner, "num_levels", None)
        return None if levels is None else int(levels)

    def noise_level_for_std(self, std: float) -> int:
        """The level to flag an observation whose reported (x, y) carries N(0, std^2) noise (env units)."""
        model = getattr(self.planner, "model", None)
        if model is None or not hasattr(model, "context_normalizer") or not hasattr(model, "schedule"):
            raise ValueError(f"{type(self.planner).__name__} exposes no DF model, so no noise level can be "
                             "matched to an observation noise std")
        scale = model.context_normalizer.scale[:2].detach().cpu().double().numpy()
        alpha_bar = model.schedule.alphas_cumprod.detach().cpu().double().numpy()
        return noise_level_for_std(std, scale, alpha_bar)

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
        self.predicted_substitutions = 0
        self.guidance_weight = None
        self._plan_start_xy = None
        self.stall_events = 0
        self.plan_log.clear()
        self._frames, self._frame_levels, self._start, self._last_action = [], [], None, None
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

    def _fill_missing(self, observation: np.ndarray, noise_level: int | np.ndarray
                      ) -> tuple[np.ndarray, int | np.ndarray]:
        """Replace observations flagged missing (level K) by the current plan's prediction of them, flagged
        noisy at predicted_obs_level. Without a plan (episode start) or a known K nothing changes; badly shaped
        flags are passed on unchanged for the planner to refuse with its own message."""
        num_levels = self.num_levels
        if self.current_plan is None or num_levels is None:
            return observation, noise_level
        batch = observation.shape[0]
        levels = np.asarray(noise_level)
        if levels.shape not in ((), (batch,)) or not np.issubdtype(levels.dtype, np.number):
            return observation, noise_level
        missing = np.broadcast_to(levels, (batch,)) == num_levels
        if not missing.any():
            return observation, noise_level
        # Frame i of a plan made at step s predicts o_{s+i+1}, so this step's observation is frame offset - 1
        # (the last frame if the plan has run out).
        offset = min(self.step - self.plan_step, self.current_plan.num_steps)
        predicted = self.current_plan.observations[:, max(offset - 1, 0)]
        observation = observation.copy()
        observation[missing] = predicted[missing, : observation.shape[1]]
        filled = np.broadcast_to(levels, (batch,)).astype(np.int64)
        filled[missing] = min(self.predicted_obs_level, num_levels - 1)
        self.predicted_substitutions += int(missing.sum())
        return observation, filled

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
        needs_plan = self._needs_plan()
        # Only then is this step's observation read (in "history" mode every observation enters the history).
        if needs_plan or self.execution == "pd" or self.context == "history":
            observation, noise_level = self._fill_missing(observation, noise_level)
        if self.context == "history":
            self._record(observation, noise_level)
        if needs_plan:
            history, plan_level = self._history() if self.context == "history" else (None, noise_level)
            extra: dict[str, Any] = {}
            if self.stall_backoff is not None:
                extra["guidance_weight"] = self._back_off(observation)
            self.current_plan = self.planner.plan(observation, self.goals, self.horizon_tokens(),
                                                  history=history, noise_level=plan_level, **extra)
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
        actions = np.clip(actions, -self.action_limit, self.action_limit).astype(np.float32)
        self._last_action = actions.astype(np.float64)
        return actions

    def _back_off(self, observation: np.ndarray) -> np.ndarray:
        """Per-env guidance weights for the next plan, from the progress towards the goal each ball made since the
        current plan was made against the progress that plan predicted (frame offset - 1 predicts this
        observation). Without goals there is no guidance to scale."""
        batch = observation.shape[0]
        if self.guidance_weight is None or self.guidance_weight.shape[0] != batch:
            self.guidance_weight = np.ones(batch)
        if (self.goals is not None and self.current_plan is not None and self._plan_start_xy is not None
                and self.step > self.plan_step):
            offset = min(self.step - self.plan_step, self.current_plan.num_steps)
            predicted = self.current_plan.observations[:, offset - 1, :2]
            before = np.linalg.norm(self._plan_start_xy - self.goals, axis=1)
            progress = before - np.linalg.norm(observation[:, :2] - self.goals, axis=1)
            planned = before - np.linalg.norm(predicted - self.goals, axis=1)
            self.guidance_weight, refused = self.stall_backoff.update(self.guidance_weight, progress, planned)
            self.stall_events += int(refused.sum())
        self._plan_start_xy = observation[:, :2].copy()
        return self.guidance_weight.copy()

    def _record(self, observation: np.ndarray, noise_level: int | np.ndarray) -> None:
        """History mode: this observation completes the previous step's frame [o_{t+1}, a_t]."""
        levels = np.broadcast_to(np.asarray(noise_level), (observation.shape[0],)).astype(np.int64)
        if self._start is None:
            self._start = (observation.copy(), levels.copy())
            return
        if self._last_action is None:
            raise RuntimeError("MPCPolicy history: an observation arrived after the first without an action")
        self._frames.append(np.concatenate([observation, self._last_action], axis=1))
        self._frame_levels.append(levels.copy())

    def _history(self) -> tuple[Any, np.ndarray]:
        """History(start, complete executed tokens, token levels) and the start observation's level."""
        from planners.base import History

        assert self._start is not None
        fs = self.frame_stack
        n_tokens = len(self._frames) // fs
        start, start_level = self._start
        first = 0 if self.history_tokens is None else max(0, n_tokens - self.history_tokens)
        if first > 0:  # a window: start from the observation that ends the last dropped token
            last = first * fs - 1
            start, start_level = self._frames[last][:, : start.shape[1]], self._frame_levels[last]
        batch = start.shape[0]
        if n_tokens == first:  # nothing executed yet: the plan starts from the (first) observation itself
            return None, start_level
        frames = np.stack(self._frames[first * fs: n_tokens * fs], axis=1)  # [B, n * fs, frame]
        levels = np.stack(self._frame_levels[first * fs: n_tokens * fs], axis=1)
        count = n_tokens - first
        tokens = frames_to_tokens(frames, fs)
        # A token is as noisy as its noisiest frame (the model has one level per token).
        token_levels = levels.reshape(batch, count, fs).max(axis=2)
        return History(start, tokens, token_levels), start_level
