"""df-agent environments. Importing this package registers the six maze2d ids and FrankaFruitSwap-v0.

Only `gymnasium.register` runs here; MuJoCo and Gymnasium-Robotics load when an env is made.
"""

from __future__ import annotations

import gymnasium

_MAZE2D = {"umaze": 300, "medium": 600, "large": 800}  # D4RL max_episode_steps


def _register_maze2d() -> None:
    for maze, steps in _MAZE2D.items():
        for multi in (False, True):
            env_id = f"maze2d-{maze}{'-multi' if multi else ''}-v0"
            if env_id in gymnasium.registry:
                continue
            gymnasium.register(
                id=env_id,
                entry_point="envs.maze2d.env:Maze2DEnv",
                max_episode_steps=steps,
                kwargs={"maze": maze, "multi_goal": multi},
            )


_register_maze2d()

import envs.franka_swap  # noqa: E402,F401  (registers FrankaFruitSwap-v0; light, like the above)
