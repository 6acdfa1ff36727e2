"""A simulated Franka that speaks the real robot's topics, so the bridge runs end to end without hardware.

Publishes camera images (sensor_msgs/Image rgb8), joint states and the end-effector pose (stamped with the
node's clock) and follows geometry_msgs/PoseStamped targets and std_msgs/Float64 gripper commands, as
franka_ros2 with a Cartesian impedance controller would. The physics is a `SimulatedArm` backend: the
MuJoCo Panda of `envs.franka_swap.scene.FrankaScene`. Optionally records everything it publishes and
receives into a rosbag2 (the teleop importer reads those bags).

All simulation work (physics step, state publishing, rendering) runs in one mutually exclusive callback
group: MuJoCo's data is not thread-safe. Incoming targets are only stored and applied at the next step.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.time import Time as RosTime
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64

from hardware.bag_recorder import BagRecorder
from hardware.config import RobotConfig
from hardware.messages import joint_state_msg, msg_to_pose, numpy_to_image, pose_to_msg, qos_profile
from hardware.safety import Pose

SIM_NODE_NAME = "df_agent_sim_franka"


class SimulatedArm(Protocol):
    """What the sim node needs from a physics backend (the API of `envs.franka_swap.scene.FrankaScene`)."""

    dt: float
    joint_names: tuple[str, ...]

    def reset(self, seed: int | None = None, options: dict | None = None) -> None: ...
    def set_target_pose(self, position: np.ndarray, quaternion_wxyz: np.ndarray) -> None: ...
    def set_gripper(self, command: float) -> None: ...
    def step(self) -> None: ...
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]: ...
    def joint_positions(self) -> np.ndarray: ...
    def joint_velocities(self) -> np.ndarray: ...
    def render(self, camera: str, size: int | None = None) -> np.ndarray: ...


def make_backend(config: RobotConfig) -> SimulatedArm:
    if config.sim.backend == "franka_scene":
        from envs.franka_swap.scene import FrankaScene

        return FrankaScene(image_size=config.sim.image_size, control_dt=1.0 / config.sim.physics_rate_hz)
    raise ValueError(f"sim.backend {config.sim.backend!r} is not available")


class SimFrankaNode(Node):
    def __init__(
        self,
        config: RobotConfig,
        backend: SimulatedArm,
        seed: int | None = None,
        reset_options: dict | None = None,
        monitor: Any = None,
        bag_path: str | Path | None = None,
        bag_storage: str = "sqlite3",
        node_name: str = SIM_NODE_NAME,
        video: Any = None,
        video_fps: float = 10.0,
        video_size: int = 240,
    ) -> None:
        """reset_options: the backend's reset options (e.g. fruit positions of a fruit-swap episode).
        video: a `df_agent.media.VideoWriter` to record the front | wrist cameras into, `video_fps` frames a
        second of `video_size` pixels per camera (rendered in the simulation's thread: it costs sim time)."""
        super().__init__(node_name)
        self.config = config
        self.backend = backend
        self.backend.reset(seed=seed, options=reset_options)
        self.recorder = BagRecorder(bag_path, bag_storage) if bag_path is not None else None
        self.steps = 0
        self.targets_received = 0
        self._pending_lock = threading.Lock()
        self._pending_target: Pose | None = None
        self._pending_gripper: float | None = None
        self.cameras = dict(config.topics.cameras)
        # Render each configured camera once: an unknown camera name fails here with a clear error instead of
        # inside a timer, and the first (slow) render happens before the clock starts ticking.
        for name in self.cameras:
            try:
                backend.render(name)
            except ValueError as error:
                raise ValueError(f"topics.cameras names camera {name!r}, which the simulator lacks: {error}") from error
        group = MutuallyExclusiveCallbackGroup()
        camera_qos = qos_profile(config.qos.cameras)
        state_qos = qos_profile(config.qos.robot_state)
        command_qos = qos_profile(config.qos.commands)
        self._image_publishers = {
            name: self.create_publisher(Image, topic, camera_qos) for name, topic in self.cameras.items()
        }
        self._joint_publisher = self.create_publisher(JointState, config.topics.joint_states, state_qos)
        self._pose_publisher = self.create_publisher(PoseStamped, config.topics.ee_pose, state_qos)
        target = self.create_subscription(PoseStamped, config.topics.target_pose, self._on_target, command_qos)
        gripper = self.create_subscription(Float64, config.topics.gripper_command, self._on_gripper, command_qos)
        # Bags record the resolved names (/arm/joint_states under -r __ns:=/arm), as `ros2 bag record` does.
        self._bag_topics = {
            "joint_states": self._joint_publisher.topic_name,
            "ee_pose": self._pose_publisher.topic_name,
            "target_pose": target.topic_name,
            "gripper_command": gripper.topic_name,
            **{f"camera/{name}": publisher.topic_name for name, publisher in self._image_publishers.items()},
        }
        self.create_timer(backend.dt, self._on_physics, callback_group=group)
        self.create_timer(1.0 / config.sim.camera_rate_hz, self._on_camera, callback_group=group)
        self.monitor = monitor
        if monitor is not None:
            self.create_timer(1.0 / config.sim.camera_rate_hz, self._on_monitor, callback_group=group)
        self.video, self.video_size = video, int(video_size)
        if video is not None:
            self.create_timer(1.0 / video_fps, self._on_video_frame, callback_group=group)
        position, _ = backend.ee_pose()
        self.get_logger().info(
            f"simulated Franka ready: ee at {np.round(position, 3).tolist()}, physics {1 / backend.dt:.0f} Hz, "
            f"cameras {sorted(self.cameras)} at {config.sim.camera_rate_hz} Hz"
        )

    def _stamp_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _record(self, topic: str, message: Any, stamp_ns: int) -> None:
        if self.recorder is not None:
            self.recorder.write(topic, message, stamp_ns)

    def _on_target(self, msg: PoseStamped) -> None:
        try:
            pose = msg_to_pose(msg)
        except ValueError as error:
            self.get_logger().warning(f"target pose ignored: {error}", throttle_duration_sec=2.0)
            return
        if not np.all(np.isfinite(pose.position)):
            self.get_logger().warning("target pose ignored: non-finite position", throttle_duration_sec=2.0)
            return
        with self._pending_lock:
            self._pending_target = pose
            self.targets_received += 1
        self._record(self._bag_topics["target_pose"], msg, self._stamp_ns())

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            return
        with self._pending_lock:
            self._pending_gripper = float(np.clip(msg.data, 0.0, 1.0))
        self._record(self._bag_topics["gripper_command"], msg, self._stamp_ns())

    def _on_physics(self) -> None:
        with self._pending_lock:
            target, gripper = self._pending_target, self._pending_gripper
            self._pending_target = self._pending_gripper = None
        if target is not None:
            self.backend.set_target_pose(target.position, target.quaternion)
        if gripper is not None:
            self.backend.set_gripper(gripper)
        self.backend.step()
        self.steps += 1
        stamp_ns = self._stamp_ns()
        stamp = RosTime(nanoseconds=stamp_ns).to_msg()
        position, quaternion = self.backend.ee_pose()
        joints = joint_state_msg(
            list(self.backend.joint_names), self.backend.joint_positions(), self.backend.joint_velocities(), stamp
        )
        pose = pose_to_msg(Pose.of(position, quaternion), stamp, self.config.frame_id)
        self._joint_publisher.publish(joints)
        self._pose_publisher.publish(pose)
        self._record(self._bag_topics["joint_states"], joints, stamp_ns)
        self._record(self._bag_topics["ee_pose"], pose, stamp_ns)

    def _on_camera(self) -> None:
        stamp_ns = self._stamp_ns()
        stamp = RosTime(nanoseconds=stamp_ns).to_msg()
        for name, publisher in self._image_publishers.items():
            image = numpy_to_image(self.backend.render(name), stamp, f"{name}_camera")
            publisher.publish(image)
            self._record(self._bag_topics[f"camera/{name}"], image, stamp_ns)

    def _on_monitor(self) -> None:
        self.monitor(self.backend, self.steps * self.backend.dt)

    def _on_video_frame(self) -> None:
        frames = [self.backend.render(name, size=self.video_size) for name in ("front", "wrist")]
        self.video.append(np.concatenate(frames, axis=1))

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.video is not None and self.video.frames_written:
            self.video.close()
