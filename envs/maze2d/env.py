"""D4RL maze2d semantics on Gymnasium-Robotics PointMaze (MuJoCo).

The physics is Gymnasium-Robotics' own: its `Maze.make_maze` writes the maze walls into its `point.xml`
(a 2-DoF slide-joint ball, gear 100, damping 1, Euler integrator, dt 0.01 s, frame_skip 1) and its
`PointEnv.step` clips the action to [-1, 1] and the velocity to [-5, 5] before one `mj_step`, exactly as
D4RL's mujoco-py `MazeEnv.step`. What this class adds are D4RL's task rules (see docs/maze2d.md):
sparse reward 1 within 0.5 of the goal, no termination, the fixed D4RL goal cell (or a random goal for
the "multi" ids), start anywhere in a free cell with D4RL's reset noise.
"""

from __future__ import annotations

import os
from os import path
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.maze2d.grid import MazeGrid
from envs.maze2d.maps import MazeSpec, get_maze

GOAL_RADIUS = 0.5  # D4RL maze2d sparse reward radius
RESET_POSITION_NOISE = 0.1  # D4RL: qpos = cell + U(-0.1, 0.1)
RESET_VELOCITY_STD = 0.1  # D4RL: qvel = N(0, 0.1^2)
GOAL_POSITION_NOISE = 0.1  # D4RL set_target(): random cell + U(-0.1, 0.1) (multi-goal only)


def _point_xml_path() -> str:
    import gymnasium_robotics.envs.maze as maze_pkg

    return path.join(path.dirname(maze_pkg.__file__), "..", "assets", "point", "point.xml")


class Maze2DEnv(gym.Env):
    """Point mass in a maze. Observation (x, y, vx, vy); action a 2-D force in [-1, 1].

    The goal is given to planners through `info["goal"]` (every reset and step) and `env.unwrapped.goal`;
    it is deliberately not part of the observation, as in D4RL.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 100}

    def __init__(
        self,
        maze: str = "umaze",
        multi_goal: bool = False,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        from gymnasium_robotics.envs.maze.maze_v4 import Maze
        from gymnasium_robotics.envs.maze.point import PointEnv

        self.spec_maze: MazeSpec = get_maze(maze)
        self.maze_name = maze
        self.multi_goal = bool(multi_goal)
        self.grid = MazeGrid(self.spec_maze)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode

        layout = [list(row) for row in self.spec_maze.layout]
        self.maze, xml_file = Maze.make_maze(_point_xml_path(), layout, maze_size_scaling=1.0, maze_height=0.4)
        camera = {
            "distance": 12.5 if self.grid.n_rows > 8 else 8.8,
            "elevation": -90.0,
            "azimuth": 90.0,
            "lookat": np.zeros(3),
        }
        try:
            self.point_env = PointEnv(
                xml_file=xml_file, render_mode=render_mode, width=width, height=height, default_camera_config=camera
            )
        finally:
            # make_maze leaves its generated XML in the temp dir; the model is compiled, so remove it.
            if os.path.exists(xml_file):
                os.remove(xml_file)
        self.model = self.point_env.model
        self.data = self.point_env.data
        self._target_site = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, "target")

        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float64)
        self.action_space = self.point_env.action_space
        self.goal = np.asarray(self.grid.cell_to_xy(self.spec_maze.goal_cell), dtype=np.float64)
        self.goal_cell: tuple[int, int] = self.spec_maze.goal_cell
        self.reset_cell: tuple[int, int] = self.spec_maze.free_cells[0]

    @property
    def dt(self) -> float:
        return self.point_env.dt

    @property
    def episode_steps(self) -> int:
        return self.spec_maze.episode_steps

    def _validated_cell(self, options: dict[str, Any], key: str) -> tuple[int, int] | None:
        value = options.get(key)
        if value is None:
            return None
        cell = tuple(int(v) for v in np.asarray(value).reshape(-1))
        if len(cell) != 2:
            raise ValueError(f"reset option {key!r} must be a (row, col) pair, got {value!r}")
        if not self.grid.is_free(cell):
            raise ValueError(
                f"reset option {key!r}={cell} is a wall or outside maze {self.maze_name!r} "
                f"({self.grid.n_rows}x{self.grid.n_cols}); free cells: {self.grid.free_cells}"
            )
        return cell

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"reset_cell", "goal_cell"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: 'reset_cell', 'goal_cell'")
        goal_cell = self._validated_cell(options, "goal_cell")
        reset_cell = self._validated_cell(options, "reset_cell")
        cells = self.grid.free_cells

        if goal_cell is None:
            goal_cell = cells[int(self.np_random.integers(len(cells)))] if self.multi_goal else self.spec_maze.goal_cell
        goal = np.asarray(self.grid.cell_to_xy(goal_cell), dtype=np.float64)
        if self.multi_goal:
            goal = goal + self.np_random.uniform(-GOAL_POSITION_NOISE, GOAL_POSITION_NOISE, size=2)
        if reset_cell is None:
            reset_cell = cells[int(self.np_random.integers(len(cells)))]
        qpos = np.asarray(self.grid.cell_to_xy(reset_cell)) + self.np_random.uniform(
            -RESET_POSITION_NOISE, RESET_POSITION_NOISE, size=2
        )
        qvel = self.np_random.normal(0.0, RESET_VELOCITY_STD, size=2)

        self.goal, self.goal_cell, self.reset_cell = goal, goal_cell, reset_cell
        mujoco.mj_resetData(self.model, self.data)
        self.model.site_pos[self._target_site] = (goal[0], goal[1], 0.2)
        self.point_env.set_state(qpos, qvel)
        obs = self._obs()
        return obs, self._info(obs)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"maze2d action must have shape (2,), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"maze2d action must be finite, got {action}")
        self.point_env.step(action)  # clip action and velocity, one mj_step (Gymnasium-Robotics PointEnv)
        obs = self._obs()
        info = self._info(obs)
        return obs, float(info["success"]), False, False, info

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float64)

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        distance = float(np.hypot(obs[0] - self.goal[0], obs[1] - self.goal[1]))
        return {"goal": self.goal.copy(), "distance": distance, "success": distance <= GOAL_RADIUS}

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called on a maze2d env created without render_mode")
            return None
        return self.point_env.render()

    def close(self) -> None:
        self.point_env.close()
        super().close()
