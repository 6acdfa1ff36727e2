"""Quaternion helpers against closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware.transforms import (
    apply_delta,
    normalize_quaternion,
    quaternion_multiply,
    quaternion_to_rotvec,
    rotation_angle_between,
    rotvec_to_quaternion,
)

DOWN = np.array([0.0, 1.0, 0.0, 0.0])


def test_quarter_turn_about_z_maps_x_to_y():
    quat = rotvec_to_quaternion([0, 0, np.pi / 2])
    vector = np.array([0.0, 1.0, 0.0, 0.0])  # pure quaternion of the x axis
    conj = quat * np.array([1, -1, -1, -1])
    rotated = quaternion_multiply(quaternion_multiply(quat, vector), conj)
    assert rotated[1:] == pytest.approx([0, 1, 0], abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3))
def test_rotvec_round_trip(values):
    rotvec = np.asarray(values)
    if np.linalg.norm(rotvec) >= np.pi:  # beyond pi the rotation vector is not unique
        rotvec = rotvec / np.linalg.norm(rotvec) * 3.0
    assert quaternion_to_rotvec(rotvec_to_quaternion(rotvec)) == pytest.approx(rotvec, abs=1e-9)


def test_apply_delta_rotates_in_the_base_frame_by_exactly_the_vector_norm():
    position, quat = apply_delta(np.zeros(3), DOWN, [0.1, 0, 0], [0, 0, 0.3])
    assert position == pytest.approx([0.1, 0, 0])
    assert rotation_angle_between(quat, DOWN) == pytest.approx(0.3)
    expected = normalize_quaternion(quaternion_multiply(rotvec_to_quaternion([0, 0, 0.3]), DOWN))
    assert quat == pytest.approx(expected)


def test_zero_quaternion_is_an_error():
    with pytest.raises(ValueError, match="cannot be normalised"):
        normalize_quaternion(np.zeros(4))
