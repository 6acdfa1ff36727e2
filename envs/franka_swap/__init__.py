"""Simulated Franka fruit-swap task (paper 4.4 / F.3): MuJoCo scene, gymnasium env, scripted teleoperator.

Importing this package registers ``FrankaFruitSwap-v0`` with gymnasium. The Panda model comes from
gymnasium-robotics' kitchen_franka assets (Apache-2.0), see ``NOTICE``.
"""

from __future__ import annotations

import gymnasium as gym

ENV_ID = "FrankaFruitSwap-v0"
MAX_EPISODE_STEPS = 500  # 50 s at the default 10 Hz; scripted demos take 22-39 s

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.franka_swap.env:FrankaFruitSwapEnv", max_episode_steps=MAX_EPISODE_STEPS)

__all__ = ["ENV_ID", "MAX_EPISODE_STEPS"]
