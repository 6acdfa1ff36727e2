"""Open-loop plan feasibility on a maze: do a planner's plans respect the walls, and do they reach the goal?

A closed-loop evaluation takes minutes per setting; one batch of plans from random starts takes seconds and
already separates a model that has learnt the maze (unguided plans stay out of the walls) from one that has
not, and guidance that keeps plans physical from guidance that drags them through walls. Plans are checked
frame by frame: a predicted position whose cell is a wall is a violation (the ball's centre never enters a
wall cell in the simulator or in the data), and a jump between consecutive frames longer than any the data
holds shows a plan that teleports.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from envs.maze2d.env import GOAL_RADIUS
from envs.maze2d.grid import MazeGrid
from envs.maze2d.maps import get_maze

GOAL_MODES = ("fixed", "random")


@dataclass(frozen=True)
class FeasibilityReport:
    maze: str
    horizon: int  # planned tokens
    starts: int
    goal: str  # "fixed" (the maze's D4RL goal cell) or "random" (a random free cell per start)
    wall_frame_fraction: float  # predicted frames whose position lies in a wall cell
    plans_through_wall: float  # plans with at least one such frame
    # Plans whose path enters a wall anywhere, checking 9 points between consecutive frames too (a plan can
    # jump across a wall between two free frames).
    paths_through_wall: float
    reach_fraction: float  # plans that come within the goal radius at some frame
    mean_final_distance: float  # to the goal, at the plan's last frame
    mean_min_distance: float  # to the goal, closest frame of each plan
    max_frame_step: float  # longest distance between consecutive predicted positions
    seconds: float  # wall time of the planner call

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def random_starts(maze: str, count: int, seed: int, goal: str = "fixed") -> tuple[np.ndarray, np.ndarray]:
    """Observations [count, 4] at rest in random free cells (jittered inside the cell) and goals [count, 2]."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if goal not in GOAL_MODES:
        raise ValueError(f"goal must be one of {GOAL_MODES}, got {goal!r}")
    spec = get_maze(maze)
    grid = MazeGrid(spec)
    rng = np.random.default_rng(seed)
    cells = [spec.free_cells[i] for i in rng.integers(len(spec.free_cells), size=count)]
    xy = np.array([grid.cell_to_xy(c) for c in cells]) + rng.uniform(-0.25, 0.25, size=(count, 2))
    observations = np.concatenate([xy, np.zeros((count, 2))], axis=1)
    if goal == "fixed":
        goals = np.tile(np.asarray(grid.cell_to_xy(spec.goal_cell)), (count, 1))
    else:
        goal_cells = [spec.free_cells[i] for i in rng.integers(len(spec.free_cells), size=count)]
        goals = np.array([grid.cell_to_xy(c) for c in goal_cells])
    return observations, goals


def plan_feasibility(planner: Any, maze: str, horizon: int, starts: int = 48, seed: int = 0,
                     goal: str = "fixed", guided: bool = True) -> FeasibilityReport:
    """Plan once from `starts` random starts (towards the goals when `guided`) and measure the plans."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 token, got {horizon}")
    observations, goals = random_starts(maze, starts, seed, goal)
    if hasattr(planner, "reseed"):
        planner.reseed(seed)
    started = time.perf_counter()
    plan = planner.plan(observations, goals if guided else None, horizon=horizon)
    seconds = time.perf_counter() - started
    xy = np.asarray(plan.observations)[..., :2]
    grid = MazeGrid(get_maze(maze))
    walls = grid.in_wall(xy)
    distance = np.linalg.norm(xy - goals[:, None, :], axis=-1)
    path = np.concatenate([observations[:, None, :2], xy], axis=1)
    steps = np.linalg.norm(np.diff(path, axis=1), axis=-1)
    fractions = np.linspace(0.0, 1.0, 11)[1:-1]
    between = path[:, :-1, None, :] + fractions[None, None, :, None] * np.diff(path, axis=1)[:, :, None, :]
    path_walls = grid.in_wall(between).reshape(len(path), -1).any(axis=1) | walls.any(axis=1)
    return FeasibilityReport(
        maze=maze, horizon=int(horizon), starts=int(starts), goal=goal,
        wall_frame_fraction=float(walls.mean()),
        plans_through_wall=float(walls.any(axis=1).mean()),
        paths_through_wall=float(path_walls.mean()),
        reach_fraction=float((distance.min(axis=1) <= GOAL_RADIUS).mean()),
        mean_final_distance=float(distance[:, -1].mean()),
        mean_min_distance=float(distance.min(axis=1).mean()),
        max_frame_step=float(steps.max()),
        seconds=round(seconds, 3),
    )
