"""The Diffusion Forcing planner (section 3.4, appendix B.5/B.7) over a low-dimensional `DFModel`.

One call plans H tokens for a batch of environments:
1. the current observation starts the latent, `z0 = init_latent(obs, level)`: level 0 when trusted, k > 0
   when the caller flags it noisy (brought to the model's level-k input convention, see `noisy_context`),
   K when missing (then pure noise replaces it, so its value cannot leak in); optional executed history
   tokens are then run through the latent (`encode_context`);
2. Algorithm 2 runs a scheduling matrix over the H tokens: the pyramid (near tokens denoised first, the
   future kept uncertain), autoregressive, or full-sequence (all tokens at one level);
3. after every row, goal guidance pushes the plan up the flexible-horizon reward
   J = -sum_t ||p_t - g|| over every predicted frame (any step may be the one that reaches the goal), computed
   on the unnormalised positions of the model's clean estimate, optionally averaged over `mcg_samples`
   futures (Monte Carlo Guidance).
The plan's actions are the model's own diffused actions (the paper executes them directly).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from df_agent.precision import warn_if_slow_bf16
from df_agent.sampler import GUIDANCE_TARGETS, GUIDANCE_WEIGHTINGS, SamplerConfig, encode_context, sample
from df_agent.scheduling import autoregressive, full_sequence, pyramid, steps_to_levels
from planners.base import History, Plan
from planners.free_space import free_space_cost
from planners.goal_distance import GoalDistanceField, geodesic_goal_reward, smooth_core
from planners.maze2d_tokens import ACTION_NAMES, OBS_DIM, OBS_NAMES, frame_stack_of, tokens_to_frames

FRAME_NAMES = (*OBS_NAMES, *ACTION_NAMES)
SCHEDULES = ("pyramid", "autoregressive", "full_sequence")
NOISY_CONTEXT = ("scale", "renoise")
PRECISIONS = ("fp32", "bf16")
GOAL_REWARDS = ("sum", "softmin", "geodesic")
# Which components of each frame the guidance step moves (the rest follow from the model's own predictions).
GUIDED_COMPONENTS = {"all": ("x", "y", "vx", "vy", "ax", "ay"), "motion": ("vx", "vy", "ax", "ay"),
                     "actions": ("ax", "ay")}


def _default_sampler() -> SamplerConfig:
    # The `df` preset's sampler (planners/baselines.py has the measurements behind these values).
    return SamplerConfig(guidance_scale=0.2, mcg_samples=4)


@dataclass
class DFPlannerConfig:
    """Every setting of a `DFPlanner`; the defaults are the `df` preset (planners/baselines.py).

    `sampler` is the Algorithm-2 sampler's own `SamplerConfig` (guidance scale, MCG samples, DDIM eta, ...), so
    a new sampler setting is a planner setting without being copied here. `with_overrides` applies flat
    overrides (a name of either dataclass) with `dataclasses.replace`.
    """

    schedule: str = "pyramid"  # "pyramid", "autoregressive" or "full_sequence"
    # DDIM steps per token. B.6 uses 50 for non-video domains; on maze2d 20 steps with guidance 0.2 scored
    # higher at 40% of the compute (planners/baselines.py).
    sampling_steps: int = 20
    uncertainty_scale: float = 1.0  # pyramid: token t starts t * u rows after token 0
    default_horizon: int = 30  # tokens planned when the caller gives no horizon
    seed: int | None = 0  # seeds the planner's own generator (None: torch's global generator)
    # How an observation flagged noisy (0 < k < K) enters the model, whose level-k inputs are
    # sqrt(a_k) x + sqrt(1 - a_k) eps: "scale" = it already carries that noise, only scale it by sqrt(a_k);
    # "renoise" = add fresh noise up to level k (for an observation that is distrusted but not itself noisy).
    noisy_context: str = "scale"
    # "bf16" runs the sampler under CPU/CUDA autocast: about 1.5x faster on CPUs with AVX512-BF16 (emulated and
    # several times slower on CPUs without it, see df_agent.precision), at the
    # cost of bf16 rounding in the MLPs (guidance gradients and DDIM updates are still accumulated in fp32).
    precision: str = "fp32"
    # Goal guidance (guidance_scale, 0 = off; the reward sums distances in env units over every frame, so the
    # scale is small), Monte Carlo Guidance (mcg_samples, 1 = plain guidance), DDIM eta, the stay policy, ...
    sampler: SamplerConfig = field(default_factory=_default_sampler)
    # The guidance reward: "sum" = B.5's -sum over frames of ||p_t - g|| (pulls every frame towards the goal,
    # the straight line through any wall); "softmin" = -softmin_t ||p_t - g|| at `goal_temperature` (env units),
    # which pulls only the frames nearest the goal and lets the model's dynamics carry the rest of the plan;
    # "geodesic" = -sum_t D_g(p_t), D_g the shortest way to the goal through the space the dataset visited
    # (planners/goal_distance.py: the checkpoint's free-space head above `geodesic_free_logit`; a point outside
    # it costs `geodesic_outside_slope` per unit back into it), so the pull follows the corridors.
    goal_reward: str = "sum"
    goal_temperature: float = 0.5
    # Smooth core of the "sum" / "geodesic" distance: inside this radius (env units) d becomes d^2 / (2 r), so
    # the pull fades at the goal instead of pushing every frame at full strength through it (0 = off, B.5).
    goal_core_radius: float = 0.0
    geodesic_free_logit: float = -2.0
    geodesic_outside_slope: float = 2.0
    # What the guidance step moves: "all" components of every frame (B.5), or only "motion" (velocities and
    # actions) or "actions": positions are then never pushed directly, only through the model's predictions
    # of where the guided motion leads (its learned dynamics, which know the walls).
    guided_components: str = "all"
    # Free-space guidance (planners/free_space.py): the reward also subtracts free_space_weight times the
    # learnt free-space cost of the plan's positions and of `free_space_interpolation` points between
    # consecutive frames, softplus(free_space_margin - logit). 0 = off; > 0 needs the checkpoint's head.
    free_space_weight: float = 0.0
    free_space_margin: float = 2.0
    free_space_interpolation: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.sampler, Mapping):  # from JSON
            self.sampler = SamplerConfig(**self.sampler)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.sampling_steps < 1:
            raise ValueError(f"sampling_steps must be >= 1, got {self.sampling_steps}")
        if self.uncertainty_scale < 0 or not math.isfinite(self.uncertainty_scale):
            raise ValueError(f"uncertainty_scale must be a finite number >= 0, got {self.uncertainty_scale}")
        if self.default_horizon < 1:
            raise ValueError(f"default_horizon must be >= 1 token, got {self.default_horizon}")
        if self.noisy_context not in NOISY_CONTEXT:
            raise ValueError(f"noisy_context must be one of {NOISY_CONTEXT}, got {self.noisy_context!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.goal_reward not in GOAL_REWARDS:
            raise ValueError(f"goal_reward must be one of {GOAL_REWARDS}, got {self.goal_reward!r}")
        if self.guided_components not in GUIDED_COMPONENTS:
            raise ValueError(f"guided_components must be one of {tuple(GUIDED_COMPONENTS)}, "
                             f"got {self.guided_components!r}")
        if not (self.goal_temperature > 0 and math.isfinite(self.goal_temperature)):
            raise ValueError(f"goal_temperature must be a finite number > 0, got {self.goal_temperature}")
        if not (self.goal_core_radius >= 0 and math.isfinite(self.goal_core_radius)):
            raise ValueError(f"goal_core_radius must be a finite number >= 0, got {self.goal_core_radius}")
        if not math.isfinite(self.geodesic_free_logit):
            raise ValueError(f"geodesic_free_logit must be finite, got {self.geodesic_free_logit}")
        if not (self.geodesic_outside_slope >= 1 and math.isfinite(self.geodesic_outside_slope)):
            raise ValueError(f"geodesic_outside_slope must be a finite number >= 1, got {self.geodesic_outside_slope}")
        if not (self.free_space_weight >= 0 and math.isfinite(self.free_space_weight)):
            raise ValueError(f"free_space_weight must be a finite number >= 0, got {self.free_space_weight}")
        if not math.isfinite(self.free_space_margin):
            raise ValueError(f"free_space_margin must be finite, got {self.free_space_margin}")
        if self.free_space_interpolation < 0:
            raise ValueError(f"free_space_interpolation must be >= 0, got {self.free_space_interpolation}")
        if not math.isfinite(self.sampler.guidance_scale):
            raise ValueError(f"guidance_scale must be finite, got {self.sampler.guidance_scale}")

    def sampler_config(self) -> SamplerConfig:
        """The SamplerConfig each plan samples with."""
        return self.sampler

    def with_overrides(self, **overrides: Any) -> DFPlannerConfig:
        """A copy with `overrides` applied: each name is a DFPlannerConfig field or a SamplerConfig field
        (guidance_scale, mcg_samples, ...); None values mean "not given" and are skipped."""
        given = {name: value for name, value in overrides.items() if value is not None}
        unknown = sorted(set(given) - PLANNER_FIELDS - SAMPLER_FIELDS)
        if unknown:
            raise ValueError(f"unknown planner override(s) {unknown}; settings are DFPlannerConfig fields "
                             f"{sorted(PLANNER_FIELDS)} and SamplerConfig fields {sorted(SAMPLER_FIELDS)}")
        sampler = {name: value for name, value in given.items() if name in SAMPLER_FIELDS}
        own = {name: value for name, value in given.items() if name in PLANNER_FIELDS}
        return dataclasses.replace(self, **own, sampler=dataclasses.replace(self.sampler, **sampler))


PLANNER_FIELDS = frozenset(f.name for f in dataclasses.fields(DFPlannerConfig)) - {"sampler"}
SAMPLER_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplerConfig))
assert not PLANNER_FIELDS & SAMPLER_FIELDS, "a flat override name must say which config it sets"

# Help of every planner setting, for the flags generated from the two dataclasses (df_agent/dataclass_args.py).
SETTING_HELP = {
    "schedule": "scheduling matrix over the planned tokens",
    "sampling_steps": "DDIM steps per token",
    "uncertainty_scale": "pyramid: token t starts t * U rows after token 0",
    "default_horizon": "tokens planned when the caller gives no horizon",
    "noisy_context": "how an observation flagged noisy enters the model: scale (it carries the noise) or renoise",
    "precision": "sampling precision (bf16 autocast: faster only with native bf16, AVX512-BF16/AMX CPUs or GPUs)",
    "eta": "DDIM eta (0 = deterministic given the initial noise)",
    "stay_policy": "a token whose level does not change in a row: copy it or re-sample it",
    "guidance_scale": "goal guidance scale (0 = unguided)",
    "guidance_weighting": "per-token guidance step factor: sigma, variance or constant",
    "mcg_samples": "Monte Carlo Guidance samples (1 = plain guidance)",
    "guidance_grad_clip": "clip of the per-token guidance gradient norm",
    "guidance_target": "what the guidance gradient is taken with respect to: input (the noisy tokens, through the "
                       "model, B.5) or estimate (the clean estimate itself; no backward pass through the model)",
    "repair_level": "prior repair: re-noise the finished plan to this level and denoise it again (0 = off)",
    "repair_steps": "prior repair: unguided DDIM rows per repair round",
    "repair_rounds": "prior repair: rounds",
    "selection_samples": "best-of-N: plans sampled per environment, the best by the guidance reward is kept",
    "goal_reward": "guidance reward: sum (B.5, every frame's distance to the goal), softmin (nearest frames only) or "
                   "geodesic (distance through the space the data visited; needs the checkpoint's free-space head)",
    "geodesic_free_logit": "geodesic goal reward: free-space logit above which a grid node counts as free",
    "geodesic_outside_slope": "geodesic goal reward: cost per unit of a point's way back into free space (>= 1)",
    "goal_temperature": "softmin goal reward: temperature in env units",
    "goal_core_radius": "sum / geodesic goal reward: radius of the smooth (quadratic) core at the goal (0 = off)",
    "guided_components": "what the guidance step moves: all frame components, motion (velocities, actions) or actions",
    "free_space_weight": "weight of the learnt free-space cost in the guidance reward (0 = off; needs the "
                         "checkpoint's free-space head)",
    "free_space_margin": "free-space cost: softplus(margin - logit) per point",
    "free_space_interpolation": "free-space cost: points checked between consecutive frames",
}
SETTING_CHOICES = {"schedule": SCHEDULES, "noisy_context": NOISY_CONTEXT, "precision": PRECISIONS,
                   "stay_policy": ("copy", "resample"), "guidance_weighting": GUIDANCE_WEIGHTINGS,
                   "guidance_target": GUIDANCE_TARGETS,
                   "goal_reward": GOAL_REWARDS, "guided_components": tuple(GUIDED_COMPONENTS)}


def scheduling_matrix(schedule: str, num_tokens: int, num_steps: int, uncertainty_scale: float = 1.0) -> Tensor:
    """The sampling-step matrix [rows, num_tokens] (entries 0..num_steps) of a named schedule."""
    if schedule == "pyramid":
        return pyramid(num_tokens, num_steps, uncertainty_scale)
    if schedule == "autoregressive":
        return autoregressive(num_tokens, num_steps)
    if schedule == "full_sequence":
        return full_sequence(num_tokens, num_steps)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def goal_reward(frames_xy: Tensor, goal: Tensor, core_radius: float = 0.0) -> Tensor:
    """The flexible-horizon goal reward of B.5: -sum over frames of ||p_t - g||. frames_xy [B, F, 2], goal [B, 2];
    core_radius > 0 smooths the distance at the goal (`smooth_core`)."""
    return -smooth_core((frames_xy - goal[:, None, :]).norm(dim=-1), core_radius).sum(dim=1)


def softmin_goal_reward(frames_xy: Tensor, goal: Tensor, temperature: float) -> Tensor:
    """-softmin over frames of ||p_t - g||: T * logsumexp(-d_t / T), which tends to -min_t d_t as T -> 0."""
    distance = (frames_xy - goal[:, None, :]).norm(dim=-1)
    return temperature * torch.logsumexp(-distance / temperature, dim=1)


class DFPlanner:
    """Batched DF planning over a trained `DFModel` whose tokens are frame-stacked maze2d frames."""

    def __init__(self, model: Any, config: DFPlannerConfig | None = None, free_space: Any | None = None) -> None:
        """free_space: the checkpoint's `FreeSpaceModel` (planners/free_space.py), needed when
        config.free_space_weight > 0."""
        self.model = model
        self.config = config or DFPlannerConfig()
        needs_head = {"free_space_weight > 0": self.config.free_space_weight > 0,
                      "goal_reward 'geodesic'": self.config.goal_reward == "geodesic"}
        for setting, on in needs_head.items():
            if on and free_space is None:
                raise ValueError(f"{setting} needs a free-space head, and this model has none (fit one with "
                                 "scripts/maze2d_free_space.py; it is saved beside the checkpoint as "
                                 "free_space.safetensors + free_space.json)")
        self.free_space = free_space
        self.goal_distance: GoalDistanceField | None = None
        if self.config.goal_reward == "geodesic":
            self.goal_distance = GoalDistanceField(free_space, self.config.geodesic_free_logit,
                                                   self.config.geodesic_outside_slope)
        self.frame_stack = frame_stack_of(model)
        if int(model.config.context_dim) != OBS_DIM:
            raise ValueError(f"DFPlanner needs a model whose context is the {OBS_DIM}-d observation, "
                             f"got context_dim {model.config.context_dim}")
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        warn_if_slow_bf16(self.config.precision, self.device, "planning")
        self.generator: torch.Generator | None = None
        if self.config.seed is not None:
            self.generator = torch.Generator(device=self.device).manual_seed(self.config.seed)

    @property
    def num_levels(self) -> int:
        return int(self.model.num_levels)

    def reseed(self, seed: int) -> None:
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    # -- the pieces ----------------------------------------------------------------------------------------
    def context_levels(self, noise_level: int | np.ndarray, batch: int) -> Tensor:
        levels = torch.as_tensor(np.asarray(noise_level), device=self.device)
        if levels.dtype.is_floating_point:
            if not bool((levels == levels.round()).all()):
                raise ValueError(f"noise_level must hold integer levels 0..{self.num_levels}, got {noise_level}")
            levels = levels.round()
        levels = levels.long()
        if levels.dim() == 0:
            levels = levels.expand(batch)
        if tuple(levels.shape) != (batch,):
            raise ValueError(f"noise_level must be an int or an array of shape ({batch},), got {tuple(levels.shape)}")
        if int(levels.min()) < 0 or int(levels.max()) > self.num_levels:
            raise ValueError(f"noise_level entries must be in 0..{self.num_levels} (K = missing), got "
                             f"{levels.tolist()}")
        return levels.clone()

    def initial_latent(self, observation: Tensor, levels: Tensor) -> Tensor:
        """z0 from observations [B, 4] trusted to `levels` [B] (0 clean, 0 < k < K noisy, K missing)."""
        model = self.model
        context = model.context_normalizer.normalize(observation)
        noise = torch.randn(context.shape, generator=self.generator, device=self.device, dtype=self.dtype)
        if self.config.noisy_context == "scale":
            noisy = model.schedule.alpha_bar(levels, like=context).sqrt() * context
        else:
            noisy = model.schedule.q_sample(context, levels, noise)
        noisy = noisy.to(self.dtype)
        context = torch.where((levels > 0)[:, None], noisy, context)
        # A missing observation is pure noise whatever its value (q_sample at K would still keep a trace of it).
        context = torch.where((levels == self.num_levels)[:, None], noise, context)
        return model.init_latent(context, levels)

    def _start_latent(self, observation: Tensor, levels: Tensor, history: History | None) -> Tensor:
        """z0 from the observation, or with history from history.start_observation (trusted to `levels`, the
        caller's noise_level) followed by the executed tokens at history.levels."""
        if history is None:
            return self.initial_latent(observation, levels)
        batch = observation.shape[0]
        start = self._tensor(history.start_observation, "history.start_observation", (batch, OBS_DIM))
        token_dim = int(self.model.config.token_dim)
        tokens = self._tensor(history.tokens, "history.tokens", (batch, None, token_dim))
        z0 = self.initial_latent(start, levels)
        if tokens.shape[1] == 0:
            return z0
        history_levels = torch.zeros(tokens.shape[:2], dtype=torch.long, device=self.device)
        if history.levels is not None:
            history_levels = torch.as_tensor(np.asarray(history.levels), device=self.device).long()
            if tuple(history_levels.shape) != tuple(tokens.shape[:2]):
                raise ValueError(f"history.levels must have shape {tuple(tokens.shape[:2])}, "
                                 f"got {tuple(history_levels.shape)}")
            if int(history_levels.min()) < 0 or int(history_levels.max()) > self.num_levels:
                raise ValueError(f"history.levels entries must be in 0..{self.num_levels}")
        normalised = self.model.token_normalizer.normalize(tokens)
        normalised = self._as_level_input(normalised, history_levels)
        return encode_context(self.model, z0, normalised, history_levels, self.generator)

    def _as_level_input(self, values: Tensor, levels: Tensor) -> Tensor:
        """Bring values observed with noise to the model's level-k input convention (see `noisy_context`);
        level-0 values pass unchanged and level-K ones are replaced by noise downstream."""
        noisy = (levels > 0) & (levels < self.num_levels)
        if not bool(noisy.any()):
            return values
        trailing = (1,) * (values.dim() - levels.dim())
        if self.config.noisy_context == "scale":
            moved = self.model.schedule.alpha_bar(levels, like=values).sqrt() * values
        else:
            noise = torch.randn(values.shape, generator=self.generator, device=self.device, dtype=values.dtype)
            moved = self.model.schedule.q_sample(values, levels, noise)
        return torch.where(noisy.reshape(levels.shape + trailing), moved.to(values.dtype), values)

    def levels_matrix(self, horizon: int) -> Tensor:
        config = self.config
        steps = scheduling_matrix(config.schedule, horizon, config.sampling_steps, config.uncertainty_scale)
        return steps_to_levels(steps, config.sampling_steps, self.num_levels)

    def _tensor(self, value: Any, name: str, shape: tuple[int | None, ...]) -> Tensor:
        array = torch.as_tensor(np.asarray(value), device=self.device).to(self.dtype)
        if array.dim() != len(shape) or any(w is not None and g != w for g, w in zip(array.shape, shape)):
            want = tuple("*" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want}, got {tuple(array.shape)}")
        if not bool(torch.isfinite(array).all()):
            raise ValueError(f"{name} contains NaN or inf")
        return array

    def _frames(self, tokens_normalised: Tensor) -> Tensor:
        """Normalised tokens [B, H, D] -> unnormalised frames [B, H * fs, 6] (differentiable)."""
        raw = self.model.token_normalizer.unnormalize(tokens_normalised)
        return tokens_to_frames(raw)

    def goal_reward(self, frames_xy: Tensor, goal: Tensor, fields: Tensor | None = None) -> Tensor:
        """The configured guidance reward of plans' positions [B, F, 2] towards goals [B, 2], less the weighted
        free-space cost when that is on. fields: the goals' geodesic distance fields, when already computed."""
        if self.config.goal_reward == "geodesic":
            value = geodesic_goal_reward(self.goal_distance, frames_xy, goal, fields, self.config.goal_core_radius)
        elif self.config.goal_reward == "softmin":
            value = softmin_goal_reward(frames_xy, goal, self.config.goal_temperature)
        else:
            value = goal_reward(frames_xy, goal, self.config.goal_core_radius)
        if self.config.free_space_weight > 0:
            cost = free_space_cost(self.free_space, frames_xy, self.config.free_space_margin,
                                   self.config.free_space_interpolation)
            value = value - self.config.free_space_weight * cost.to(value.dtype)
        return value

    def guidance_fn(self, goal: Tensor, weight: Tensor | None = None):
        """The sampler's guidance: the goal reward of the plans' clean estimates, times a per-plan weight [B]
        (None = 1) that scales that plan's guidance step."""
        batch = goal.shape[0]
        fields = None
        if self.goal_distance is not None:  # one field per goal, computed once per plan, not once per row
            fields = self.goal_distance.fields(goal.detach().cpu().double().numpy()).to(self.device)

        def reward(x0_hat: Tensor) -> Tensor:
            copies = x0_hat.shape[0] // batch  # Monte Carlo Guidance stacks the futures along the batch
            frames = self._frames(x0_hat)
            value = self.goal_reward(frames[..., :2], goal.repeat(copies, 1).to(frames.dtype),
                                     None if fields is None else fields.repeat(copies, 1, 1))
            return value if weight is None else value * weight.repeat(copies).to(value.dtype)

        return reward

    def guidance_mask(self) -> Tensor | None:
        """The sampler's per-component guidance weights [token_dim] (None: every component is guided)."""
        if self.config.guided_components == "all":
            return None
        guided = set(GUIDED_COMPONENTS[self.config.guided_components])
        frame = torch.tensor([float(name in guided) for name in FRAME_NAMES], device=self.device, dtype=self.dtype)
        return frame.repeat(self.frame_stack)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- the planner interface -----------------------------------------------------------------------------
    def plan(
        self,
        observation: np.ndarray,
        goal: np.ndarray | None = None,
        horizon: int | None = None,
        history: History | None = None,
        noise_level: int | np.ndarray = 0,
        guidance_weight: np.ndarray | None = None,
    ) -> Plan:
        """guidance_weight: optional per-env factor [B] >= 0 on the guidance scale (MPCPolicy's stall back-off)."""
        started = time.perf_counter()
        raw = np.array(observation, dtype=np.float64, copy=True)
        if raw.ndim != 2 or raw.shape[1] != OBS_DIM:
            raise ValueError(f"observation must have shape (num_envs, {OBS_DIM}), got {raw.shape}")
        levels = self.context_levels(noise_level, raw.shape[0])
        # A missing observation may arrive as NaN; its value is never used, so do not reject it.
        raw[levels.cpu().numpy() == self.num_levels] = 0.0
        obs = self._tensor(raw, "observation", (None, OBS_DIM))
        batch = obs.shape[0]
        horizon = self.config.default_horizon if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1 token, got {horizon}")
        goal_tensor = None if goal is None else self._tensor(goal, "goal", (batch, 2))
        matrix = self.levels_matrix(horizon)
        weight = None
        if guidance_weight is not None:
            weight = self._tensor(guidance_weight, "guidance_weight", (batch,))
            if bool((weight < 0).any()):
                raise ValueError(f"guidance_weight must be >= 0 per env, got {guidance_weight}")
        guidance = None
        if goal_tensor is not None and self.config.sampler_config().guidance_scale != 0.0:
            guidance = self.guidance_fn(goal_tensor, weight)
        with self._autocast(), torch.no_grad():
            z_start = self._start_latent(obs, levels, history)
        with self._autocast():
            result = sample(self.model, matrix, z_start.detach().to(self.dtype), config=self.config.sampler_config(),
                            guidance=guidance, generator=self.generator, guidance_mask=self.guidance_mask())
        with torch.no_grad():
            frames = self._frames(result.tokens.detach())
            diagnostics: dict[str, Any] = {
                "horizon_tokens": horizon,
                "rows": result.rows,
                "unit_evaluations": result.unit_evaluations,
                "context_levels": levels.cpu().numpy(),
                "guided": guidance is not None,
                "planner": asdict(self.config),
            }
            if goal_tensor is not None:
                diagnostics["goal_reward"] = self.goal_reward(frames[..., :2], goal_tensor).cpu().numpy()
        frames_np = frames.cpu().double().numpy()
        diagnostics["plan_time_s"] = time.perf_counter() - started
        return Plan(
            actions=frames_np[..., OBS_DIM:].copy(),
            observations=frames_np[..., :OBS_DIM].copy(),
            diagnostics=diagnostics,
        )
