"""Typed configuration of the ROS 2 bridge and the simulated Franka, loaded from one YAML file.

Every topic name, rate, limit and QoS setting lives here; `RobotConfig.from_dict` validates all of it and
raises `ConfigError` naming the offending key and value, so a bad file fails at lifecycle *configure*
instead of half-way through a motion. Dotted keys (`safety.max_translation_per_step`) address nested
fields; ROS parameters with those names override the file (see `policy_node`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).parent / "configs" / "robot.yaml"
QOS_PRESETS = ("sensor_data", "reliable", "best_effort")
DELTA_BASES = ("commanded", "measured")
GRIPPER_BACKENDS = ("topic", "franka_action")
SIM_BACKENDS = ("franka_scene",)


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class QosConfig:
    preset: str = "reliable"
    depth: int = 10


@dataclass(frozen=True)
class TopicsConfig:
    """Relative names resolve in the node's namespace (`-r __ns:=/arm` moves them all); `~/` is node-private."""

    cameras: dict[str, str] = field(
        default_factory=lambda: {"front": "camera/front/image_raw", "wrist": "camera/wrist/image_raw"}
    )
    joint_states: str = "joint_states"
    ee_pose: str = "franka_robot_state_broadcaster/current_pose"
    target_pose: str = "cartesian_impedance_controller/target_pose"
    gripper_command: str = "gripper/command"
    safety_events: str = "~/safety_events"


@dataclass(frozen=True)
class QosProfilesConfig:
    cameras: QosConfig = field(default_factory=lambda: QosConfig("sensor_data", 5))
    robot_state: QosConfig = field(default_factory=lambda: QosConfig("best_effort", 10))
    commands: QosConfig = field(default_factory=lambda: QosConfig("reliable", 10))


@dataclass(frozen=True)
class SafetyConfig:
    enabled: bool = True
    # The demos' commanded targets stay in x 0.47..0.53, y -0.23..0.21, z 0.048..0.32 m; the floor sits 1.8 cm
    # below their lowest grasp (fingertips still clear the table at z = 0).
    workspace_min: tuple[float, float, float] = (0.25, -0.45, 0.03)
    workspace_max: tuple[float, float, float] = (0.75, 0.45, 0.70)
    # Per-command limits: 1.5x the largest 10 Hz step of the 150 scripted fruit-swap demos (0.0358 m, 0.0710 rad;
    # scripts/measure_demo_motion.py, docs/ros2.md), rounded up: a policy moving like the demos is never clamped.
    max_translation_per_step: float = 0.055  # metres per command
    max_rotation_per_step: float = 0.11  # radians per command
    max_target_distance: float = 0.10  # reject a target further than this from the measured pose (m)
    max_target_angle: float = 0.50  # ... or rotated further than this from it (rad)
    max_command_rate_hz: float = 30.0
    state_timeout_s: float = 0.25  # robot state older than this: stop commanding, hold the pose
    camera_stale_s: float = 0.30  # camera frame older than this: policy sees it as noisy
    camera_missing_s: float = 1.00  # ... older than this (or never received): missing
    policy_timeout_s: float = 5.0  # a policy call unanswered this long: drop its plan and hold the pose


@dataclass(frozen=True)
class NoiseLevelsConfig:
    """Diffusion Forcing noise levels handed to the policy per observation stream (0 = clean, K = missing)."""

    stale: int = 500
    missing: int = 1000


@dataclass(frozen=True)
class BridgeConfig:
    control_rate_hz: float = 10.0
    delta_base: str = "commanded"  # apply deltas to the last commanded target or to the measured pose
    # Policy action units -> metres / radians (envs.franka_swap trains in units of pos_scale=0.05, rot_scale=0.2).
    action_scale: tuple[float, float] = (1.0, 1.0)
    # A late chunk's path is reached over this many ticks (1: at once; 0: never, its deltas restart from the
    # current target). control_loop.py explains why spreading keeps demo-speed motion under the per-step limit.
    catch_up_ticks: int = 5
    finger_joints: tuple[str, str] = ("fr3_finger_joint1", "fr3_finger_joint2")  # summed into proprio's width
    image_size: tuple[int, int] = (32, 32)  # (height, width) the images are resized to for the policy
    noise_levels: NoiseLevelsConfig = field(default_factory=NoiseLevelsConfig)


@dataclass(frozen=True)
class GripperConfig:
    backend: str = "topic"
    action_name: str = "franka_gripper/move"  # franka_action backend
    open_width: float = 0.08  # metres, franka_action backend
    speed: float = 0.1


@dataclass(frozen=True)
class SimConfig:
    backend: str = "franka_scene"
    physics_rate_hz: float = 20.0  # one control period of the scene; joint state and ee pose published each
    camera_rate_hz: float = 15.0
    image_size: int = 32


@dataclass(frozen=True)
class RobotConfig:
    frame_id: str = "fr3_link0"
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    qos: QosProfilesConfig = field(default_factory=QosProfilesConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    gripper: GripperConfig = field(default_factory=GripperConfig)
    sim: SimConfig = field(default_factory=SimConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RobotConfig:
        config = _build(cls, data, source, "")
        _validate(config, source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RobotConfig:
    """Read a YAML config (the packaged default when `path` is None) and apply dotted-key overrides."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value, str(path))
    return RobotConfig.from_dict(data, source=str(path))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; the names used as ROS parameters."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    section = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {section} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {[prefix + u for u in unknown]}; allowed in {section}: {sorted(fields)}"
        )
    values: dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, source, f"{prefix}{name}.")
        else:
            try:
                values[name] = _coerce(default, value, f"{prefix}{name}")
            except ConfigError as error:
                raise ConfigError(f"{source}: {error}") from None
    return cls(**values)


def _coerce(default: Any, value: Any, key: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be finite, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{key} must be a mapping of names to topic strings, got {value!r}")
        return dict(value)
    if isinstance(default, tuple):
        expected = len(default)
        if not isinstance(value, (list, tuple)) or len(value) != expected:
            raise ConfigError(f"{key} must be a list of {expected} numbers, got {value!r}")
        if isinstance(default[0], str):
            if not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{key} must contain non-empty strings, got {value!r}")
            return tuple(value)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise ConfigError(f"{key} must contain finite numbers only, got {value!r}")
        if isinstance(default[0], int) and not all(float(v).is_integer() for v in value):
            raise ConfigError(f"{key} must contain integers only, got {value!r}")
        return tuple(int(v) if isinstance(default[0], int) else float(v) for v in value)
    raise ConfigError(f"{key}: unsupported value {value!r}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _validate(config: RobotConfig, source: str) -> None:
    s, b = config.safety, config.bridge
    _require(b.control_rate_hz > 0, f"{source}: bridge.control_rate_hz must be > 0, got {b.control_rate_hz}")
    _require(
        b.delta_base in DELTA_BASES, f"{source}: bridge.delta_base must be one of {DELTA_BASES}, got {b.delta_base!r}"
    )
    _require(b.catch_up_ticks >= 0, f"{source}: bridge.catch_up_ticks must be >= 0, got {b.catch_up_ticks}")
    _require(all(v > 0 for v in b.image_size), f"{source}: bridge.image_size must be positive, got {b.image_size}")
    _require(
        all(v > 0 for v in b.action_scale), f"{source}: bridge.action_scale must be positive, got {b.action_scale}"
    )
    levels = b.noise_levels
    _require(
        0 < levels.stale <= levels.missing,
        f"{source}: bridge.noise_levels need 0 < stale <= missing, got stale={levels.stale} missing={levels.missing}",
    )
    for name in (
        "max_translation_per_step",
        "max_rotation_per_step",
        "max_target_distance",
        "max_target_angle",
        "max_command_rate_hz",
        "state_timeout_s",
        "camera_stale_s",
        "camera_missing_s",
        "policy_timeout_s",
    ):
        value = getattr(s, name)
        _require(value > 0, f"{source}: safety.{name} must be > 0, got {value}")
    for axis, (low, high) in enumerate(zip(s.workspace_min, s.workspace_max)):
        _require(low < high, f"{source}: safety.workspace_min[{axis}]={low} must be < workspace_max[{axis}]={high}")
    _require(
        s.camera_stale_s <= s.camera_missing_s,
        f"{source}: safety.camera_stale_s ({s.camera_stale_s}) must be <= camera_missing_s ({s.camera_missing_s})",
    )
    _require(
        s.max_target_distance >= s.max_translation_per_step,
        f"{source}: safety.max_target_distance ({s.max_target_distance}) must be >= max_translation_per_step "
        f"({s.max_translation_per_step}), or every step would be rejected",
    )
    _require(config.topics.cameras != {}, f"{source}: topics.cameras must name at least one camera")
    reserved = {"joint_positions", "ee_pose", "proprio"}
    for name in config.topics.cameras:
        _require(name not in reserved, f"{source}: camera name {name!r} clashes with an observation key {reserved}")
    topic_names = [
        *config.topics.cameras.values(),
        config.topics.joint_states,
        config.topics.ee_pose,
        config.topics.target_pose,
        config.topics.gripper_command,
        config.topics.safety_events,
    ]
    for topic in topic_names:
        _require(_valid_topic(topic), f"{source}: {topic!r} is not a valid ROS topic name")
    _require(len(set(topic_names)) == len(topic_names), f"{source}: topic names must be distinct, got {topic_names}")
    for name in ("cameras", "robot_state", "commands"):
        qos = getattr(config.qos, name)
        _require(
            qos.preset in QOS_PRESETS, f"{source}: qos.{name}.preset must be one of {QOS_PRESETS}, got {qos.preset!r}"
        )
        _require(qos.depth >= 1, f"{source}: qos.{name}.depth must be >= 1, got {qos.depth}")
    g = config.gripper
    _require(
        g.backend in GRIPPER_BACKENDS, f"{source}: gripper.backend must be one of {GRIPPER_BACKENDS}, got {g.backend!r}"
    )
    _require(g.open_width > 0 and g.speed > 0, f"{source}: gripper.open_width and gripper.speed must be > 0")
    sim = config.sim
    _require(sim.backend in SIM_BACKENDS, f"{source}: sim.backend must be one of {SIM_BACKENDS}, got {sim.backend!r}")
    for name in ("physics_rate_hz", "camera_rate_hz"):
        _require(getattr(sim, name) > 0, f"{source}: sim.{name} must be > 0, got {getattr(sim, name)}")
    _require(sim.image_size >= 8, f"{source}: sim.image_size must be >= 8, got {sim.image_size}")


def _valid_topic(name: str) -> bool:
    if not name or name.endswith("/") or "//" in name:
        return False
    body = name[1:] if name.startswith(("/", "~")) else name
    if body.startswith("/"):
        body = body[1:]
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/")
    return bool(body) and set(body) <= allowed and not body[0].isdigit()
