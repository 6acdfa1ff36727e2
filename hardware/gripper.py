"""Gripper adapters: the bridge says `command(value)` with 1 = open, 0 = closed; the adapter speaks the robot.

- `TopicGripper`: publishes std_msgs/Float64 on a topic (the simulated Franka, or a user's own relay);
- `FrankaActionGripper`: franka_gripper's `Move` / `Grasp` actions (needs `franka_msgs`, which is not on PyPI:
  available where franka_ros2 is installed).
The topic backend publishes every command tick (a cheap message; recorded bags then carry the gripper
command at the control rate, as teleoperation bags do); the action backend only sends a goal when the
state changes (open <-> closed), so a policy that repeats its command does not restart gripper motions.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from hardware.config import ConfigError, RobotConfig

log = logging.getLogger(__name__)


class GripperAdapter(Protocol):
    def command(self, value: float, now: float) -> bool:
        """Send the command if it changes the gripper's state; returns whether anything was sent."""

    def close(self) -> None: ...


class TopicGripper:
    def __init__(self, node: Any, topic: str, qos: Any, repeat_s: float = 0.0) -> None:
        from std_msgs.msg import Float64

        self._node, self._message = node, Float64
        self._publisher = node.create_publisher(Float64, topic, qos)
        self._last: float | None = None
        self._last_time = -float("inf")
        self.repeat_s = repeat_s

    def command(self, value: float, now: float) -> bool:
        value = 1.0 if value >= 0.5 else 0.0
        if value == self._last and now - self._last_time < self.repeat_s:
            return False
        self._publisher.publish(self._message(data=value))
        self._last, self._last_time = value, now
        return True

    def close(self) -> None:
        self._node.destroy_publisher(self._publisher)


class FrankaActionGripper:
    def __init__(self, node: Any, action_name: str, open_width: float, speed: float) -> None:
        try:
            from franka_msgs.action import Grasp, Move
        except ImportError as error:
            raise ConfigError(
                "gripper.backend 'franka_action' needs the franka_msgs package (from franka_ros2), which is not "
                "installed; use gripper.backend: topic"
            ) from error
        from rclpy.action import ActionClient

        self._move = ActionClient(node, Move, action_name)
        self._grasp = ActionClient(node, Grasp, action_name.rsplit("/", 1)[0] + "/grasp")
        self._move_goal, self._grasp_goal = Move.Goal, Grasp.Goal
        self.open_width, self.speed = open_width, speed
        self._last: float | None = None

    def command(self, value: float, now: float) -> bool:
        value = 1.0 if value >= 0.5 else 0.0
        if value == self._last:
            return False
        if value == 1.0:
            self._move.send_goal_async(self._move_goal(width=self.open_width, speed=self.speed))
        else:
            goal = self._grasp_goal(width=0.0, speed=self.speed, force=20.0)
            goal.epsilon.inner, goal.epsilon.outer = 0.08, 0.08  # accept any object width
            self._grasp.send_goal_async(goal)
        self._last = value
        return True

    def close(self) -> None:
        self._move.destroy()
        self._grasp.destroy()


def make_gripper(node: Any, config: RobotConfig, qos: Any) -> GripperAdapter:
    if config.gripper.backend == "topic":
        return TopicGripper(node, config.topics.gripper_command, qos)
    return FrankaActionGripper(node, config.gripper.action_name, config.gripper.open_width, config.gripper.speed)
