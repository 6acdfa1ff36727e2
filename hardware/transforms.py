"""Rigid-body helpers for end-effector poses: quaternions are (w, x, y, z), positions in metres.

The bridge turns end-effector deltas into absolute target poses; everything here is plain numpy so the
safety layer and its tests need neither ROS nor MuJoCo.
"""

from __future__ import annotations

import numpy as np


def normalize_quaternion(quat: np.ndarray) -> np.ndarray:
    quat = np.asarray(quat, dtype=np.float64)
    norm = float(np.linalg.norm(quat))
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f"quaternion {quat.tolist()} cannot be normalised (norm {norm})")
    quat = quat / norm
    # One canonical sign (w >= 0) so that equal rotations compare equal.
    return quat if quat[0] >= 0 else -quat


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quaternion_conjugate(quat: np.ndarray) -> np.ndarray:
    return np.array([quat[0], -quat[1], -quat[2], -quat[3]])


def rotvec_to_quaternion(rotvec: np.ndarray) -> np.ndarray:
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    axis = rotvec / angle
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def quaternion_to_rotvec(quat: np.ndarray) -> np.ndarray:
    quat = normalize_quaternion(quat)
    sin_half = float(np.linalg.norm(quat[1:]))
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, quat[0])
    return quat[1:] / sin_half * angle


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
