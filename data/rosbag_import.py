"""Import ROS 2 bags (sqlite3 or MCAP, via ``rosbags``; no ROS installation needed) into a ReplayBuffer.

Each configured stream (camera image, joint positions/velocities, a pose, a scalar command) is decoded into
``(stamps, values)``. All streams are then resampled onto one clock at ``rate_hz`` by *as-of* sampling: at
tick ``t`` a stream contributes its latest message stamped at or before ``t`` — never a later one — provided
that message is at most ``max_age_s`` old. A tick where some stream is missing (no message yet) or stale
(too old) is unusable: at the start or end of an episode it is trimmed; inside, it splits the episode
(``on_gap: split``) or is dropped (``on_gap: drop``). Every decision is counted in a per-bag report.

One bag is one episode, unless ``episode_split_topic`` is set: then every message on that topic is a
boundary. A bag is decoded completely before any of its episodes is appended, so a corrupt bag raises
``BagImportError`` naming the bag (and topic and time where known) and leaves the replay buffer as it was,
with every earlier bag's episodes intact. CDR payloads with trailing padding bytes are accepted (rosbags
itself rejects more than 3 extra bytes); the report counts them.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from data.replay_buffer import ReplayBuffer
from df_agent.geometry import quaternion_conjugate, quaternion_multiply, quaternion_to_rotvec

log = logging.getLogger(__name__)

STREAM_KINDS = ("image", "joint_position", "joint_velocity", "pose", "scalar")
KIND_MSGTYPES = {
    "image": {"sensor_msgs/msg/Image"},
    "joint_position": {"sensor_msgs/msg/JointState"},
    "joint_velocity": {"sensor_msgs/msg/JointState"},
    "pose": {"geometry_msgs/msg/PoseStamped"},
    "scalar": {"std_msgs/msg/Float64", "std_msgs/msg/Float32", "std_msgs/msg/Bool", "std_msgs/msg/Int32"},
}
TIMESTAMP_KEY = "timestamp_ns"  # tick time (int64 ns on the bag's clock; float64 would lose the ns)
RESERVED_KEYS = (TIMESTAMP_KEY, "action")
IMAGE_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


class BagImportError(RuntimeError):
    """A bag could not be read or decoded; the message names the bag and, where known, topic and time."""


class ImportConfigError(ValueError):
    """The topics configuration is invalid; the message names the key."""


# --------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class StreamConfig:
    key: str
    topic: str
    kind: str
    joints: tuple[str, ...] | None = None
    reduce: str | None = None  # "sum" (e.g. two finger joints -> gripper width) or None
    max_age_s: float | None = None  # overrides the global max age for this stream


@dataclass(frozen=True)
class ActionConfig:
    """How to derive FrankaFruitSwap-v0 actions from the resampled streams."""

    target_pose: str
    gripper: str
    pos_scale: float = 0.07
    rot_scale: float = 0.2


@dataclass(frozen=True)
class ImportConfig:
    streams: tuple[StreamConfig, ...]
    rate_hz: float = 10.0
    max_age_s: float = 0.12
    stamp: str = "header"
    on_gap: str = "split"
    min_episode_steps: int = 2
    image_size: tuple[int, int] = (32, 32)
    episode_split_topic: str | None = None
    action: ActionConfig | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> ImportConfig:
        if not isinstance(raw, dict):
            raise ImportConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
        known = {
            "streams",
            "rate_hz",
            "max_age_s",
            "stamp",
            "on_gap",
            "min_episode_steps",
            "image_size",
            "episode_split_topic",
            "action",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ImportConfigError(f"{source}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        streams_raw = raw.get("streams")
        if not isinstance(streams_raw, dict) or not streams_raw:
            raise ImportConfigError(f"{source}: 'streams' must be a non-empty mapping of key -> stream")
        streams = tuple(_stream_from_dict(key, value, source) for key, value in streams_raw.items())
        rate = _positive(raw.get("rate_hz", 10.0), "rate_hz", source)
        max_age = _positive(raw.get("max_age_s", 0.12), "max_age_s", source)
        stamp = raw.get("stamp", "header")
        if stamp not in ("header", "log"):
            raise ImportConfigError(f"{source}: stamp must be 'header' or 'log', got {stamp!r}")
        on_gap = raw.get("on_gap", "split")
        if on_gap not in ("split", "drop"):
            raise ImportConfigError(f"{source}: on_gap must be 'split' or 'drop', got {on_gap!r}")
        min_steps = raw.get("min_episode_steps", 2)
        if not isinstance(min_steps, int) or isinstance(min_steps, bool) or min_steps < 1:
            raise ImportConfigError(f"{source}: min_episode_steps must be an integer >= 1, got {min_steps!r}")
        size = raw.get("image_size", [32, 32])
        if isinstance(size, int):
            size = [size, size]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise ImportConfigError(f"{source}: image_size must be [height, width] positive integers, got {size!r}")
        split_topic = raw.get("episode_split_topic")
        if split_topic is not None and not isinstance(split_topic, str):
            raise ImportConfigError(f"{source}: episode_split_topic must be a topic name, got {split_topic!r}")
        action = None
        if raw.get("action") is not None:
            action = _action_from_dict(raw["action"], {s.key: s for s in streams}, source)
        return cls(
            streams, float(rate), float(max_age), stamp, on_gap, min_steps, (size[0], size[1]), split_topic, action
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> ImportConfig:
        import yaml

        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"topics config {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ImportConfigError(f"{path}: not valid YAML ({error})") from error
        return cls.from_dict(raw, source=str(path))


def _positive(value: Any, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ImportConfigError(f"{source}: {name} must be a positive number, got {value!r}")
    return float(value)


def _stream_from_dict(key: str, value: Any, source: str) -> StreamConfig:
    where = f"{source}: streams.{key}"
    if not isinstance(value, dict):
        raise ImportConfigError(f"{where} must be a mapping with 'topic' and 'kind'")
    unknown = sorted(set(value) - {"topic", "kind", "joints", "reduce", "max_age_s"})
    if unknown:
        raise ImportConfigError(f"{where}: unknown key(s) {unknown}")
    if not isinstance(key, str) or not key or "/" in key or key in RESERVED_KEYS:
        raise ImportConfigError(f"{where}: the key must be a non-empty name without '/', not one of {RESERVED_KEYS}")
    topic, kind = value.get("topic"), value.get("kind")
    if not isinstance(topic, str) or not topic.startswith("/"):
        raise ImportConfigError(f"{where}.topic must be an absolute topic name, got {topic!r}")
    if kind not in STREAM_KINDS:
        raise ImportConfigError(f"{where}.kind must be one of {STREAM_KINDS}, got {kind!r}")
    joints = value.get("joints")
    if joints is not None:
        if kind not in ("joint_position", "joint_velocity"):
            raise ImportConfigError(f"{where}.joints only applies to joint_position/joint_velocity streams")
        if not isinstance(joints, list) or not joints or not all(isinstance(j, str) for j in joints):
            raise ImportConfigError(f"{where}.joints must be a non-empty list of joint names, got {joints!r}")
        joints = tuple(joints)
    reduce = value.get("reduce")
    if reduce not in (None, "sum"):
        raise ImportConfigError(f"{where}.reduce must be 'sum' or absent, got {reduce!r}")
    max_age = value.get("max_age_s")
    if max_age is not None:
        max_age = _positive(max_age, f"streams.{key}.max_age_s", source)
    return StreamConfig(key, topic, kind, joints, reduce, max_age)


def _action_from_dict(value: Any, streams: dict[str, StreamConfig], source: str) -> ActionConfig:
    if not isinstance(value, dict):
        raise ImportConfigError(f"{source}: action must be a mapping")
    unknown = sorted(set(value) - {"target_pose", "gripper", "pos_scale", "rot_scale"})
    if unknown:
        raise ImportConfigError(f"{source}: action: unknown key(s) {unknown}")
    for name, kind in (("target_pose", "pose"), ("gripper", "scalar")):
        key = value.get(name)
        if key not in streams or streams[key].kind != kind:
            raise ImportConfigError(f"{source}: action.{name} must name a '{kind}' stream, got {key!r}")
    return ActionConfig(
        value["target_pose"],
        value["gripper"],
        _positive(value.get("pos_scale", 0.07), "action.pos_scale", source),
        _positive(value.get("rot_scale", 0.2), "action.rot_scale", source),
    )


# -------------------------------------------------------------------------------------------- decoding
def deserialize_tolerant(store: Any, rawdata: bytes | memoryview, typename: str) -> tuple[Any, int]:
    """CDR -> message like ``store.deserialize_cdr``, but trailing bytes after the message are allowed.

    Some middlewares pad serialized payloads beyond the 0-3 alignment bytes rosbags accepts. Returns the
    message and the number of trailing bytes.
    """
    import struct

    if len(rawdata) < 4 or bytes(rawdata[:2]) not in {b"\x00\x00", b"\x00\x01"}:
        raise ValueError("invalid or unsupported CDR encapsulation header")
    msgdef = store.get_msgdef(typename)
    func = msgdef.deserialize_cdr_le if rawdata[1] else msgdef.deserialize_cdr_be
    try:
        message, pos = func(rawdata[4:], 0, msgdef.cls, store)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as error:
        raise ValueError(f"payload does not decode as {typename}: {error}") from error
    trailing = len(rawdata) - 4 - pos
    if trailing < 0:
        raise ValueError(f"payload of {len(rawdata)} bytes is shorter than its {typename} content")
    return message, trailing


def decode_image(msg: Any, size: tuple[int, int]) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8) -> RGB uint8 [height, width, 3], resized."""
    from df_agent.optional import require

    require("cv2", extra="teleop")
    import cv2

    encoding = str(msg.encoding).lower()
    if encoding not in IMAGE_CHANNELS:
        raise ValueError(f"image encoding {msg.encoding!r} not supported (supported: {sorted(IMAGE_CHANNELS)})")
    channels = IMAGE_CHANNELS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"image has size {height}x{width}")
    if step < width * channels:
        raise ValueError(f"image step {step} < width {width} x {channels} channels")
    data = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    if data.size < step * height:
        raise ValueError(f"image data has {data.size} bytes, expected step {step} x height {height}")
    rows = data[: step * height].reshape(height, step)[:, : width * channels]  # rows may be padded
    image = rows.reshape(height, width, channels)
    if encoding in ("bgr8", "bgra8"):
        image = image[..., 2::-1] if channels == 4 else image[..., ::-1]
    elif encoding == "rgba8":
        image = image[..., :3]
    elif encoding == "mono8":
        image = np.repeat(image, 3, axis=2)
    if (height, width) != size:
        image = cv2.resize(np.ascontiguousarray(image), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image, dtype=np.uint8)


def _joint_values(msg: Any, spec: StreamConfig, attribute: str) -> np.ndarray:
    values = np.asarray(getattr(msg, attribute), dtype=np.float64)
    names = list(msg.name)
    if len(values) != len(names):
        raise ValueError(f"JointState has {len(names)} names but {len(values)} {attribute} values")
    if spec.joints is not None:
        missing = [j for j in spec.joints if j not in names]
        if missing:
            raise ValueError(f"JointState lacks joint(s) {missing}; it has {names}")
        values = values[[names.index(j) for j in spec.joints]]
    if spec.reduce == "sum":
        values = np.array([values.sum()])
    return values


def _pose_values(msg: Any) -> np.ndarray:
    p, q = msg.pose.position, msg.pose.orientation
    quat = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    norm = np.linalg.norm(quat)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError(f"pose orientation is not a valid quaternion: {quat}")
    quat = quat / norm
    if quat[0] < 0:  # one hemisphere, so consecutive samples do not flip sign
        quat = -quat
    return np.concatenate([[p.x, p.y, p.z], quat])


def _decoder(spec: StreamConfig, image_size: tuple[int, int]) -> Callable[[Any], np.ndarray]:
    if spec.kind == "image":
        return lambda msg: decode_image(msg, image_size)
    if spec.kind == "joint_position":
        return lambda msg: _joint_values(msg, spec, "position")
    if spec.kind == "joint_velocity":
        return lambda msg: _joint_values(msg, spec, "velocity")
    if spec.kind == "pose":
        return _pose_values
    return lambda msg: np.array([float(msg.data)])


@dataclass
class StreamData:
    stamps_ns: np.ndarray  # int64, sorted
    values: np.ndarray  # [n, ...]


def read_bag(path: pathlib.Path, config: ImportConfig) -> tuple[dict[str, StreamData], np.ndarray, dict[str, Any]]:
    """Decode the configured streams of one bag. Returns streams by key, marker stamps (ns) and statistics."""
    from df_agent.optional import require

    require("rosbags", extra="teleop")
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    specs_by_topic: dict[str, list[StreamConfig]] = {}
    for spec in config.streams:
        specs_by_topic.setdefault(spec.topic, []).append(spec)
    decoders = {spec.key: _decoder(spec, config.image_size) for spec in config.streams}
    stamps: dict[str, list[int]] = {spec.key: [] for spec in config.streams}
    values: dict[str, list[np.ndarray]] = {spec.key: [] for spec in config.streams}
    markers: list[int] = []
    stats: dict[str, Any] = {"messages": {}, "padded_messages": 0, "header_stamp_fallbacks": 0}
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # rosbags raises its own error types plus OSError/sqlite/mcap errors
        raise BagImportError(f"{path}: cannot open bag ({type(error).__name__}: {error})") from error
    try:
        connections = [
            c for c in reader.connections if c.topic in specs_by_topic or c.topic == config.episode_split_topic
        ]
        for connection in connections:
            for spec in specs_by_topic.get(connection.topic, []):
                if connection.msgtype not in KIND_MSGTYPES[spec.kind]:
                    raise BagImportError(
                        f"{path}: topic {connection.topic} has type {connection.msgtype}, but stream "
                        f"{spec.key!r} of kind {spec.kind!r} needs one of {sorted(KIND_MSGTYPES[spec.kind])}"
                    )
        present = {c.topic for c in connections}
        absent = sorted({spec.topic for spec in config.streams} - present)
        if absent:
            raise BagImportError(
                f"{path}: configured topic(s) {absent} are not in the bag "
                f"(it has {sorted(c.topic for c in reader.connections)})"
            )
        message_iter = reader.messages(connections=connections)
        while True:
            try:
                connection, log_ns, raw = next(message_iter)
            except StopIteration:
                break
            except Exception as error:
                raise BagImportError(f"{path}: bag storage is corrupt ({type(error).__name__}: {error})") from error
            topic = connection.topic
            stats["messages"][topic] = stats["messages"].get(topic, 0) + 1
            try:
                msg, trailing = deserialize_tolerant(store, raw, connection.msgtype)
            except (ValueError, KeyError) as error:
                raise BagImportError(f"{path}: {topic} message at log time {log_ns} ns: {error}") from error
            if trailing > 3:
                stats["padded_messages"] += 1
            stamp = int(log_ns)
            header = getattr(msg, "header", None)
            if config.stamp == "header" and header is not None:
                header_ns = int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)
                if header_ns > 0:
                    stamp = header_ns
                else:
                    stats["header_stamp_fallbacks"] += 1
            if topic == config.episode_split_topic:
                markers.append(stamp)
            for spec in specs_by_topic.get(topic, []):
                try:
                    value = decoders[spec.key](msg)
                except (ValueError, AttributeError) as error:
                    raise BagImportError(f"{path}: {topic} message stamped {stamp} ns ({spec.key}): {error}") from error
                stamps[spec.key].append(stamp)
                values[spec.key].append(value)
    finally:
        reader.close()
    streams: dict[str, StreamData] = {}
    for spec in config.streams:
        if not stamps[spec.key]:
            raise BagImportError(f"{path}: topic {spec.topic} (stream {spec.key!r}) has no messages")
        shapes = {v.shape for v in values[spec.key]}
        if len(shapes) != 1:
            raise BagImportError(f"{path}: stream {spec.key!r} changes shape between messages: {sorted(shapes)}")
        order = np.argsort(np.asarray(stamps[spec.key], dtype=np.int64), kind="stable")
        streams[spec.key] = StreamData(
            np.asarray(stamps[spec.key], dtype=np.int64)[order], np.stack(values[spec.key])[order]
        )
    return streams, np.sort(np.asarray(markers, dtype=np.int64)), stats


# ------------------------------------------------------------------------------------------ resampling
MISSING, STALE, FRESH = 0, 1, 2


def asof_indices(stamps_ns: np.ndarray, ticks_ns: np.ndarray, max_age_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """For every tick, the index of the latest message stamped at or before it, and its status.

    Status is FRESH (age <= max_age_ns), STALE (older) or MISSING (no message yet; index -1).
    """
    index = np.searchsorted(stamps_ns, ticks_ns, side="right") - 1
    status = np.full(len(ticks_ns), MISSING, dtype=np.int8)
    has = index >= 0
    age = np.where(has, ticks_ns - stamps_ns[np.clip(index, 0, None)], 0)
    status[has] = np.where(age[has] <= max_age_ns, FRESH, STALE)
    return index, status


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


@dataclass
class BagReport:
    bag: str
    ok: bool = False
    error: str | None = None
    ticks: int = 0
    ticks_kept: int = 0
    ticks_trimmed: int = 0  # unusable ticks at an episode's start or end
    ticks_dropped: int = 0  # unusable ticks inside an episode (on_gap: drop) or in splits shorter than min
    gaps: int = 0  # runs of unusable ticks inside an episode
    stale: dict[str, int] = field(default_factory=dict)  # unusable ticks per stream, by cause
    missing: dict[str, int] = field(default_factory=dict)
    episodes: list[int] = field(default_factory=list)  # lengths of the episodes appended
    skipped_short: list[int] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)
    padded_messages: int = 0
    header_stamp_fallbacks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resample_bag(
    streams: dict[str, StreamData], markers_ns: np.ndarray, config: ImportConfig, report: BagReport
) -> list[dict[str, np.ndarray]]:
    """As-of resampling of decoded streams onto ``rate_hz`` ticks, cut into episodes (see module doc)."""
    period_ns = round(1e9 / config.rate_hz)
    start = max(int(s.stamps_ns[0]) for s in streams.values())  # first moment every stream has spoken
    stop = max(int(s.stamps_ns[-1]) for s in streams.values())
    ticks = start + period_ns * np.arange((stop - start) // period_ns + 1, dtype=np.int64)
    report.ticks = len(ticks)
    max_age = {spec.key: round(1e9 * (spec.max_age_s or config.max_age_s)) for spec in config.streams}
    indices, usable = {}, np.ones(len(ticks), dtype=bool)
    statuses = {}
    for key, stream in streams.items():
        indices[key], statuses[key] = asof_indices(stream.stamps_ns, ticks, max_age[key])
        usable &= statuses[key] == FRESH
    for key, status in statuses.items():
        if np.any(status == STALE):
            report.stale[key] = int(np.sum(status == STALE))
        if np.any(status == MISSING):
            report.missing[key] = int(np.sum(status == MISSING))
    # Episode boundaries: bag start/end and, optionally, marker messages.
    segment = np.searchsorted(markers_ns, ticks, side="right") if len(markers_ns) else np.zeros(len(ticks), int)
    episodes: list[dict[str, np.ndarray]] = []
    for seg in np.unique(segment):
        in_seg = np.flatnonzero(segment == seg)
        seg_usable = usable[in_seg]
        runs = _runs(seg_usable)
        if not runs:
            report.ticks_trimmed += len(in_seg)
            continue
        first, last = runs[0][0], runs[-1][1]
        report.ticks_trimmed += first + (len(in_seg) - last)
        report.gaps += len(runs) - 1
        if config.on_gap == "split":
            pieces = [in_seg[a:b] for a, b in runs]
        else:
            interior = in_seg[first:last]
            keep = usable[interior]
            report.ticks_dropped += int(np.sum(~keep))
            pieces = [interior[keep]]
        for piece in pieces:
            if len(piece) < config.min_episode_steps:
                report.skipped_short.append(len(piece))
                report.ticks_dropped += len(piece)
                continue
            episode = {key: streams[key].values[indices[key][piece]] for key in streams}
            episode[TIMESTAMP_KEY] = ticks[piece].astype(np.int64)
            episodes.append(episode)
            report.ticks_kept += len(piece)
    return episodes


def derive_actions(episode: dict[str, np.ndarray], action: ActionConfig) -> np.ndarray:
    """FrankaFruitSwap-v0 actions: the step of the commanded target from this tick to the next.

    The action at tick t is what the operator commanded after observation t: position change of the target
    / pos_scale, its rotation change as a world-frame rotation vector / rot_scale, and the gripper command as
    of tick t+1. The last tick holds still. Replaying these deltas on the env reproduces the target path.
    """
    target = episode[action.target_pose]
    following = np.concatenate([target[1:], target[-1:]])
    dpos = (following[:, :3] - target[:, :3]) / action.pos_scale
    rot = np.stack([
        quaternion_to_rotvec(quaternion_multiply(b, quaternion_conjugate(a)))
        for a, b in zip(target[:, 3:], following[:, 3:])
    ])
    gripper = episode[action.gripper][:, :1]
    gripper = np.concatenate([gripper[1:], gripper[-1:]])
    return np.concatenate([dpos, rot / action.rot_scale, gripper], axis=1).astype(np.float32)


def _to_storage(episode: dict[str, np.ndarray], config: ImportConfig) -> dict[str, np.ndarray]:
    """Replay-buffer dtypes: images stay uint8, tick times int64 ns, everything else float32."""
    out = {TIMESTAMP_KEY: episode[TIMESTAMP_KEY]}
    for spec in config.streams:
        value = episode[spec.key]
        out[spec.key] = value if spec.kind == "image" else value.astype(np.float32)
    if config.action is not None:
        out["action"] = derive_actions(episode, config.action)
    return out


def import_bags(
    bags: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: ImportConfig,
    skip_corrupt: bool = False,
    progress: bool = False,
) -> list[BagReport]:
    """Import each bag into the replay buffer at ``out`` (created if needed; appended to otherwise).

    A bag that cannot be decoded raises ``BagImportError`` (after the earlier bags were committed), or with
    ``skip_corrupt`` is reported and skipped.
    """
    buffer = ReplayBuffer.open_or_create(out)
    reports: list[BagReport] = []
    iterator: Any = bags
    if progress:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="import bags", unit="bag")
    for bag in iterator:
        path = pathlib.Path(bag)
        report = BagReport(bag=str(path))
        reports.append(report)
        try:
            if not path.exists():
                raise BagImportError(f"{path}: no such bag")
            streams, markers, stats = read_bag(path, config)
            report.messages = stats["messages"]
            report.padded_messages = stats["padded_messages"]
            report.header_stamp_fallbacks = stats["header_stamp_fallbacks"]
            episodes = resample_bag(streams, markers, config, report)
        except BagImportError as error:
            report.error = str(error)
            if not skip_corrupt:
                raise
            log.error("skipping %s", error)
            continue
        for episode in episodes:
            buffer.add_episode(_to_storage(episode, config))
            report.episodes.append(len(next(iter(episode.values()))))
        report.ok = True
        log.info(
            "%s: %d episode(s) %s, %d/%d ticks kept, %d gap(s)",
            path,
            len(report.episodes),
            report.episodes,
            report.ticks_kept,
            report.ticks,
            report.gaps,
        )
    return reports
