"""Observation alignment: timestamped latest-message caches and the per-tick policy observation.

Subscriber callbacks (any thread) `update` a stream; the control tick takes one `snapshot` under the same
lock, so it sees a consistent set of latest messages and the age of each. `build_policy_observation`
turns a snapshot into the batched dict a `Policy` expects plus per-stream Diffusion Forcing noise levels:
a fresh camera frame is clean (0), a stale one is noisy (`stale`), an old or never-received one is
missing (`missing`, the image zero-filled).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hardware.config import RobotConfig


@dataclass(frozen=True)
class Stamped:
    value: Any
    stamp: float  # seconds, the message's header stamp (or the receive time when the header has none)
    received: float  # seconds, when the callback stored it


@dataclass(frozen=True)
class JointReading:
    names: tuple[str, ...]
    positions: np.ndarray


@dataclass(frozen=True)
class Snapshot:
    time: float
    streams: dict[str, Stamped | None]

    def age(self, stream: str) -> float | None:
        item = self.streams.get(stream)
        # A stamp from the future (clock skew) counts as age 0, not as a negative age.
        return None if item is None else max(0.0, self.time - item.stamp)

    def value(self, stream: str) -> Any:
        item = self.streams.get(stream)
        return None if item is None else item.value


class ObservationCache:
    """Latest message per stream, with its stamp; thread-safe."""

    def __init__(self, streams: list[str]) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Stamped | None] = dict.fromkeys(streams)

    def update(self, stream: str, value: Any, stamp: float | None, received: float) -> None:
        if stream not in self._latest:
            raise KeyError(f"unknown observation stream {stream!r}; known: {sorted(self._latest)}")
        item = Stamped(value, stamp if stamp else received, received)
        with self._lock:
            self._latest[stream] = item

    def snapshot(self, now: float) -> Snapshot:
        with self._lock:
            return Snapshot(now, dict(self._latest))

    def clear(self) -> None:
        with self._lock:
            for key in self._latest:
                self._latest[key] = None


def camera_noise_level(age: float | None, config: RobotConfig) -> int:
    levels, safety = config.bridge.noise_levels, config.safety
    if age is None or age > safety.camera_missing_s:
        return levels.missing
    if age > safety.camera_stale_s:
        return levels.stale
    return 0


def build_policy_observation(
    snapshot: Snapshot, config: RobotConfig
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Batched (batch of one) observation and per-key noise levels for `Policy.act`.

    Keys: one per camera (uint8 [1, H, W, 3]), `joint_positions` ([1, n], as published), `ee_pose`
    ([1, 7]: position, quaternion w x y z) and `proprio` ([1, 8]: ee_pose + gripper width in metres, the sum
    of the configured finger joints: the observation layout of `envs.franka_swap`). The robot-state streams
    are only ever passed fresh (the watchdog stops the loop otherwise), so their noise level is 0.
    """
    height, width = config.bridge.image_size
    observation: dict[str, np.ndarray] = {}
    noise: dict[str, np.ndarray] = {}
    for camera in config.topics.cameras:
        stream = f"camera/{camera}"
        level = camera_noise_level(snapshot.age(stream), config)
        image = snapshot.value(stream)
        if image is None or level == config.bridge.noise_levels.missing:
            image = np.zeros((height, width, 3), dtype=np.uint8)
        elif image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        observation[camera] = image[None]
        noise[camera] = np.array([level], dtype=np.int64)
    joints: JointReading | None = snapshot.value("joint_states")
    positions = joints.positions if joints is not None else np.zeros(0)
    observation["joint_positions"] = np.asarray(positions, dtype=np.float32)[None]
    pose = snapshot.value("ee_pose")
    ee_pose = pose.as_array() if pose is not None else np.zeros(7)
    observation["ee_pose"] = ee_pose.astype(np.float32)[None]
    fingers = set(config.bridge.finger_joints)
    width = 0.0 if joints is None else float(sum(p for n, p in zip(joints.names, positions) if n in fingers))
    observation["proprio"] = np.concatenate([ee_pose, [width]]).astype(np.float32)[None]
    for key in ("joint_positions", "ee_pose", "proprio"):
        noise[key] = np.zeros(1, dtype=np.int64)
    return observation, noise
