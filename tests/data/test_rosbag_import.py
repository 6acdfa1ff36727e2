"""rosbag2 import on bags these tests write with `rosbags` (MCAP and sqlite3): exact as-of resampling,
gaps, image encodings, trailing CDR padding, episode markers, corrupt bags, and the CLI."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from data.replay_buffer import ReplayBuffer
from data.rosbag_import import (
    BagImportError,
    ImportConfig,
    ImportConfigError,
    asof_indices,
    decode_image,
    import_bags,
)
from df_agent.cli.main import main as cli_main

STORE = get_typestore(Stores.ROS2_JAZZY)
T = STORE.types
S = 10**9
BASE = 1_700_000_000 * S


def header(stamp_ns: int):
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // S, nanosec=stamp_ns % S), frame_id="base"
    )


def pose_msg(stamp_ns: int, x: float):
    return T["geometry_msgs/msg/PoseStamped"](
        header=header(stamp_ns),
        pose=T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=x, y=0.0, z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        ),
    )


def image_msg(stamp_ns: int, pixels: np.ndarray, encoding: str, row_padding: int = 0):
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    rows = np.concatenate([rows, np.zeros((height, row_padding), np.uint8)], axis=1)
    return T["sensor_msgs/msg/Image"](
        header=header(stamp_ns),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=rows.shape[1],
        data=rows.reshape(-1).astype(np.uint8),
    )


def joint_msg(stamp_ns: int, positions):
    return T["sensor_msgs/msg/JointState"](
        header=header(stamp_ns),
        name=["j1", "j2"],
        position=np.asarray(positions, float),
        velocity=np.zeros(2),
        effort=np.zeros(0),
    )


class BagBuilder:
    """Writes messages with explicit header stamps and log times (log may lag the stamp)."""

    def __init__(self, path: pathlib.Path, storage: str = "mcap") -> None:
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.connections: dict[str, object] = {}

    def write(self, topic: str, msgtype: str, message, log_ns: int, padding: int = 0) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=STORE)
        raw = bytes(STORE.serialize_cdr(message, msgtype)) + b"\x00" * padding
        self.writer.write(self.connections[topic], log_ns, raw)

    def close(self) -> None:
        self.writer.close()


BASE_CONFIG = {
    "rate_hz": 10.0,
    "max_age_s": 0.15,
    "min_episode_steps": 1,
    "image_size": [4, 4],
    "streams": {
        "pose": {"topic": "/pose", "kind": "pose"},
        "cmd": {"topic": "/cmd", "kind": "scalar"},
        "cam": {"topic": "/cam", "kind": "image"},
    },
}


def write_rates_bag(
    path: pathlib.Path, storage: str = "mcap", padding: int = 0, gap: tuple[float, float] | None = None
):
    """Pose at ~50 Hz with jitter, command at 7 Hz (header-less: log time), camera at 4 Hz.

    Each message's value encodes its own stamp, so the test can tell exactly which message a tick used.
    Returns {stream: stamps_ns} as written.
    """
    rng = np.random.default_rng(0)
    bag = BagBuilder(path, storage)
    written = {"pose": [], "cmd": [], "cam": []}
    duration = 3.0
    pose_times = np.cumsum(rng.uniform(0.015, 0.025, size=200))
    for t in pose_times[pose_times < duration]:
        if gap and gap[0] <= t < gap[1]:
            continue
        stamp = BASE + round(t * S)
        bag.write("/pose", "geometry_msgs/msg/PoseStamped", pose_msg(stamp, float(t)), stamp + 2_000_000, padding)
        written["pose"].append(stamp)
    for t in np.arange(0.0, duration, 1 / 7):
        log = BASE + round(t * S)
        bag.write("/cmd", "std_msgs/msg/Float64", T["std_msgs/msg/Float64"](data=float(t)), log, padding)
        written["cmd"].append(log)
    for t in np.arange(0.01, duration, 0.25):
        stamp = BASE + round(t * S)
        pixels = np.full((8, 8, 3), int(t * 50), np.uint8)
        # The frame arrives (is logged) 40 ms after it was taken: the header stamp must be used, not log time.
        bag.write("/cam", "sensor_msgs/msg/Image", image_msg(stamp, pixels, "rgb8"), stamp + 40_000_000, padding)
        written["cam"].append(stamp)
    bag.close()
    return {k: np.asarray(v, np.int64) for k, v in written.items()}


def brute_force_asof(stamps: np.ndarray, tick: int, max_age: int):
    earlier = [s for s in stamps if s <= tick]
    if not earlier:
        return None
    latest = max(earlier)
    return latest if tick - latest <= max_age else None


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_asof_resampling_is_exact_on_handmade_timestamps(tmp_path, storage: str) -> None:
    written = write_rates_bag(tmp_path / "bag", storage)
    config = ImportConfig.from_dict({**BASE_CONFIG, "max_age_s": 0.3})
    (report,) = import_bags([tmp_path / "bag"], tmp_path / "out.zarr", config)
    assert report.ok and len(report.episodes) == 1
    episode = ReplayBuffer.open(tmp_path / "out.zarr").get_episode(0)
    ticks = episode["timestamp_ns"]
    start = max(v[0] for v in written.values())
    assert ticks[0] == start  # the clock starts when every stream has spoken
    assert np.all(np.diff(ticks) == S // 10)
    max_age = round(0.3 * S)
    for i, tick in enumerate(ticks):
        want_pose = brute_force_asof(written["pose"], tick, max_age)
        want_cmd = brute_force_asof(written["cmd"], tick, max_age)
        want_cam = brute_force_asof(written["cam"], tick, max_age)
        assert None not in (want_pose, want_cmd, want_cam)
        assert want_pose <= tick and want_cmd <= tick and want_cam <= tick  # never a future message
        assert episode["pose"][i, 0] == pytest.approx((want_pose - BASE) / S, abs=1e-6)
        assert episode["cmd"][i, 0] == pytest.approx((want_cmd - BASE) / S, abs=1e-6)
        assert episode["cam"][i, 0, 0, 0] == int((want_cam - BASE) / S * 50)
    assert episode["pose"].shape[1] == 7  # x y z qw qx qy qz
    assert episode["cam"].shape[1:] == (4, 4, 3)


def test_asof_indices_never_look_ahead() -> None:
    stamps = np.array([10, 20, 30], np.int64)
    index, status = asof_indices(stamps, np.array([5, 10, 19, 29, 30, 45, 60], np.int64), max_age_ns=10)
    np.testing.assert_array_equal(index, [-1, 0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(status, [0, 2, 2, 2, 2, 1, 1])  # missing, fresh..., stale


def test_gap_splits_or_drops_with_report(tmp_path) -> None:
    write_rates_bag(tmp_path / "bag", gap=(1.0, 1.6))  # pose stream silent for 0.6 s
    split = ImportConfig.from_dict({**BASE_CONFIG, "max_age_s": 0.3})
    (report,) = import_bags([tmp_path / "bag"], tmp_path / "split.zarr", split)
    assert len(report.episodes) == 2 and report.gaps == 1
    assert report.stale.get("pose", 0) > 0
    assert report.ticks_kept == sum(report.episodes)
    assert report.ticks_kept + report.ticks_trimmed + report.ticks_dropped + report.stale["pose"] >= report.ticks
    buffer = ReplayBuffer.open(tmp_path / "split.zarr")
    first, second = buffer.get_episode(0)["timestamp_ns"], buffer.get_episode(1)["timestamp_ns"]
    assert second[0] - first[-1] > 0.3 * S  # the stale ticks are not in any episode
    dropped = ImportConfig.from_dict({**BASE_CONFIG, "max_age_s": 0.3, "on_gap": "drop"})
    (report_drop,) = import_bags([tmp_path / "bag"], tmp_path / "drop.zarr", dropped)
    assert len(report_drop.episodes) == 1 and report_drop.ticks_dropped == report.stale["pose"]
    assert report_drop.episodes[0] == sum(report.episodes)


def test_trailing_cdr_padding_is_tolerated(tmp_path) -> None:
    with pytest.raises(Exception, match="size mismatch"):  # what rosbags itself does with such payloads
        raw = bytes(STORE.serialize_cdr(T["std_msgs/msg/Float64"](data=1.0), "std_msgs/msg/Float64")) + bytes(8)
        STORE.deserialize_cdr(raw, "std_msgs/msg/Float64")
    write_rates_bag(tmp_path / "padded", padding=8)
    write_rates_bag(tmp_path / "plain")
    config = ImportConfig.from_dict({**BASE_CONFIG, "max_age_s": 0.3})
    (padded,) = import_bags([tmp_path / "padded"], tmp_path / "a.zarr", config)
    (plain,) = import_bags([tmp_path / "plain"], tmp_path / "b.zarr", config)
    assert padded.padded_messages == sum(padded.messages.values()) > 0 and plain.padded_messages == 0
    a, b = ReplayBuffer.open(tmp_path / "a.zarr").get_episode(0), ReplayBuffer.open(tmp_path / "b.zarr").get_episode(0)
    for key in b:
        np.testing.assert_array_equal(a[key], b[key])


def test_image_encodings_and_resize() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, size=(6, 10, 3), dtype=np.uint8)
    same = decode_image(image_msg(0, rgb, "rgb8"), (6, 10))
    np.testing.assert_array_equal(same, rgb)
    np.testing.assert_array_equal(
        decode_image(image_msg(0, rgb[..., ::-1].copy(), "bgr8", row_padding=2), (6, 10)), rgb
    )
    mono = rgb[..., 0].copy()
    decoded = decode_image(image_msg(0, mono[..., None], "mono8"), (6, 10))
    assert decoded.shape == (6, 10, 3) and np.all(decoded == mono[..., None])
    small = decode_image(image_msg(0, rgb, "rgb8"), (3, 5))
    assert small.shape == (3, 5, 3) and small.dtype == np.uint8
    np.testing.assert_allclose(small[0, 0], rgb[:2, :2].reshape(-1, 3).mean(0), atol=1)  # area averaging
    with pytest.raises(ValueError, match="encoding"):
        decode_image(image_msg(0, rgb, "16UC1"), (6, 10))
    broken = image_msg(0, rgb, "rgb8")
    broken.data = broken.data[:-5]
    with pytest.raises(ValueError, match="bytes"):
        decode_image(broken, (6, 10))


def test_joint_selection_and_marker_split(tmp_path) -> None:
    bag = BagBuilder(tmp_path / "bag")
    for k in range(40):  # 4 s of joint states at 10 Hz
        stamp = BASE + k * 100_000_000
        bag.write("/joint_states", "sensor_msgs/msg/JointState", joint_msg(stamp, [k, 0.5]), stamp)
    for t in (0.0, 1.95, 4.5):
        bag.write("/marker", "std_msgs/msg/String", T["std_msgs/msg/String"](data="start"), BASE + round(t * S))
    bag.close()
    config = ImportConfig.from_dict(
        {
            "rate_hz": 10.0,
            "max_age_s": 0.05,
            "episode_split_topic": "/marker",
            "min_episode_steps": 1,
            "streams": {
                "q2": {"topic": "/joint_states", "kind": "joint_position", "joints": ["j2"]},
                "width": {"topic": "/joint_states", "kind": "joint_position", "joints": ["j1", "j2"], "reduce": "sum"},
            },
        }
    )
    (report,) = import_bags([tmp_path / "bag"], tmp_path / "out.zarr", config)
    assert report.episodes == [20, 20]  # split at the 1.95 s marker
    buffer = ReplayBuffer.open(tmp_path / "out.zarr")
    np.testing.assert_allclose(buffer.get_episode(0)["q2"][:, 0], 0.5)
    np.testing.assert_allclose(buffer.get_episode(1)["width"][:, 0], np.arange(20, 40) + 0.5)


def test_corrupt_bag_keeps_earlier_imports(tmp_path) -> None:
    write_rates_bag(tmp_path / "good")
    write_rates_bag(tmp_path / "corrupt")
    mcap = next((tmp_path / "corrupt").glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 400] = b"\xff" * 400  # scribble over message records
    mcap.write_bytes(bytes(data[: len(data) * 2 // 3]))  # and cut the file short
    write_rates_bag(tmp_path / "late")
    config = ImportConfig.from_dict({**BASE_CONFIG, "max_age_s": 0.3})
    out = tmp_path / "out.zarr"
    with pytest.raises(BagImportError, match="corrupt"):
        import_bags([tmp_path / "good", tmp_path / "corrupt", tmp_path / "late"], out, config)
    assert ReplayBuffer.open(out).n_episodes == 1  # the good bag's episode is kept, nothing of the corrupt one
    reports = import_bags([tmp_path / "corrupt", tmp_path / "late"], out, config, skip_corrupt=True)
    assert [r.ok for r in reports] == [False, True] and "corrupt" in reports[0].error
    assert ReplayBuffer.open(out).n_episodes == 2
    # A sqlite3 bag whose database is garbage.
    write_rates_bag(tmp_path / "db", storage="sqlite3")
    next((tmp_path / "db").glob("*.db3")).write_bytes(b"not a database" * 100)
    with pytest.raises(BagImportError, match=str(tmp_path / "db")):
        import_bags([tmp_path / "db"], out, config)
    assert ReplayBuffer.open(out).n_episodes == 2


def test_missing_topic_and_wrong_type_are_clear(tmp_path) -> None:
    write_rates_bag(tmp_path / "bag")
    config = ImportConfig.from_dict(
        {**BASE_CONFIG, "streams": {**BASE_CONFIG["streams"], "extra": {"topic": "/nope", "kind": "scalar"}}}
    )
    with pytest.raises(BagImportError, match="/nope"):
        import_bags([tmp_path / "bag"], tmp_path / "o.zarr", config)
    wrong = ImportConfig.from_dict({**BASE_CONFIG, "streams": {"cmd": {"topic": "/cam", "kind": "scalar"}}})
    with pytest.raises(BagImportError, match="sensor_msgs/msg/Image"):
        import_bags([tmp_path / "bag"], tmp_path / "o.zarr", wrong)


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"rate_hz": -1}, "rate_hz"),
        ({"on_gap": "ignore"}, "on_gap"),
        ({"streams": {"x": {"topic": "/x", "kind": "lidar"}}}, "streams.x.kind"),
        ({"streams": {"x": {"topic": "x", "kind": "scalar"}}}, "streams.x.topic"),
        ({"streams": {"action": {"topic": "/x", "kind": "scalar"}}}, "not one of"),
        ({"bogus": 1}, "unknown key"),
        ({"action": {"target_pose": "cmd", "gripper": "cmd"}}, "action.target_pose"),
    ],
)
def test_config_errors_name_the_key(patch, match) -> None:
    with pytest.raises(ImportConfigError, match=match):
        ImportConfig.from_dict({**BASE_CONFIG, **patch})


def test_example_config_loads() -> None:
    config = ImportConfig.from_yaml(pathlib.Path(__file__).parents[2] / "data" / "topics_example.yaml")
    assert {s.key for s in config.streams} >= {"front_image", "wrist_image", "ee_pose", "target_pose", "gripper_cmd"}
    assert config.action is not None


def test_cli_import_bags(tmp_path, capsys) -> None:
    write_rates_bag(tmp_path / "b1")
    write_rates_bag(tmp_path / "b2", storage="sqlite3")
    (tmp_path / "topics.yaml").write_text(json.dumps({**BASE_CONFIG, "max_age_s": 0.3}))  # JSON is YAML
    out, report = tmp_path / "demos.zarr", tmp_path / "report.json"
    code = cli_main(
        [
            "data",
            "import-bags",
            str(tmp_path / "b1"),
            str(tmp_path / "b2"),
            "--out",
            str(out),
            "--config",
            str(tmp_path / "topics.yaml"),
            "--report",
            str(report),
            "--no-progress",
        ]
    )
    assert code == 0
    assert ReplayBuffer.open(out).n_episodes == 2
    assert [r["ok"] for r in json.loads(report.read_text())] == [True, True]
    assert "b1" in capsys.readouterr().out
    (tmp_path / "b3").mkdir()
    code = cli_main(
        [
            "data",
            "import-bags",
            str(tmp_path / "b3"),
            "--out",
            str(out),
            "--config",
            str(tmp_path / "topics.yaml"),
            "--no-progress",
        ]
    )
    assert code == 1 and ReplayBuffer.open(out).n_episodes == 2
