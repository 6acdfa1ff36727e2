"""Conversions between ROS 2 messages and numpy, and QoS profiles from the config (imports rclpy)."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState

from hardware.config import QosConfig
from hardware.safety import Pose

IMAGE_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


def qos_profile(config: QosConfig) -> QoSProfile:
    if config.preset == "sensor_data":
        profile = QoSProfile(depth=config.depth)
        profile.reliability = qos_profile_sensor_data.reliability
        profile.durability = qos_profile_sensor_data.durability
        profile.history = qos_profile_sensor_data.history
        return profile
    reliability = ReliabilityPolicy.RELIABLE if config.preset == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=config.depth, reliability=reliability)


def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def image_to_numpy(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, mono8) -> uint8 [H, W, 3] RGB; rejects malformed messages."""
    if msg.encoding not in IMAGE_CHANNELS:
        raise ValueError(f"image encoding {msg.encoding!r} not supported; supported: {sorted(IMAGE_CHANNELS)}")
    channels = IMAGE_CHANNELS[msg.encoding]
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise ValueError(
            f"image {msg.width}x{msg.height} {msg.encoding}: step {msg.step} / {len(msg.data)} bytes do not fit"
        )
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8)[: msg.step * msg.height].reshape(msg.height, msg.step)
    image = rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    if msg.encoding == "bgr8":
        image = image[..., ::-1]
    elif msg.encoding == "mono8":
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def numpy_to_image(image: np.ndarray, stamp: Time, frame_id: str) -> Image:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def pose_to_msg(pose: Pose, stamp: Time, frame_id: str) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose.position)
    w, x, y, z = (float(v) for v in pose.quaternion)
    msg.pose.orientation.w, msg.pose.orientation.x = w, x
    msg.pose.orientation.y, msg.pose.orientation.z = y, z
    return msg


def msg_to_pose(msg: PoseStamped) -> Pose:
    p, q = msg.pose.position, msg.pose.orientation
    return Pose.of([p.x, p.y, p.z], [q.w, q.x, q.y, q.z])


def joint_state_msg(names: list[str], positions: np.ndarray, velocities: np.ndarray, stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [float(v) for v in velocities]
    return msg
