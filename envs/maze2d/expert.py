"""D4RL's waypoint controller: value iteration over cells, PD tracking of jittered cell waypoints.

One `WaypointController` drives one ball (plain Python floats, so the data generator can call it a million
times quickly); `ExpertPolicy` batches one controller per environment behind the Policy protocol.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.maze2d.grid import MazeGrid
from envs.maze2d.maps import get_maze, parse_env_id

P_GAIN = 10.0
D_GAIN = -1.0
SOLVE_THRESHOLD = 0.1  # distance to a waypoint / the target that counts as reached
VELOCITY_THRESHOLD = 0.1  # ... only when also this slow (D4RL stops at every waypoint)
WAYPOINT_JITTER = 0.1  # waypoint = cell centre + U(-0.1, 0.1) per axis (D4RL: U(0, 0.2) towards one corner)


class WaypointController:
    """Waypoints along the value-iteration path to the target cell; the last waypoint is the target itself."""

    def __init__(
        self,
        grid: MazeGrid,
        rng: np.random.Generator,
        p_gain: float = P_GAIN,
        d_gain: float = D_GAIN,
        solve_threshold: float = SOLVE_THRESHOLD,
        velocity_threshold: float = VELOCITY_THRESHOLD,
        jitter: float = WAYPOINT_JITTER,
    ) -> None:
        self.grid = grid
        self.rng = rng
        self.p_gain, self.d_gain = p_gain, d_gain
        self.solve_threshold, self.velocity_threshold = solve_threshold, velocity_threshold
        self.jitter = jitter
        self.target: tuple[float, float] | None = None
        self.waypoints: list[tuple[float, float]] = []
        self.waypoint_index = 0

    def set_target(self, target: tuple[float, float], x: float, y: float) -> None:
        """Plan waypoints from the ball's current cell to the cell of `target`."""
        tx, ty = float(target[0]), float(target[1])
        target_cell = self.grid.nearest_free_cell(tx, ty)
        start_cell = self.grid.nearest_free_cell(x, y)
        cells = self.grid.path(start_cell, target_cell)
        waypoints = []
        for cell in cells[:-1]:
            cx, cy = self.grid.cell_to_xy(cell)
            jx, jy = self.rng.uniform(-self.jitter, self.jitter, size=2)
            waypoints.append((cx + float(jx), cy + float(jy)))
        waypoints.append((tx, ty))
        self.target, self.waypoints, self.waypoint_index = (tx, ty), waypoints, 0

    def act(self, x: float, y: float, vx: float, vy: float) -> tuple[float, float, bool]:
        """PD action towards the current waypoint, clipped to [-1, 1], and whether the target is solved."""
        if self.target is None:
            raise RuntimeError("WaypointController.act called before set_target")
        tx, ty = self.target
        speed = math.hypot(vx, vy)
        solved = math.hypot(x - tx, y - ty) < self.solve_threshold and speed < self.velocity_threshold
        wx, wy = (tx, ty) if solved else self.waypoints[self.waypoint_index]
        ax = self.p_gain * (wx - x) + self.d_gain * vx
        ay = self.p_gain * (wy - y) + self.d_gain * vy
        if (
            not solved
            and math.hypot(x - wx, y - wy) < self.solve_threshold
            and speed < self.velocity_threshold
            and self.waypoint_index < len(self.waypoints) - 1
        ):
            self.waypoint_index += 1
        return min(1.0, max(-1.0, ax)), min(1.0, max(-1.0, ay)), solved


class ExpertPolicy:
    """The waypoint controller as a batched Policy (`--policy expert`).

    Goals come through `reset(num_envs, goals=[N, 2])`; the plan is made on the first `act` of an episode,
    from the observed start position. `action_noise` > 0 adds N(0, action_noise^2) as the data generator does.
    With `reset(..., episode_seeds=[N])` (the evaluation runner passes them) every environment gets its own
    generator seeded from (seed, episode seed), so an episode does not depend on how episodes are batched.

    `replan="episode"` (default) plans afresh every episode. `replan="goal_change"` reproduces D4RL's reference
    script (`scripts/reference_scores/maze2d_controller.py`): one controller is reused across episodes and, like
    `WaypointController.get_action` there, re-plans only when the target changes. With a fixed goal it therefore
    plans once, and later episodes chase the final waypoint (the goal) with plain PD, often pinned on a wall;
    run with one environment at a time this reproduces D4RL's published ref_max_score (docs/maze2d.md).
    """

    def __init__(self, maze: str, seed: int = 0, action_noise: float = 0.0, replan: str = "episode") -> None:
        if replan not in ("episode", "goal_change"):
            raise ValueError(f"ExpertPolicy replan must be 'episode' or 'goal_change', got {replan!r}")
        self.replan = replan
        self.grid = MazeGrid(get_maze(maze))
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.env_rngs: list[np.random.Generator] = []
        self.action_noise = float(action_noise)
        self.controllers: list[WaypointController] = []
        self.goals: np.ndarray | None = None

    @classmethod
    def for_env(cls, env_id: str, seed: int = 0, action_noise: float = 0.0, replan: str = "episode") -> ExpertPolicy:
        spec, _ = parse_env_id(env_id)
        return cls(spec.name, seed=seed, action_noise=action_noise, replan=replan)

    def reset(
        self,
        num_envs: int | None = None,
        goals: np.ndarray | None = None,
        episode_seeds: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        if goals is None:
            raise ValueError("ExpertPolicy.reset needs goals=[num_envs, 2] (the goal of every environment)")
        goals = np.asarray(goals, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != 2 or (num_envs is not None and goals.shape[0] != num_envs):
            raise ValueError(f"ExpertPolicy.reset: goals must have shape [{num_envs}, 2], got {goals.shape}")
        self.goals = goals
        if episode_seeds is not None:
            if len(episode_seeds) != goals.shape[0]:
                raise ValueError(f"ExpertPolicy.reset: {len(episode_seeds)} episode_seeds for {goals.shape[0]} goals")
            self.env_rngs = [np.random.default_rng([self.seed, int(s)]) for s in episode_seeds]
        else:
            self.env_rngs = [self.rng] * goals.shape[0]
        keep = self.replan == "goal_change" and len(self.controllers) == goals.shape[0]
        self.controllers = [
            old
            if keep and old.target is not None and np.allclose(old.target, goal)
            else WaypointController(self.grid, rng)
            for old, goal, rng in zip(self.controllers if keep else [None] * len(goals), goals, self.env_rngs)
        ]

    def act(self, observation: Any, noise_level: int | np.ndarray = 0) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float64)
        if self.goals is None:
            raise RuntimeError("ExpertPolicy.act called before reset(num_envs, goals=...)")
        if obs.shape != (len(self.controllers), 4):
            raise ValueError(f"ExpertPolicy.act expects observations [{len(self.controllers)}, 4], got {obs.shape}")
        actions = np.empty((obs.shape[0], 2), dtype=np.float64)
        for i, (controller, (x, y, vx, vy)) in enumerate(zip(self.controllers, obs.tolist())):
            if controller.target is None:
                controller.set_target(tuple(self.goals[i]), x, y)
            ax, ay, _ = controller.act(x, y, vx, vy)
            actions[i] = ax, ay
        if self.action_noise > 0:
            noise = np.stack([rng.normal(0.0, self.action_noise, size=2) for rng in self.env_rngs])
            actions = np.clip(actions + noise, -1.0, 1.0)
        return actions.astype(np.float32)
