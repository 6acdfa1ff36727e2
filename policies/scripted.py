"""Scripted Franka policies for demos and tests of the ROS 2 bridge (the DF imitation policy plugs in the same way).

Both follow the `policies.base.Policy` protocol: batched dict observations in, actions
`[N, 7]` = (dx, dy, dz, droll, dpitch, dyaw, gripper) out, gripper 1 = open, 0 = closed.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import numpy as np

from df_agent.geometry import (
    normalize_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_rotvec,
    rotvec_to_quaternion,
)

ACTION_DIM = 7


class ReachTargetPolicy:
    """Proportional reach: move the end effector a fraction `gain` of the way to a fixed target each step.

    Uses the `ee_pose` observation ([N, 7], position + quaternion w x y z). The rotation delta is the
    rotation vector of the orientation error, which equals (droll, dpitch, dyaw) to first order.
    """

    def __init__(
        self,
        target_position: Any,
        target_quaternion: Any | None = None,
        gain: float = 0.5,
        max_step: float = 0.05,
        gripper: float = 1.0,
        horizon: int = 1,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = int(horizon)
        self.target_position = np.asarray(target_position, dtype=np.float64).reshape(3)
        self.target_quaternion = (
            None if target_quaternion is None else normalize_quaternion(np.asarray(target_quaternion))
        )
        if not 0 < gain <= 1:
            raise ValueError(f"gain must be in (0, 1], got {gain}")
        self.gain, self.max_step, self.gripper = gain, max_step, gripper

    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        """Stateless: nothing to forget."""

    def act(self, observation: dict[str, np.ndarray], noise_level: Any = 0) -> np.ndarray:
        if "ee_pose" not in observation:
            raise KeyError(f"ReachTargetPolicy needs an 'ee_pose' observation; got keys {sorted(observation)}")
        poses = np.asarray(observation["ee_pose"], dtype=np.float64)
        actions = np.zeros((poses.shape[0], ACTION_DIM))
        for i, pose in enumerate(poses):
            step = self.gain * (self.target_position - pose[:3])
            norm = float(np.linalg.norm(step))
            if norm > self.max_step:
                step *= self.max_step / norm
            actions[i, :3] = step
            if self.target_quaternion is not None:
                error = quaternion_multiply(
                    self.target_quaternion, quaternion_conjugate(normalize_quaternion(pose[3:]))
                )
                actions[i, 3:6] = self.gain * quaternion_to_rotvec(error)
            actions[i, 6] = self.gripper
        return actions

    def sample_chunk(self, observation: dict[str, np.ndarray], noise_level: Any = 0) -> np.ndarray:
        """`[N, horizon, 7]`: the reach rolled forward `horizon` steps, as if each step were executed exactly."""
        poses = np.asarray(observation["ee_pose"], dtype=np.float64).copy()
        steps = []
        for _ in range(self.horizon):
            action = self.act({"ee_pose": poses})
            poses[:, :3] += action[:, :3]
            for i in range(len(poses)):
                turn = rotvec_to_quaternion(action[i, 3:6])
                poses[i, 3:] = normalize_quaternion(quaternion_multiply(turn, poses[i, 3:]))
            steps.append(action)
        return np.stack(steps, axis=1)

    def describe(self) -> dict[str, Any]:
        return {"policy_type": "reach_target", "target_position": self.target_position.tolist(),
                "target_quaternion": None if self.target_quaternion is None else self.target_quaternion.tolist(),
                "gain": self.gain, "max_step": self.max_step, "gripper": self.gripper, "horizon": self.horizon}


class ReplayActionsPolicy:
    """Plays back a fixed list of actions (then repeats the last one); for exercising the safety layer."""

    def __init__(self, actions: Any) -> None:
        self.actions = np.asarray(actions, dtype=np.float64).reshape(-1, ACTION_DIM)
        if len(self.actions) == 0:
            raise ValueError("ReplayActionsPolicy needs at least one action")
        self.index = 0

    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        self.index = 0

    def act(self, observation: dict[str, np.ndarray], noise_level: Any = 0) -> np.ndarray:
        batch = len(next(iter(observation.values())))
        action = self.actions[min(self.index, len(self.actions) - 1)]
        self.index += 1
        return np.repeat(action[None], batch, axis=0)


class DelayedPolicy:
    """Any policy, `delay_s` slower per call: measures how the real-time loop copes with a slow policy.

    Forwards `sample_chunk` (when the inner policy has it), `act`, `replan_every` and `describe`.
    """

    def __init__(self, inner: Any, delay_s: float) -> None:
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.inner, self.delay_s = inner, float(delay_s)
        if hasattr(inner, "replan_every"):
            self.replan_every = inner.replan_every
        if hasattr(inner, "sample_chunk"):
            self.sample_chunk = self._sample_chunk

    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        self.inner.reset(num_envs, **kwargs)

    def act(self, observation: Any, noise_level: Any = 0) -> np.ndarray:
        time.sleep(self.delay_s)
        return self.inner.act(observation, noise_level)

    def _sample_chunk(self, observation: Any, noise_level: Any = 0, executed: Any = None) -> np.ndarray:
        time.sleep(self.delay_s)
        takes_executed = "executed" in inspect.signature(self.inner.sample_chunk).parameters
        extra = {"executed": executed} if takes_executed else {}
        return self.inner.sample_chunk(observation, noise_level=noise_level, **extra)

    def describe(self) -> dict[str, Any]:
        inner = self.inner.describe() if hasattr(self.inner, "describe") else {"type": type(self.inner).__name__}
        return {**inner, "added_latency_s": self.delay_s}
