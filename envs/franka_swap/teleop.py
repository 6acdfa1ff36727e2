"""A scripted teleoperator that solves the fruit swap like a person with a VR controller would, and records
each demonstration as a ROS 2 bag with the topics of a real Franka setup.

The operator sees where the fruits are (it reads their positions from the simulator, as a person reads them
from the scene), then moves the end-effector target along smooth minimum-jerk paths. Human-like variation:
every demonstration samples its own operator style (speed, hover height, grasp depth, pauses, wrist yaw),
every segment its own speed, and transport paths wobble by a few millimetres; the place position is
jittered inside the slot. Moves follow the paper: the fruit in A goes to the empty C first, the other fruit
takes its slot, then the first fruit goes to the slot the other one left — so the same intermediate layout
(e.g. a fruit in C and the other in A) needs different next moves depending on the initial layout.

Recorded topics (same names as ``hardware/configs/robot.yaml``, so simulated and real demos share one
import path):
  /camera/front/image_raw, /camera/wrist/image_raw    sensor_msgs/msg/Image (rgb8), camera rate
  /joint_states                                       sensor_msgs/msg/JointState, control rate
  /franka_robot_state_broadcaster/current_pose        geometry_msgs/msg/PoseStamped, control rate
  /cartesian_impedance_controller/target_pose         geometry_msgs/msg/PoseStamped (commanded), control rate
  /gripper/command                                    std_msgs/msg/Float64 (1 = open, 0 = closed)
  /teleop/episode_marker                              std_msgs/msg/String, "start" and "end"
Header stamps are the simulated time at which the data was measured (the commanded target: when it was
sent); a message is logged into the bag a little later (a few milliseconds of transport latency), as a
recorder on a real robot logs messages on arrival.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from envs.franka_swap.env import FrankaFruitSwapEnv, quat_multiply, rotvec_to_quat
from envs.franka_swap.scene import DOWN_QUAT_WXYZ, FRUIT_NAMES, SLOT_POSITIONS, FrankaScene

log = logging.getLogger(__name__)

TOPICS = {
    "front": "/camera/front/image_raw",
    "wrist": "/camera/wrist/image_raw",
    "joint_states": "/joint_states",
    "ee_pose": "/franka_robot_state_broadcaster/current_pose",
    "target_pose": "/cartesian_impedance_controller/target_pose",
    "gripper_command": "/gripper/command",
    "marker": "/teleop/episode_marker",
}
FRAME_ID = "fr3_link0"
BAG_EPOCH_NS = 1_767_225_600 * 10**9  # 2026-01-01 00:00 UTC: stamps look like a real recording's
HOVER_MARGIN = 0.09  # lift fruits this far above the table before moving sideways (metres)


@dataclass(frozen=True)
class OperatorStyle:
    """One person's way of doing the task, sampled per demonstration."""

    speed: float  # cruising speed of the end effector, m/s
    hover_height: float  # TCP height while moving between slots, m
    grasp_offset: float  # TCP height above the fruit's centre when closing, m
    release_offset: float  # TCP height above the fruit's resting centre when opening, m
    grip_hold: float  # seconds waited after closing before lifting
    release_hold: float  # seconds waited after opening
    pause: float  # longest idle pause between moves, s
    wobble: float  # amplitude of path wobble, m
    yaw_range: float  # wrist yaw varies up to this much per move, rad

    @staticmethod
    def sample(rng: np.random.Generator) -> OperatorStyle:
        return OperatorStyle(
            speed=float(rng.uniform(0.18, 0.30)),
            hover_height=float(rng.uniform(0.13, 0.19)),
            grasp_offset=float(rng.uniform(0.020, 0.026)),
            release_offset=float(rng.uniform(0.022, 0.028)),
            grip_hold=float(rng.uniform(0.35, 0.6)),
            release_hold=float(rng.uniform(0.25, 0.5)),
            pause=float(rng.uniform(0.0, 0.6)),
            wobble=float(rng.uniform(0.0, 0.004)),
            yaw_range=float(rng.uniform(0.0, 0.35)),
        )


@dataclass(frozen=True)
class TeleopCommand:
    target_position: np.ndarray
    target_quaternion: np.ndarray  # w, x, y, z
    gripper: float  # 1 = open, 0 = closed


def swap_moves(initial_layout: dict[str, str]) -> list[tuple[str, str, str]]:
    """(fruit, from slot, to slot) for swapping the two fruits through the empty slot C."""
    by_slot = {slot: fruit for fruit, slot in initial_layout.items()}
    if sorted(by_slot) != ["A", "B"]:
        raise ValueError(f"initial layout must fill slots A and B, got {initial_layout}")
    first, second = by_slot["A"], by_slot["B"]
    return [(first, "A", "C"), (second, "B", "A"), (first, "C", "B")]


def _min_jerk(alpha: np.ndarray) -> np.ndarray:
    return alpha**3 * (10 - 15 * alpha + 6 * alpha**2)


class ScriptedTeleoperator:
    """Generates one command per control period of ``scene`` until the swap is done."""

    def __init__(
        self,
        scene: FrankaScene,
        initial_layout: dict[str, str],
        rng: np.random.Generator,
        style: OperatorStyle | None = None,
    ) -> None:
        self.scene = scene
        self.rng = rng
        self.style = style or OperatorStyle.sample(rng)
        self.moves = swap_moves(initial_layout)
        self._position = scene.target_position.copy()
        self._quat = scene.target_quaternion.copy()
        self._gripper = 1.0

    def _command(self) -> TeleopCommand:
        return TeleopCommand(self._position.copy(), self._quat.copy(), self._gripper)

    def _go(self, goal: np.ndarray, goal_quat: np.ndarray | None = None, wobble: bool = False):
        """Minimum-jerk path from the current target to ``goal`` at a speed sampled around the style's."""
        start, start_quat = self._position.copy(), self._quat.copy()
        distance = float(np.linalg.norm(goal - start))
        speed = self.style.speed * float(self.rng.uniform(0.8, 1.2))
        duration = max(0.5, distance / speed * 1.875)  # min-jerk peak speed is 1.875x the mean
        steps = max(1, round(duration / self.scene.dt))
        alphas = _min_jerk(np.arange(1, steps + 1) / steps)
        phase = float(self.rng.uniform(0, 2 * np.pi))
        sideways = np.cross(goal - start, [0.0, 0.0, 1.0])
        norm = np.linalg.norm(sideways)
        sideways = sideways / norm if norm > 1e-6 else np.zeros(3)
        for i, alpha in enumerate(alphas):
            self._position = start + (goal - start) * alpha
            if wobble:
                self._position = self._position + sideways * self.style.wobble * np.sin(
                    np.pi * (i + 1) / steps
                ) * np.sin(phase + 6 * np.pi * (i + 1) / steps)
            if goal_quat is not None:
                self._quat = _slerp(start_quat, goal_quat, float(alpha))
            yield self._command()

    def _hold(self, seconds: float):
        for _ in range(max(1, round(seconds / self.scene.dt))):
            yield self._command()

    def commands(self) -> Iterator[TeleopCommand]:
        style = self.style
        for fruit, _source, destination in self.moves:
            # Look at the fruit (a person's estimate is a few millimetres off).
            fruit_pos = self.scene.fruit_position(fruit) + np.append(self.rng.normal(0, 0.002, 2), 0.0)
            yaw = rotvec_to_quat(np.array([0.0, 0.0, self.rng.uniform(-style.yaw_range, style.yaw_range)]))
            grasp_quat = quat_multiply(yaw, DOWN_QUAT_WXYZ)
            hover = max(style.hover_height, fruit_pos[2] + HOVER_MARGIN)
            yield from self._go(np.array([fruit_pos[0], fruit_pos[1], hover]), grasp_quat, wobble=True)
            yield from self._go(np.array([fruit_pos[0], fruit_pos[1], fruit_pos[2] + style.grasp_offset]))
            yield from self._hold(float(self.rng.uniform(0.15, 0.3)))  # let the arm settle before closing
            self._gripper = 0.0
            yield from self._hold(style.grip_hold)
            yield from self._go(np.array([fruit_pos[0], fruit_pos[1], hover]))
            place = SLOT_POSITIONS[destination].copy()
            radius, angle = 0.012 * np.sqrt(self.rng.random()), self.rng.uniform(0, 2 * np.pi)
            place[:2] += radius * np.array([np.cos(angle), np.sin(angle)])
            yield from self._go(np.array([place[0], place[1], hover]), wobble=True)
            release_z = self.scene.fruit_radius(fruit) + style.release_offset
            yield from self._go(np.array([place[0], place[1], release_z]))
            self._gripper = 1.0
            yield from self._hold(style.release_hold)
            yield from self._go(np.array([place[0], place[1], hover]))
            yield from self._hold(float(self.rng.uniform(0.0, style.pause)) + 0.05)
        yield from self._go(np.array([0.5, 0.0, 0.3]), DOWN_QUAT_WXYZ)
        yield from self._hold(0.5)


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    if np.dot(a, b) < 0:
        b = -b
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    if dot > 0.9995:
        out = a + t * (b - a)
        return out / np.linalg.norm(out)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b) / np.sin(theta)


# ------------------------------------------------------------------------------------------- recording
@dataclass
class DemoResult:
    path: str
    seed: int
    success: bool
    initial_layout: dict[str, str]
    final_layout: dict[str, str | None]
    control_steps: int
    duration_s: float
    style: dict[str, float]


class _BagWriter:
    """Serialises messages with the rosbags ROS 2 Jazzy typestore (no ROS installation needed)."""

    def __init__(self, path: pathlib.Path, storage: str) -> None:
        from df_agent.optional import require

        require("rosbags", extra="teleop")
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"bag storage must be one of {sorted(plugins)}, got {storage!r}")
        self.store = get_typestore(Stores.ROS2_JAZZY)
        self.types = self.store.types
        self._writer = Writer(path, version=9, storage_plugin=plugins[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}

    def write(self, topic: str, msgtype: str, message: object, log_time_ns: int) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._connections[topic] = connection
        self._writer.write(connection, int(log_time_ns), self.store.serialize_cdr(message, msgtype))

    def close(self) -> None:
        self._writer.close()


class _Messages:
    """Builders for the ROS message objects of the recorded topics."""

    def __init__(self, types: dict) -> None:
        self.t = types

    def header(self, stamp_ns: int, frame_id: str = FRAME_ID):
        time = self.t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // 10**9), nanosec=int(stamp_ns % 10**9))
        return self.t["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    def image(self, stamp_ns: int, rgb: np.ndarray, frame_id: str):
        height, width, _ = rgb.shape
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns, frame_id),
            height=height,
            width=width,
            encoding="rgb8",
            is_bigendian=0,
            step=width * 3,
            data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
        )

    def joint_state(self, stamp_ns: int, names, positions, velocities):
        return self.t["sensor_msgs/msg/JointState"](
            header=self.header(stamp_ns),
            name=list(names),
            position=np.asarray(positions, dtype=np.float64),
            velocity=np.asarray(velocities, dtype=np.float64),
            effort=np.zeros(0, dtype=np.float64),
        )

    def pose(self, stamp_ns: int, position, quat_wxyz):
        geometry = self.t
        return geometry["geometry_msgs/msg/PoseStamped"](
            header=self.header(stamp_ns),
            pose=geometry["geometry_msgs/msg/Pose"](
                position=geometry["geometry_msgs/msg/Point"](
                    x=float(position[0]), y=float(position[1]), z=float(position[2])
                ),
                orientation=geometry["geometry_msgs/msg/Quaternion"](
                    x=float(quat_wxyz[1]), y=float(quat_wxyz[2]), z=float(quat_wxyz[3]), w=float(quat_wxyz[0])
                ),
            ),
        )

    def float64(self, value: float):
        return self.t["std_msgs/msg/Float64"](data=float(value))

    def string(self, value: str):
        return self.t["std_msgs/msg/String"](data=value)


def record_demonstration(
    path: str | pathlib.Path,
    seed: int,
    image_size: int = 64,
    camera_every: int = 2,
    storage: str = "mcap",
    max_seconds: float = 60.0,
    env: FrankaFruitSwapEnv | None = None,
) -> DemoResult:
    """Run one scripted demonstration from the env's seeded random layout and write it as a rosbag2.

    The scene runs at its control rate (20 Hz by default): joint states, the end-effector pose, the commanded
    target and the gripper command are published every period, camera images every ``camera_every`` periods.
    """
    path = pathlib.Path(path)
    if path.exists():
        raise FileExistsError(f"bag {path} already exists")
    if camera_every < 1:
        raise ValueError(f"camera_every must be >= 1, got {camera_every}")
    own_env = env is None
    env = env or FrankaFruitSwapEnv(image_size=image_size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    scene = env.scene
    teleop = ScriptedTeleoperator(scene, env.initial_layout, rng)
    writer = _BagWriter(path, storage)
    msgs = _Messages(writer.types)
    start_ns = BAG_EPOCH_NS + seed * 3_600 * 10**9  # one hour apart per seed
    steps = 0

    def latency_ns(low_ms: float, high_ms: float) -> int:
        return int(rng.uniform(low_ms, high_ms) * 1e6)

    def publish_state(stamp_ns: int) -> None:
        pos, quat = scene.ee_pose()
        writer.write(
            TOPICS["joint_states"],
            "sensor_msgs/msg/JointState",
            msgs.joint_state(stamp_ns, scene.joint_names, scene.joint_positions(), scene.joint_velocities()),
            stamp_ns + latency_ns(0.2, 1.5),
        )
        writer.write(
            TOPICS["ee_pose"],
            "geometry_msgs/msg/PoseStamped",
            msgs.pose(stamp_ns, pos, quat),
            stamp_ns + latency_ns(0.2, 1.5),
        )
        if steps % camera_every == 0:
            for camera in ("front", "wrist"):
                # Cameras deliver frames later than robot state (exposure + transfer).
                writer.write(
                    TOPICS[camera],
                    "sensor_msgs/msg/Image",
                    msgs.image(stamp_ns, scene.render(camera), f"{camera}_camera_optical_frame"),
                    stamp_ns + latency_ns(8.0, 25.0),
                )

    try:
        writer.write(TOPICS["marker"], "std_msgs/msg/String", msgs.string("start"), start_ns)
        publish_state(start_ns)
        max_steps = round(max_seconds / scene.dt)
        for command in teleop.commands():
            if steps >= max_steps:
                break
            stamp_ns = start_ns + round(scene.time * 1e9)
            scene.set_target_pose(command.target_position, command.target_quaternion)
            scene.set_gripper(command.gripper)
            writer.write(
                TOPICS["target_pose"],
                "geometry_msgs/msg/PoseStamped",
                msgs.pose(stamp_ns, command.target_position, command.target_quaternion),
                stamp_ns + latency_ns(0.1, 0.5),
            )
            writer.write(
                TOPICS["gripper_command"],
                "std_msgs/msg/Float64",
                msgs.float64(command.gripper),
                stamp_ns + latency_ns(0.1, 0.5),
            )
            scene.step()
            steps += 1
            publish_state(start_ns + round(scene.time * 1e9))
        end_ns = start_ns + round(scene.time * 1e9) + 30_000_000
        writer.write(TOPICS["marker"], "std_msgs/msg/String", msgs.string("end"), end_ns)
    finally:
        writer.close()
    result = DemoResult(
        path=str(path),
        seed=seed,
        success=env.is_success(),
        initial_layout=dict(env.initial_layout),
        final_layout=env.current_layout(),
        control_steps=steps,
        duration_s=steps * scene.dt,
        style=asdict(teleop.style),
    )
    if own_env:
        env.close()
    log.info("demo %s: success=%s, %d steps (%.1f s)", path, result.success, steps, result.duration_s)
    return result


def run_teleop_in_env(env: FrankaFruitSwapEnv, seed: int) -> tuple[bool, int]:
    """Drive the scene with the scripted operator without recording; returns (success, control steps)."""
    env.reset(seed=seed)
    teleop = ScriptedTeleoperator(env.scene, env.initial_layout, np.random.default_rng(seed))
    steps = 0
    for command in teleop.commands():
        env.scene.set_target_pose(command.target_position, command.target_quaternion)
        env.scene.set_gripper(command.gripper)
        env.scene.step()
        steps += 1
    return env.is_success(), steps


__all__ = [
    "FRUIT_NAMES",
    "TOPICS",
    "DemoResult",
    "OperatorStyle",
    "ScriptedTeleoperator",
    "record_demonstration",
    "run_teleop_in_env",
    "swap_moves",
]
