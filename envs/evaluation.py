"""Evaluation runner for maze2d: seeded episodes in lockstep with a batched Policy, typed results as JSON.

`Maze2DRunner` is maze2d's `envs.runner.Runner` (rollout loop, then scoring; `PlanRecorder` and
`VideoRecorder` record plans and frames on the way); `evaluate(...)` runs it with the recorders and figures
its arguments ask for.

How a policy learns about its task: before every batch of episodes the runner calls
    policy.reset(num_envs=B, goals=[B, 2] float64, max_episode_steps=T, env_id=..., episode_seeds=[B])
and then, every step, `policy.act(observations [B, 4]) -> actions [B, 2]`. Goals are fixed within an episode
(also in the multi-goal envs), so a policy that counts its own `act` calls knows the steps remaining
(T - calls). Episode i always uses seed `seed + i` (passed as `episode_seeds` so stochastic policies can seed
per episode), so results do not depend on the batch size.

Robustness: `corruption=ObservationCorruption(obs_noise_std, drop_prob, flag)` corrupts what the POLICY sees
(never the env state, rewards or success): Gaussian noise on the reported x, y, and each env step's observation
dropped independently with probability drop_prob (the observation after reset is always delivered). The
corruption draws come from a generator per episode (seeded by the corruption seed and the episode seed), so
they do not depend on the batch size or the policy. With `flag=True` the runner tells the policy via
`act(obs, noise_level=levels)`: 0 clean, `policy.noise_level_for_std(std)` for noisy, `policy.num_levels` (K)
for dropped (the value sent for a dropped observation is the last one received; a DF policy ignores it). With
`flag=False` the policy gets the corrupted observations as if clean: a dropped observation is replaced by the
last one received (stale), and no noise levels are passed.

Figures: with `plan_figure=PATH` and a policy that keeps a `plan_log` (MPCPolicy), the plans of the first
`plan_figure_episodes` episodes are collected as they are made and drawn in red over the executed trajectories
(blue), as in the paper's Fig. 14/15.

Normalisation: `normalized_score_*` uses the references measured on the env id itself (expert ~100, random ~0
in all six envs). `normalized_score_*_single_goal_refs` uses the single-goal maze's references, as D4RL,
Diffuser and the paper normalised their Multi2D rows: compare with Table 1 through that field (on single-goal
ids both are the same number).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from df_agent.atomic_io import atomic_path, write_json_atomic
from envs.maze2d.maps import parse_env_id
from envs.maze2d.reference_scores import normalized_score, reference_scores_for_env, single_goal_reference_scores
from envs.runner import Recorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservationCorruption:
    """How the observations a policy sees are corrupted (see the module docstring)."""

    obs_noise_std: float = 0.0  # Gaussian noise std on the reported x, y (env units)
    drop_prob: float = 0.0  # probability that an env step's observation is dropped
    flag: bool = True  # tell the policy which observations are noisy / missing (noise levels)
    seed: int = 0  # corruption draws of episode with seed s come from default_rng([seed, s])

    def __post_init__(self) -> None:
        std, prob = float(self.obs_noise_std), float(self.drop_prob)
        if not math.isfinite(std) or std < 0:
            raise ValueError(f"obs_noise_std must be a finite number >= 0, got {self.obs_noise_std}")
        if not (0.0 <= prob < 1.0):
            raise ValueError(f"drop_prob must be in [0, 1) (1 would drop every observation), got {self.drop_prob}")
        if int(self.seed) < 0:
            raise ValueError(f"corruption seed must be >= 0, got {self.seed}")

    @property
    def active(self) -> bool:
        return self.obs_noise_std > 0 or self.drop_prob > 0


class _CorruptionState:
    """Per-batch corruption: one generator per episode and the last observation each policy slot received."""

    def __init__(self, corruption: ObservationCorruption, seeds: list[int], first_obs: np.ndarray) -> None:
        self.corruption = corruption
        self.rngs = [np.random.default_rng([int(corruption.seed), int(s)]) for s in seeds]
        self.last_seen = np.empty_like(first_obs)
        self.drops = 0
        self.deliveries = 0

    def observe(self, true_obs: np.ndarray, first: bool) -> tuple[np.ndarray, np.ndarray]:
        """(what the policy sees [B, 4], dropped mask [B]) for the true observations of one step."""
        seen = np.array(true_obs, dtype=np.float64, copy=True)
        dropped = np.zeros(len(seen), dtype=bool)
        for i, rng in enumerate(self.rngs):
            # Always draw both, so each episode's stream of draws is fixed whatever happens.
            drop_draw = rng.random()
            noise = rng.normal(0.0, 1.0, 2) * self.corruption.obs_noise_std
            seen[i, :2] += noise
            dropped[i] = (not first) and drop_draw < self.corruption.drop_prob
        seen[dropped] = self.last_seen[dropped]  # stale: the last observation that got through
        self.last_seen[~dropped] = seen[~dropped]
        self.drops += int(dropped.sum())
        self.deliveries += len(seen)
        return seen, dropped


def _corruption_levels(policy: Any, corruption: ObservationCorruption) -> tuple[int, int]:
    """(level for a noisy observation, K) from a policy that can be told; a clear error otherwise."""
    name = type(policy).__name__
    if not callable(getattr(policy, "noise_level_for_std", None)) or getattr(policy, "num_levels", None) is None:
        raise ValueError(f"{name} cannot be told which observations are noisy or missing (it has no "
                         "noise_level_for_std / num_levels); evaluate it with flag=False (--no-flag-corruption)")
    noisy_level = int(policy.noise_level_for_std(corruption.obs_noise_std)) if corruption.obs_noise_std > 0 else 0
    return noisy_level, int(policy.num_levels)


@dataclass
class EpisodeRecord:
    episode: int
    seed: int
    start: list[float]  # (x, y) after reset
    goal: list[float]
    episode_return: float
    normalized_score: float
    success: bool  # within the goal radius at least once
    first_reach: int | None  # env steps until the goal radius was first entered (1-based); None if never
    length: int


@dataclass
class EvaluationResult:
    env_id: str
    policy: str
    episodes: int
    seed: int
    normalized_score_mean: float  # against this env id's own references
    normalized_score_std: float
    # Against the single-goal maze's references (paper / D4RL protocol for Multi2D; Table 1 comparisons use these).
    normalized_score_mean_single_goal_refs: float
    normalized_score_std_single_goal_refs: float
    return_mean: float
    return_std: float
    success_rate: float
    # Mean steps to first reach the goal; an episode that never reaches it counts as the full episode length
    # (so the number stays defined and penalises failures). `first_reach_success_mean` averages successes only.
    mean_first_reach: float
    first_reach_success_mean: float | None
    ref_min_score: float
    ref_max_score: float
    single_goal_ref_min_score: float
    single_goal_ref_max_score: float
    reference_protocol: str  # which measured ref_max normalises the score: "d4rl" or "replanning"
    max_episode_steps: int
    episode_returns: list[float]
    records: list[EpisodeRecord] = field(default_factory=list)
    wall_time_s: float = 0.0
    trajectories: list[np.ndarray] = field(default_factory=list, repr=False)  # [T+1, 2] positions; not saved
    # Observation corruption (robustness runs); the defaults describe a clean run.
    obs_noise_std: float = 0.0
    drop_prob: float = 0.0
    flag_corruption: bool = False  # the policy was told the noise levels
    corruption_noise_level: int | None = None  # the level a noisy observation was flagged with (flagged runs)
    corruption_seed: int | None = None
    dropped_fraction: float = 0.0  # observations actually dropped / all observation steps
    # What ran, for result tables (filled by the CLI when it knows: preset, guidance, MCG samples, ...).
    label: str | None = None
    planner: dict[str, Any] | None = None
    produced_by: dict[str, Any] | None = None  # df_agent.provenance: version, git commit, command, time
    # Per collected episode, the plans made: (episode step, predicted xy [steps, 2]); not saved.
    plans: list[list[tuple[int, np.ndarray]]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        trajectories, plans = self.trajectories, self.plans
        self.trajectories, self.plans = [], []  # not part of the JSON; keep asdict from copying them
        try:
            payload = asdict(self)
        finally:
            self.trajectories, self.plans = trajectories, plans
        payload.pop("trajectories")
        payload.pop("plans")
        return payload

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write the result atomically (temp file + os.replace): a failed write leaves an old file intact.
        A result without `produced_by` gets this process's (its sys.argv as the command line)."""
        from df_agent.provenance import with_provenance

        return write_json_atomic(path, with_provenance(self.to_dict()))

    def table(self) -> str:
        rows = [
            ("env", self.env_id),
            ("policy", self.policy),
            *([("planner", self.label)] if self.planner is not None and self.label else []),
            ("episodes", f"{self.episodes} (seeds {self.seed}..{self.seed + self.episodes - 1})"),
            ("normalized score", f"{self.normalized_score_mean:.1f} ± {self.normalized_score_std:.1f}"),
            ("return", f"{self.return_mean:.1f} ± {self.return_std:.1f}"),
            ("success rate", f"{self.success_rate:.2f}"),
            ("mean first reach", f"{self.mean_first_reach:.1f} steps"),
        ]
        if self.obs_noise_std > 0 or self.drop_prob > 0:
            told = (f"flagged (noisy level {self.corruption_noise_level}, dropped level K)" if self.flag_corruption
                    else "not flagged (treated as clean, dropped = stale)")
            rows.append(("corruption", f"noise std {self.obs_noise_std:g}, drop prob {self.drop_prob:g} "
                         f"({self.dropped_fraction:.1%} dropped), {told}"))
        rows += [
            ("ref min / max", f"{self.ref_min_score:.2f} / {self.ref_max_score:.2f} ({self.reference_protocol})"),
        ]
        if self.env_id.endswith("-multi-v0"):
            rows += [
                ("score, single-goal refs", f"{self.normalized_score_mean_single_goal_refs:.1f} ± "
                 f"{self.normalized_score_std_single_goal_refs:.1f} (paper's Multi2D normalisation)"),
                ("single-goal ref min / max", f"{self.single_goal_ref_min_score:.2f} / "
                 f"{self.single_goal_ref_max_score:.2f}"),
            ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _check_actions(actions: Any, num_envs: int) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.float64)
    if actions.shape != (num_envs, 2):
        raise ValueError(f"policy.act returned actions of shape {actions.shape}, expected ({num_envs}, 2)")
    if not np.all(np.isfinite(actions)):
        raise ValueError("policy.act returned non-finite actions (NaN or inf)")
    return actions


class PlanRecorder(Recorder):
    """Keeps the plans of the first `episodes` episodes as they are made (bounded memory), for `plot_plans`:
    per episode a list of (episode step, planned x, y [steps, 2])."""

    def __init__(self, episodes: int = 4) -> None:
        if not 1 <= episodes <= 6:
            raise ValueError(f"plan_figure_episodes must be in 1..6 panels, got {episodes}")
        self.episodes = episodes
        self.plans: list[list[tuple[int, np.ndarray]]] = []
        self._slots: list[int] = []
        self._batch: list[list[tuple[int, np.ndarray]]] = []
        self._last: Any = None

    def check(self, policy: Any) -> None:
        if not hasattr(policy, "plan_log"):
            raise ValueError(f"{type(policy).__name__} keeps no plan_log, so there are no plans to draw "
                             "(plan figures need a planning policy such as MPCPolicy)")

    def start_batch(self, first_episode: int, envs: Any, observations: Any) -> None:
        self._slots = [i for i in range(len(envs)) if first_episode + i < self.episodes]
        self._batch = [[] for _ in self._slots]
        self._last = None

    def after_act(self, step: int, policy: Any) -> None:
        if self._slots and policy.plan_log and policy.plan_log[-1] is not self._last:
            self._last = policy.plan_log[-1]
            made_at, plan = self._last
            for slot, i in enumerate(self._slots):
                self._batch[slot].append((int(made_at), np.array(plan.observations[i, :, :2], copy=True)))

    def end_batch(self) -> None:
        self.plans.extend(self._batch)
        self._batch = []


class VideoRecorder(Recorder):
    """Renders the first episode (slot 0 of the first batch runs in an env with render_mode="rgb_array")."""

    def __init__(self, size: tuple[int, int] = (480, 480)) -> None:
        self.size = size
        self.frames: list[np.ndarray] = []
        self._env: Any = None

    def substitute_env(self, first_episode: int, env_id: str) -> Any | None:
        if first_episode != 0:
            return None
        import gymnasium as gym

        self._env = gym.make(env_id, render_mode="rgb_array", width=self.size[0], height=self.size[1])
        return self._env

    def start_batch(self, first_episode: int, envs: Any, observations: Any) -> None:
        self._recording = first_episode == 0
        if self._recording:
            self.frames.append(self._env.render())

    def after_step(self, step: int, envs: Any, observations: Any) -> None:
        if self._recording:
            self.frames.append(self._env.render())

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


@dataclass
class _Batch:
    """What one lockstep batch of maze2d episodes produced."""

    seeds: list[int]
    goals: np.ndarray  # [B, 2]
    positions: np.ndarray  # [B, T + 1, 2]
    returns: np.ndarray  # [B]
    first_reach: list[int | None]
    lengths: np.ndarray  # [B]
    drops: int = 0
    deliveries: int = 0


@dataclass
class Maze2DRunner:
    """The maze2d `Runner`: rollout loop over `num_envs` envs in lockstep, then D4RL-style scoring.

    corruption: what the policy sees (module docstring). recorders: see `envs.runner.Recorder`."""

    env_id: str
    num_envs: int = 32
    reference_protocol: str = "d4rl"
    corruption: ObservationCorruption | None = None
    recorders: Sequence[Recorder] = ()
    progress: bool = True

    def run(self, policy: Any, episodes: int, seed: int = 0) -> EvaluationResult:
        import gymnasium as gym

        import envs  # noqa: F401  (registers the maze2d ids)

        spec, _ = parse_env_id(self.env_id)
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {self.num_envs}")
        corruption = self.corruption if self.corruption is not None and self.corruption.active else None
        flagged = corruption is not None and corruption.flag
        levels = _corruption_levels(policy, corruption) if flagged else (0, 0)
        for recorder in self.recorders:
            recorder.check(policy)
        batch_size = min(self.num_envs, episodes)
        env_list = [gym.make(self.env_id) for _ in range(batch_size)]
        batches: list[_Batch] = []
        started = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=episodes * spec.episode_steps, desc=f"eval {self.env_id}", unit="step", leave=False)
        try:
            for first in range(0, episodes, batch_size):
                count = min(batch_size, episodes - first)
                active = env_list[:count]
                for recorder in self.recorders:
                    substitute = recorder.substitute_env(first, self.env_id)
                    if substitute is not None:
                        active = [substitute, *active[1:]]
                seeds = [seed + first + i for i in range(count)]
                batches.append(self._run_batch(policy, active, first, seeds, spec.episode_steps, corruption,
                                               flagged, levels, bar))
        finally:
            if bar is not None:
                bar.close()
            for env in env_list:
                env.close()
            for recorder in self.recorders:
                recorder.close()
        return self.score(batches, policy, episodes, seed, corruption, flagged, levels[0],
                          time.perf_counter() - started)

    def _run_batch(self, policy: Any, active: list[Any], first: int, seeds: list[int], max_steps: int,
                   corruption: ObservationCorruption | None, flagged: bool, levels: tuple[int, int],
                   bar: Any) -> _Batch:
        """One lockstep batch: reset with the episodes' seeds, announce it to the policy, step to truncation."""
        count = len(active)
        resets = [env.reset(seed=s) for env, s in zip(active, seeds)]
        obs = np.stack([o for o, _ in resets])
        goals = np.stack([info["goal"] for _, info in resets])
        policy.reset(num_envs=count, goals=goals.copy(), max_episode_steps=max_steps, env_id=self.env_id,
                     episode_seeds=seeds)
        batch = _Batch(seeds, goals, np.empty((count, max_steps + 1, 2)), np.zeros(count), [None] * count,
                       np.zeros(count, dtype=np.int64))
        batch.positions[:, 0] = obs[:, :2]
        state = None if corruption is None else _CorruptionState(corruption, seeds, obs)
        for recorder in self.recorders:
            recorder.start_batch(first, active, obs)
        truncated = False
        for t in range(max_steps):
            if state is None:
                actions = policy.act(obs.copy())
            else:
                seen, dropped = state.observe(obs, first=t == 0)
                if flagged:
                    noisy_level, missing_level = levels
                    actions = policy.act(seen, noise_level=np.where(dropped, missing_level, noisy_level)
                                         .astype(np.int64))
                else:
                    actions = policy.act(seen)
            actions = _check_actions(actions, count)
            for recorder in self.recorders:
                recorder.after_act(t, policy)
            for i, env in enumerate(active):
                o, reward, terminated, truncated, info = env.step(actions[i])
                obs[i] = o
                batch.returns[i] += reward
                batch.lengths[i] += 1
                if info["success"] and batch.first_reach[i] is None:
                    batch.first_reach[i] = t + 1
                if terminated:
                    raise RuntimeError(f"{self.env_id} terminated at step {t + 1}; maze2d episodes never terminate")
            batch.positions[:, t + 1] = obs[:, :2]
            for recorder in self.recorders:
                recorder.after_step(t, active, obs)
            if bar is not None:
                bar.update(count)
        if not truncated:
            raise RuntimeError(f"{self.env_id} was not truncated after {max_steps} steps")
        for recorder in self.recorders:
            recorder.end_batch()
        if state is not None:
            batch.drops, batch.deliveries = state.drops, state.deliveries
        return batch

    def score(self, batches: list[_Batch], policy: Any, episodes: int, seed: int,
              corruption: ObservationCorruption | None, flagged: bool, noisy_level: int,
              wall_time_s: float) -> EvaluationResult:
        """Normalised scores against the env id's references (and the single-goal maze's) for every episode."""
        spec, _ = parse_env_id(self.env_id)
        max_steps = spec.episode_steps
        ref_min, ref_max = reference_scores_for_env(self.env_id, self.reference_protocol)
        single_ref_min, single_ref_max = single_goal_reference_scores(self.env_id, self.reference_protocol)
        records: list[EpisodeRecord] = []
        trajectories: list[np.ndarray] = []
        for batch in batches:
            scores = normalized_score(batch.returns, ref_min, ref_max)
            for i, episode_seed in enumerate(batch.seeds):
                records.append(EpisodeRecord(
                    episode=len(records), seed=episode_seed, start=batch.positions[i, 0].tolist(),
                    goal=batch.goals[i].tolist(), episode_return=float(batch.returns[i]),
                    normalized_score=float(scores[i]), success=batch.first_reach[i] is not None,
                    first_reach=batch.first_reach[i], length=int(batch.lengths[i])))
                trajectories.append(batch.positions[i].copy())
        drops = sum(batch.drops for batch in batches)
        deliveries = sum(batch.deliveries for batch in batches)
        returns_all = np.array([r.episode_return for r in records])
        scores_all = np.array([r.normalized_score for r in records])
        scores_single_goal_refs = normalized_score(returns_all, single_ref_min, single_ref_max)
        reach = [r.first_reach for r in records if r.first_reach is not None]
        plans = next((r.plans for r in self.recorders if isinstance(r, PlanRecorder)), [])
        return EvaluationResult(
            env_id=self.env_id,
            policy=type(policy).__name__,
            episodes=episodes,
            seed=seed,
            normalized_score_mean=float(scores_all.mean()),
            normalized_score_std=float(scores_all.std()),
            normalized_score_mean_single_goal_refs=float(scores_single_goal_refs.mean()),
            normalized_score_std_single_goal_refs=float(scores_single_goal_refs.std()),
            return_mean=float(returns_all.mean()),
            return_std=float(returns_all.std()),
            success_rate=float(np.mean([r.success for r in records])),
            mean_first_reach=float(np.mean([r.first_reach or max_steps for r in records])),
            first_reach_success_mean=float(np.mean(reach)) if reach else None,
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            single_goal_ref_min_score=single_ref_min,
            single_goal_ref_max_score=single_ref_max,
            reference_protocol=self.reference_protocol,
            max_episode_steps=max_steps,
            episode_returns=returns_all.tolist(),
            records=records,
            wall_time_s=wall_time_s,
            trajectories=trajectories,
            obs_noise_std=float(corruption.obs_noise_std) if corruption else 0.0,
            drop_prob=float(corruption.drop_prob) if corruption else 0.0,
            flag_corruption=flagged,
            corruption_noise_level=noisy_level if flagged else None,
            corruption_seed=int(corruption.seed) if corruption else None,
            dropped_fraction=drops / deliveries if deliveries else 0.0,
            plans=plans,
        )


def evaluate(
    policy: Any,
    env_id: str,
    episodes: int,
    seed: int = 0,
    num_envs: int = 32,
    policy_name: str | None = None,
    trajectories_png: str | os.PathLike | None = None,
    video_path: str | os.PathLike | None = None,
    progress: bool = True,
    reference_protocol: str = "d4rl",
    video_size: tuple[int, int] = (480, 480),
    corruption: ObservationCorruption | None = None,
    plan_figure: str | os.PathLike | None = None,
    plan_figure_episodes: int = 4,
    label: str | None = None,
    planner_info: dict[str, Any] | None = None,
) -> EvaluationResult:
    """`Maze2DRunner` with the recorders and figures its arguments ask for: run `episodes` seeded episodes of
    `env_id`, `num_envs` at a time, then draw `trajectories_png`, `plan_figure` (the first `plan_figure_episodes`
    episodes' plans in red over their trajectories in blue; needs a policy with a `plan_log`) and write
    `video_path` (the first episode). label / planner_info: recorded in the result for tables."""
    parse_env_id(env_id)
    recorders: list[Recorder] = []
    plans = PlanRecorder(plan_figure_episodes) if plan_figure is not None else None
    video = VideoRecorder(video_size) if video_path is not None else None
    recorders += [r for r in (plans, video) if r is not None]
    runner = Maze2DRunner(env_id, num_envs=num_envs, reference_protocol=reference_protocol, corruption=corruption,
                          recorders=recorders, progress=progress)
    result = runner.run(policy, episodes, seed)
    result.policy = policy_name or result.policy
    result.label, result.planner = label, planner_info
    if trajectories_png is not None:
        plot_trajectories(result, trajectories_png)
    if plan_figure is not None:
        plot_plans(result, plan_figure)
    if video is not None:
        written = write_video(video.frames, video_path, fps=30)
        log.info("video of the first episode written to %s", written)
    return result


def plot_trajectories(result: EvaluationResult, path: str | os.PathLike, max_episodes: int = 20) -> Path:
    """Trajectories (start o, goal *) drawn over the maze walls, in env coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from envs.maze2d.grid import MazeGrid

    spec, _ = parse_env_id(result.env_id)
    grid = MazeGrid(spec)
    fig, ax = plt.subplots(figsize=(0.6 * grid.n_cols + 2, 0.6 * grid.n_rows + 1.5))
    _draw_walls(ax, spec, grid, Rectangle)
    colors = plt.cm.tab20(np.linspace(0, 1, max(1, min(max_episodes, len(result.trajectories)))))
    for color, record, traj in zip(colors, result.records, result.trajectories[:max_episodes]):
        ax.plot(traj[:, 0], traj[:, 1], color=color, lw=1.0, alpha=0.9)
        ax.plot(*traj[0], "o", color=color, ms=4)
        ax.plot(*record.goal, "*", color=color, ms=12, mec="k", mew=0.5)
    ax.set_xlim(-grid.n_cols / 2, grid.n_cols / 2)
    ax.set_ylim(-grid.n_rows / 2, grid.n_rows / 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (env units)")
    ax.set_ylabel("y (env units)")
    shown = min(max_episodes, len(result.trajectories))
    ax.legend(handles=_marker_legend(f"executed trajectory ({shown} of {len(result.records)} episodes, "
                                     "one colour each)", "0.2"),
              loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=3, frameon=False)
    ax.set_title(f"{result.label or result.policy} on {result.env_id}: score {result.normalized_score_mean:.1f}",
                 fontsize=9)
    return _save_figure(fig, path)


def _marker_legend(line_label: str, line_color: str, plan_color: str | None = None) -> list[Any]:
    """Legend handles: the line(s) drawn, the start marker (o) and the goal marker (*)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=line_color, lw=1.4, label=line_label)]
    if plan_color is not None:
        handles.append(Line2D([], [], color=plan_color, lw=0.8, label="plans (drawn from where each was made)"))
    handles += [Line2D([], [], ls="", marker="o", color="0.2", ms=5, label="start"),
                Line2D([], [], ls="", marker="*", color="gold", mec="k", ms=11, label="goal"),
                Line2D([], [], ls="", marker="s", color="0.35", ms=8, label="wall")]
    return handles


def _draw_walls(ax: Any, spec: Any, grid: Any, rectangle: Any) -> None:
    for row in range(grid.n_rows):
        for col in range(grid.n_cols):
            if spec.layout[row][col] == 1:
                cx, cy = grid.cell_to_xy((row, col))
                ax.add_patch(rectangle((cx - 0.5, cy - 0.5), 1.0, 1.0, color="0.35"))


def _save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """PNG written atomically (temp + os.replace); the figure is closed either way."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def plot_plans(result: EvaluationResult, path: str | os.PathLike, every: int = 1, max_panels: int = 6) -> Path:
    """The paper's Fig. 14/15: per episode (one panel each), the plans (red, every `every`-th replan, drawn from
    the position where each was made) and the executed trajectory (blue) over the maze walls; start o, goal *."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from envs.maze2d.grid import MazeGrid

    if every < 1:
        raise ValueError(f"every must be >= 1 replan, got {every}")
    if not result.plans:
        raise ValueError(f"no plans were collected for {result.policy} on {result.env_id}; plan figures need a "
                         "policy with a plan_log and evaluate(..., plan_figure=PATH)")
    spec, _ = parse_env_id(result.env_id)
    grid = MazeGrid(spec)
    panels = min(len(result.plans), max_panels, len(result.trajectories))
    columns = 2 if panels == 4 else min(panels, 3)
    rows = math.ceil(panels / columns)
    size = (0.5 * grid.n_cols + 0.6, 0.5 * grid.n_rows + 0.8)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= panels:
            ax.axis("off")
            continue
        record, trajectory, plans = result.records[index], result.trajectories[index], result.plans[index]
        _draw_walls(ax, spec, grid, Rectangle)
        for step, xy in plans[::every]:
            start = trajectory[min(step, len(trajectory) - 1)]
            path_xy = np.concatenate([start[None], xy], axis=0)
            ax.plot(path_xy[:, 0], path_xy[:, 1], color="red", lw=0.8, alpha=0.45)
        ax.plot(trajectory[:, 0], trajectory[:, 1], color="blue", lw=1.6)
        ax.plot(*trajectory[0], "o", color="black", ms=5)
        ax.plot(*record.goal, "*", color="gold", ms=14, mec="k", mew=0.6)
        ax.set_xlim(-grid.n_cols / 2, grid.n_cols / 2)
        ax.set_ylim(-grid.n_rows / 2, grid.n_rows / 2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        reached = "never reached" if record.first_reach is None else f"reached at {record.first_reach}"
        ax.set_title(f"episode {record.episode} (seed {record.seed}): {len(plans)} plans, {reached}", fontsize=7)
    fig.suptitle(f"{result.label or result.policy} on {result.env_id}: plans (red), executed (blue)", fontsize=9)
    fig.supxlabel("x (env units)", fontsize=8)
    fig.supylabel("y (env units)", fontsize=8)
    fig.legend(handles=_marker_legend("executed trajectory", "blue", plan_color="red"), loc="lower center",
               bbox_to_anchor=(0.5, -0.06), fontsize=7, ncol=5, frameon=False)
    return _save_figure(fig, path)


def write_video(frames: list[np.ndarray], path: str | os.PathLike, fps: int = 30, every: int = 2) -> Path:
    """H.264 MP4 (`df_agent.media`, browser-playable) of rendered RGB frames, keeping every `every`-th frame;
    returns the path written (a GIF beside `path`, with a warning, where no H.264 encoder is installed)."""
    from df_agent.media import write_video as write_h264

    if not frames:
        raise ValueError("write_video got no frames")
    return write_h264(frames, path, fps=fps, every=every)
