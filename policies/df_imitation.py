"""The DF imitation policy with memory: a batched `Policy` over an `ImitationDFModel` checkpoint.

Every `actions_per_token` steps (a chunk boundary) the policy
  1. builds the token of what just happened: the chunk of actions it executed and the observation now
     (proprioception + camera images), and runs it through the latent at noise level 0 (trusted), or at
     level k > 0 when the frame is flagged corrupted (the env's `corrupted` flags, or `noise_level` from the
     caller: per env, or a dict per observation key as the ROS 2 bridge passes). A noisy-flagged token is
     fed as the model saw such tokens in training: forward-noised to level k (level K = missing: pure noise);
  2. samples the next token(s) from that latent with Algorithm 2 (autoregressive or pyramid scheduling);
  3. executes the first sampled token's action chunk open loop, one action per `act` call.

The latent is kept from the first observation of the episode on: that is the memory the fruit swap needs.
Baselines on the same code: `memory=False` (memoryless: the latent restarts at every chunk from the current
token alone, one frame of context) and `flag_corrupted=False` (corrupted frames fed as clean, level 0).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from df_agent.imitation.model import MODEL_TYPE, ImitationDFModel
from df_agent.imitation.windows import resize_frames
from df_agent.sampler import SamplerConfig, sample
from df_agent.scheduling import autoregressive, pyramid, steps_to_levels

log = logging.getLogger(__name__)

SCHEDULES = ("autoregressive", "pyramid")
# FrankaFruitSwap-v0 / ROS 2 bridge action layout: translation (3) and rotation (3) in [-1, 1], gripper [0, 1].
FRANKA_ACTION_LOW = (-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 0.0)
FRANKA_ACTION_HIGH = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
FRANKA_ACTION_UNITS = (0.07, 0.2)  # envs.franka_swap.env.FrankaFruitSwapEnv pos_scale (m), rot_scale (rad)


@dataclass
class DFImitationPolicyConfig:
    schedule: str = "autoregressive"  # scheduling matrix of the sampled tokens: "autoregressive" or "pyramid"
    horizon_tokens: int = 1  # tokens sampled at each chunk boundary (the first one's actions are executed)
    # Tokens `sample_chunk` (the robot's real-time path) samples at least: the second token's actions cover the
    # ticks while the next chunk is computed, so a policy on a robot needs >= 2 (docs/ros2.md).
    realtime_tokens: int = 2
    sampling_steps: int = 25  # the paper's robot setting
    uncertainty_scale: float = 1.0  # pyramid only
    eta: float = 0.0
    memory: bool = True  # False: the memoryless baseline (latent restarts every chunk)
    flag_corrupted: bool = True  # False: the "treat corrupted frames as clean" baseline
    corrupted_level: int | None = None  # level fed for a corrupted frame (default K / 2)
    action_low: tuple[float, ...] | None = FRANKA_ACTION_LOW  # clip sampled actions (None: no clipping)
    action_high: tuple[float, ...] | None = FRANKA_ACTION_HIGH
    seed: int = 0
    device: str = "cpu"
    # Metres and radians per unit of the translation / rotation actions: those of the env the demos were recorded
    # in (FrankaFruitSwap-v0's pos_scale and rot_scale). The ROS 2 bridge converts the actions with them.
    action_units: tuple[float, float] = FRANKA_ACTION_UNITS
    # Real-time timing (hardware.action_scheduler): a token's first action follows its observation at once, as
    # in the demos, so on a robot a chunk's action i is meant for the observation's tick + i; the first one, not
    # ready in time, is trimmed and the arm catches up onto the chunk's path. False: action i at tick + 1 + i.
    chunk_starts_at_observation: bool = True

    def __post_init__(self) -> None:
        if len(self.action_units) != 2 or not all(float(u) > 0 for u in self.action_units):
            raise ValueError(f"action_units must be two positive numbers (metres, radians), got {self.action_units}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.horizon_tokens < 1 or self.sampling_steps < 1 or self.realtime_tokens < 1:
            raise ValueError(f"horizon_tokens, realtime_tokens and sampling_steps must be >= 1, got "
                             f"{self.horizon_tokens}, {self.realtime_tokens}, {self.sampling_steps}")
        if (self.action_low is None) != (self.action_high is None):
            raise ValueError("give both action_low and action_high, or neither")


class DFImitationPolicy:
    """Batched: `reset(num_envs)`, then `act(observation, noise_level)` once per env step for all envs."""

    def __init__(self, model: ImitationDFModel, config: DFImitationPolicyConfig | None = None) -> None:
        self.config = config or DFImitationPolicyConfig()
        self.device = torch.device(self.config.device)
        self.model = model.to(self.device).eval()
        cfg = self.model.config
        self.num_levels = self.model.num_levels
        self.corrupted_level = (self.config.corrupted_level if self.config.corrupted_level is not None
                                else self.num_levels // 2)
        if not 0 <= self.corrupted_level <= self.num_levels:
            raise ValueError(f"corrupted_level must be in 0..{self.num_levels}, got {self.corrupted_level}")
        self.horizon = cfg.actions_per_token
        self.levels = self._levels_matrix(self.config.horizon_tokens)
        self.realtime_levels = self._levels_matrix(max(self.config.horizon_tokens, self.config.realtime_tokens))
        if self.config.action_low is not None:
            low, high = np.asarray(self.config.action_low), np.asarray(self.config.action_high)
            if low.shape != (cfg.action_dim,) or high.shape != (cfg.action_dim,):
                raise ValueError(f"action_low/high must have {cfg.action_dim} entries, got {low.shape}, {high.shape}")
            self._low, self._high = torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)
        self.generator = torch.Generator(device=self.device)
        self.num_envs: int | None = None
        self.reset()

    def _levels_matrix(self, tokens: int) -> Tensor:
        steps = self.config.sampling_steps
        if self.config.schedule == "pyramid":
            matrix = pyramid(tokens, steps, self.config.uncertainty_scale)
        else:
            matrix = autoregressive(tokens, steps)
        return steps_to_levels(matrix, steps, self.num_levels)

    # ------------------------------------------------------------------------------------------------------
    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        """Forget the episode: latent, executed chunk and queued actions. `seed=` re-seeds the sampler."""
        self.num_envs = num_envs
        self.generator.manual_seed(int(kwargs.get("seed", self.config.seed)))
        self.latent: Tensor | None = None  # after the last observed token (the memory)
        self.executed: Tensor | None = None  # [N, H, A] the chunk executed since the last boundary
        self.queue: Tensor | None = None  # [N, H, A] the chunk being executed
        self.step_in_chunk = 0
        self.replans = 0
        self.last_levels: np.ndarray | None = None  # levels the last observation token was fed at
        self.last_plan: dict[str, Tensor] | None = None  # the last sampled tokens (raw parts), for inspection

    def act(self, observation: Mapping[str, Any], noise_level: Any = 0) -> np.ndarray:
        num_envs = self._batch_size(observation)
        if self.num_envs is None:
            self.num_envs = num_envs
        elif num_envs != self.num_envs:
            raise ValueError(f"policy was reset for {self.num_envs} envs but got a batch of {num_envs} observations")
        if self.queue is None or self.step_in_chunk == self.horizon:
            self._replan(observation, noise_level)
        action = self.queue[:, self.step_in_chunk]
        self.step_in_chunk += 1
        return action.cpu().numpy().astype(np.float32)

    @property
    def chunk_starts_at_observation(self) -> bool:
        return bool(self.config.chunk_starts_at_observation)

    @property
    def replan_every(self) -> int:
        """Ticks between the observations of consecutive tokens (the real-time scheduler's cadence)."""
        return self.horizon

    def sample_chunk(self, observation: Mapping[str, Any], noise_level: Any = 0,
                     executed: Any = None) -> np.ndarray:
        """Real-time use (hardware.action_scheduler): `[N, T * H, A]`, the actions of every sampled token
        (T = max(horizon_tokens, realtime_tokens)), from the tick of `observation` on.

        `executed` (`[N, T, A]` or `[T, A]`, policy units) are the actions the robot executed since the previous
        call's observation; they form the action part of this observation's token, so the memory holds what
        happened rather than what was planned. The last H are used; fewer are padded in front with holds (no
        motion, same gripper). None: the previous chunk's first token, as `act` assumes.
        """
        num_envs = self._batch_size(observation)
        if self.num_envs is None:
            self.num_envs = num_envs
        if executed is not None and self.queue is not None:
            actions = np.asarray(executed, dtype=np.float32)
            actions = np.broadcast_to(actions, (num_envs, *actions.shape[-2:])) if actions.ndim == 2 else actions
            if actions.shape[1] >= self.horizon:
                actions = actions[:, -self.horizon:]
            else:  # pad in front with holds: no motion, the first action's gripper command
                hold = np.zeros_like(actions[:, :1])
                hold[..., -1] = actions[:, :1, -1]
                actions = np.concatenate([np.repeat(hold, self.horizon - actions.shape[1], axis=1), actions], axis=1)
            self.queue = torch.as_tensor(np.ascontiguousarray(actions), device=self.device)
        self._replan(observation, noise_level, self.realtime_levels)
        self.step_in_chunk = self.horizon  # a later act() starts a new chunk
        chunk = self.last_plan["actions"]  # [N, tokens, H, A]
        chunk = chunk.reshape(chunk.shape[0], -1, chunk.shape[-1])
        if self.config.action_low is not None:
            chunk = torch.maximum(torch.minimum(chunk, self._high.to(self.device)), self._low.to(self.device))
        return chunk.cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------------------------------------------
    def _batch_size(self, observation: Mapping[str, Any]) -> int:
        if not isinstance(observation, Mapping):
            raise TypeError(f"observation must be a dict of batched arrays, got {type(observation).__name__}")
        cameras = self.model.config.cameras
        missing = [c for c in cameras if c not in observation]
        if self.model.config.proprio_dim and "proprio" not in observation:
            missing.append("proprio")
        if missing:
            raise KeyError(f"observation lacks key(s) {missing} (has {sorted(observation)})")
        first = np.asarray(observation[cameras[0]])
        if first.ndim != 4 or first.shape[-1] != 3:
            raise ValueError(f"observation[{cameras[0]!r}] must be batched RGB frames [N, H, W, 3], "
                             f"got shape {first.shape}")
        return int(first.shape[0])

    def observation_levels(self, observation: Mapping[str, Any], noise_level: Any) -> np.ndarray:
        """The noise level of this observation's token per env: the largest of its cameras' levels."""
        n = self.num_envs
        if not self.config.flag_corrupted:
            return np.zeros(n, dtype=np.int64)
        cameras = self.model.config.cameras
        levels = np.zeros(n, dtype=np.int64)
        if isinstance(noise_level, Mapping):
            for camera in cameras:
                if camera in noise_level:
                    levels = np.maximum(levels, _per_env(noise_level[camera], n, f"noise_level[{camera!r}]"))
        else:
            levels = np.maximum(levels, _per_env(noise_level, n, "noise_level"))
        flags = observation.get("corrupted")
        if flags is not None:
            flags = np.asarray(flags).reshape(n, -1)
            levels = np.where(flags.any(axis=1), np.maximum(levels, self.corrupted_level), levels)
        if levels.min() < 0 or levels.max() > self.num_levels:
            raise ValueError(f"noise levels must be in 0..{self.num_levels}, got {levels.tolist()}")
        return levels

    @torch.no_grad()
    def _replan(self, observation: Mapping[str, Any], noise_level: Any, levels_matrix: Tensor | None = None) -> None:
        model, cfg, n = self.model, self.model.config, self.num_envs
        device = self.device
        images = torch.stack([resize_frames(np.asarray(observation[c]), cfg.image_size) for c in cfg.cameras], 1)
        proprio = None
        if cfg.proprio_dim:
            proprio = torch.as_tensor(np.asarray(observation["proprio"], dtype=np.float32)).reshape(n, 1, -1)
            proprio = proprio.to(device)
        first = self.executed is None and self.queue is None
        if self.queue is not None:
            self.executed = self.queue
        actions = (torch.zeros(n, 1, self.horizon, cfg.action_dim, device=device) if self.executed is None
                   else self.executed[:, None])
        no_actions = torch.full((n, 1), self.executed is None, device=device)
        token = model.build_tokens(actions, proprio, images[:, None].to(device), no_actions)

        levels_np = self.observation_levels(observation, noise_level)
        self.last_levels = levels_np
        levels = torch.as_tensor(levels_np, device=device)[:, None]
        noise = torch.randn(token.shape, generator=self.generator, device=device)
        # A flagged token is given as the model saw such tokens in training: forward-noised to its level
        # (level K replaces it by pure noise: missing); level 0 leaves it untouched.
        fed = model.schedule.q_sample(token, levels, noise)
        fed = torch.where((levels == self.num_levels)[..., None], noise, fed)
        if self.config.memory and not first and self.latent is not None:
            z_prev = self.latent
        else:
            z_prev = model.init_latent(batch_size=n).to(device)
        latents, _ = model.forward_sequence(z_prev, fed, levels)
        self.latent = latents[:, -1]

        levels_matrix = self.levels if levels_matrix is None else levels_matrix
        result = sample(model, levels_matrix, self.latent, config=SamplerConfig(eta=self.config.eta),
                        generator=self.generator)
        parts = model.split_tokens(result.tokens)
        chunk = parts["actions"][:, 0]
        if self.config.action_low is not None:
            chunk = torch.maximum(torch.minimum(chunk, self._high.to(device)), self._low.to(device))
        self.queue = chunk
        self.step_in_chunk = 0
        self.replans += 1
        self.last_plan = parts

    @property
    def action_units(self) -> tuple[float, float]:
        return tuple(float(u) for u in self.config.action_units)

    def describe(self) -> dict[str, Any]:
        return {**asdict(self.config), "corrupted_level": self.corrupted_level,
                "actions_per_token": self.horizon, "model_type": MODEL_TYPE}


def _per_env(value: Any, n: int, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.int64).reshape(-1)
    if array.size == 1:
        return np.full(n, int(array[0]), dtype=np.int64)
    if array.size != n:
        raise ValueError(f"{what} must be one level or one per env ({n}), got {array.size} values")
    return array


def load_df_imitation_policy(checkpoint: str | Path, checkpoint_config: Mapping[str, Any] | None = None,
                             **overrides: Any) -> DFImitationPolicy:
    """Build the policy from a `df_imitation` checkpoint directory (`policies.loading.load_policy` calls it).

    Policy settings come from `overrides`, else from `metadata.policy` in config.json, else the defaults.
    checkpoint_config: config.json when the caller has read it already.
    """
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config

    checkpoint_config = dict(checkpoint_config or read_checkpoint_config(checkpoint))
    model = load_checkpoint(checkpoint, config=checkpoint_config)
    if not isinstance(model, ImitationDFModel):
        raise ValueError(f"{checkpoint}: holds a {type(model).__name__}, not a {MODEL_TYPE} model")
    stored = checkpoint_config.get("metadata", {}).get("policy", {})
    known = DFImitationPolicyConfig.__dataclass_fields__
    settings = {key: value for key, value in {**stored, **overrides}.items() if key in known}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown DF imitation policy settings {unknown}")
    for key in ("action_low", "action_high", "action_units"):
        if settings.get(key) is not None:
            settings[key] = tuple(settings[key])
    return DFImitationPolicy(model, DFImitationPolicyConfig(**settings))

