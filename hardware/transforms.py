"""Rigid-body helpers for end-effector poses: quaternions are (w, x, y, z), positions in metres.

The bridge turns end-effector deltas into absolute target poses; everything here is plain numpy so the
safety layer and its tests need neither ROS nor MuJoCo.
"""

from __future__ import annotations

import numpy as np

from df_agent.geometry import (
    normalize_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_rotvec,
    rotvec_to_quaternion,
)

__all__ = [
    "normalize_quaternion",
    "quaternion_conjugate",
    "quaternion_multiply",
    "quaternion_to_rotvec",
    "rotvec_to_quaternion",
]


def euler_xyz_to_quaternion(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Extrinsic roll about x, then pitch about y, then yaw about z (R = Rz Ry Rx)."""
    qx = rotvec_to_quaternion(np.array([roll, 0.0, 0.0]))
    qy = rotvec_to_quaternion(np.array([0.0, pitch, 0.0]))
    qz = rotvec_to_quaternion(np.array([0.0, 0.0, yaw]))
    return quaternion_multiply(qz, quaternion_multiply(qy, qx))


def rotation_angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest rotation angle (radians, 0..pi) taking orientation a to orientation b."""
    dot = abs(float(np.dot(normalize_quaternion(a), normalize_quaternion(b))))
    return 2.0 * float(np.arccos(min(1.0, dot)))


def apply_delta(
    position: np.ndarray, quat: np.ndarray, delta_position: np.ndarray, delta_rotation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add a base-frame translation and a base-frame rotation to a pose.

    The rotation (droll, dpitch, dyaw) is read as a rotation vector (axis * angle, base frame): for the small
    per-step rotations a policy commands it equals roll-pitch-yaw increments to first order, and unlike
    Euler angles its norm is exactly the rotation angle, which is what the per-step limit bounds.
    """
    rotation = rotvec_to_quaternion(np.asarray(delta_rotation, dtype=np.float64))
    new_quat = normalize_quaternion(quaternion_multiply(rotation, normalize_quaternion(quat)))
    return np.asarray(position, dtype=np.float64) + np.asarray(delta_position, dtype=np.float64), new_quat
