"""Bags written by the sim's recorder are exact CDR that rosbags (and the teleop importer) decode."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 message packages come with the rclpy wheels (x86_64 only)")

from builtin_interfaces.msg import Time
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import Float64

from hardware.bag_recorder import BagRecorder
from hardware.messages import image_to_numpy, joint_state_msg, numpy_to_image, pose_to_msg
from hardware.safety import Pose


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_round_trip_through_a_bag(tmp_path, storage):
    image = np.random.default_rng(0).integers(0, 255, (6, 10, 3), dtype=np.uint8)
    recorder = BagRecorder(tmp_path / "bag", storage)
    stamp = Time(sec=5, nanosec=250)
    recorder.write("/joint_states", joint_state_msg(["j1", "j2"], np.array([0.1, 0.2]), np.zeros(2), stamp), 5_000)
    recorder.write("/cam", numpy_to_image(image, stamp, "cam"), 6_000)
    recorder.write("/pose", pose_to_msg(Pose.of([0.5, 0, 0.4], [0, 1, 0, 0]), stamp, "base"), 7_000)
    recorder.write("/gripper", Float64(data=0.0), 8_000)
    recorder.close()
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with Reader(tmp_path / "bag") as reader:
        messages = {c.topic: (t, typestore.deserialize_cdr(raw, c.msgtype)) for c, t, raw in reader.messages()}
    assert messages["/joint_states"][0] == 5_000
    joints = messages["/joint_states"][1]
    assert list(joints.name) == ["j1", "j2"] and joints.position.tolist() == [0.1, 0.2]
    assert (joints.header.stamp.sec, joints.header.stamp.nanosec) == (5, 250)
    cam = messages["/cam"][1]
    assert cam.encoding == "rgb8" and np.array_equal(cam.data.reshape(6, 10, 3), image)
    assert messages["/pose"][1].pose.position.x == 0.5 and messages["/gripper"][1].data == 0.0


def test_existing_bag_is_never_overwritten(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        BagRecorder(tmp_path / "bag")
    with pytest.raises(ValueError, match="bag storage must be one of"):
        BagRecorder(tmp_path / "other", "zip")


def test_image_conversion_handles_bgr_mono_and_row_padding():
    from sensor_msgs.msg import Image

    msg = Image(height=2, width=2, encoding="bgr8", step=8)
    msg.data = bytes([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0])
    assert image_to_numpy(msg)[0, 0].tolist() == [3, 2, 1] and image_to_numpy(msg)[1, 1].tolist() == [12, 11, 10]
    mono = Image(height=1, width=2, encoding="mono8", step=2)
    mono.data = bytes([5, 9])
    assert image_to_numpy(mono).tolist() == [[[5, 5, 5], [9, 9, 9]]]
    with pytest.raises(ValueError, match="encoding '16UC1' not supported"):
        image_to_numpy(Image(height=1, width=1, encoding="16UC1", step=2))
    short = Image(height=2, width=2, encoding="rgb8", step=6)
    short.data = bytes(6)
    with pytest.raises(ValueError, match="do not fit"):
        image_to_numpy(short)
