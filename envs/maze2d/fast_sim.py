"""Step the maze MuJoCo model directly, without the Gymnasium wrapper stack, for data generation.

Same `MjModel` object as `Maze2DEnv` (so the same XML and physics) and the same step as Gymnasium-Robotics'
`PointEnv.step`: clip action to [-1, 1], clip velocity to [-5, 5], one `mj_step`. The extra `mj_forward`
that PointEnv's `set_state` runs before stepping recomputes derived quantities only and is skipped here;
`tests/envs/test_maze2d_env.py` checks that both paths produce the same trajectory.
"""

from __future__ import annotations

import mujoco
import numpy as np

VELOCITY_LIMIT = 5.0


class FastPointMass:
    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self._qpos = self.data.qpos
        self._qvel = self.data.qvel
        self._ctrl = self.data.ctrl

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self._qpos[:] = qpos
        self._qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    def state(self) -> tuple[float, float, float, float]:
        x, y = self._qpos.tolist()
        vx, vy = self._qvel.tolist()
        return x, y, vx, vy

    def step(self, ax: float, ay: float) -> tuple[float, float, float, float]:
        qvel = self._qvel
        vx, vy = qvel.tolist()
        lim = VELOCITY_LIMIT
        qvel[0] = min(lim, max(-lim, vx))
        qvel[1] = min(lim, max(-lim, vy))
        ctrl = self._ctrl
        ctrl[0] = min(1.0, max(-1.0, ax))
        ctrl[1] = min(1.0, max(-1.0, ay))
        mujoco.mj_step(self.model, self.data)
        return self.state()
