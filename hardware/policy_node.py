"""`df_agent_policy`: a ROS 2 lifecycle node that runs a Policy on a Franka through a safety layer.

Lifecycle: *configure* reads the YAML config (ROS parameter `config_file`, any dotted ROS parameter such as
`safety.max_translation_per_step` overriding it) and rejects bad values with a clear error (the transition
fails); creates subscriptions to the cameras, joint states and end-effector pose, the target-pose publisher
and the gripper adapter. *activate* resets the policy and starts the control timer. *deactivate* and
*shutdown* stop the timer and command a hold at the current pose. A transition the current state does not
offer (activate while unconfigured, ...) is refused with an error naming the state and the transitions it
offers, over the `change_state` service as from `request_transition`; the node keeps running.

Names follow ROS conventions: topics are relative (resolved in the node's namespace, so `--ros-args -r
__ns:=/arm` moves them all) and the safety events are private (`~/safety_events`).

Threads: subscription callbacks run in a reentrant callback group and only write the timestamped caches;
the control timer runs in its own mutually exclusive group (so it may run beside them on a MultiThreadedExecutor;
`df-agent deploy ros2` spins a SingleThreadedExecutor by default); the policy samples its chunks in the
`ActionScheduler`'s worker thread. So a slow policy blocks neither message intake nor the tick,
and each tick sees one consistent snapshot.

`report()` has the whole session: timing over every activation and the counts of every safety rule, kept
through cleanup and re-configure.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from hardware.config import DEFAULT_CONFIG_PATH, ConfigError, RobotConfig, load_config
from hardware.control_loop import ControlLoop
from hardware.gripper import GripperAdapter, make_gripper
from hardware.messages import image_to_numpy, msg_to_pose, pose_to_msg, qos_profile, stamp_to_seconds
from hardware.observation import JointReading, ObservationCache
from hardware.safety import RULES, Pose, SafetyDecision
from hardware.timing import TickStats

NODE_NAME = "df_agent_policy"
_NOT_OVERRIDES = {"config_file", "use_sim_time", "start_type_description_service"}
TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")
_TRANSITION_NAMES = {value: name[len("TRANSITION_"):].lower() for name, value in vars(Transition).items()
                     if name.startswith("TRANSITION_") and isinstance(value, int)}


class PolicyNode(LifecycleNode):
    def __init__(
        self,
        policy: Any,
        config_file: str | Path | None = None,
        node_name: str = NODE_NAME,
        parameter_overrides: list[Parameter] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            node_name,
            parameter_overrides=parameter_overrides or [],
            automatically_declare_parameters_from_overrides=True,
            **kwargs,
        )
        if not self.has_parameter("config_file"):
            self.declare_parameter("config_file", str(config_file or DEFAULT_CONFIG_PATH))
        self.policy = policy
        self.config: RobotConfig | None = None
        self.last_config: RobotConfig | None = None  # kept through cleanup, for the report
        self.configure_error: str | None = None
        self.loop: ControlLoop | None = None
        self.cache: ObservationCache | None = None
        self.stats = TickStats()
        self._tick_lock = threading.Lock()
        self._timer = None
        self.active = False
        self._entities: list[Any] = []
        self._gripper: GripperAdapter | None = None
        self._target_publisher = None
        self._events_publisher = None
        self._sensor_group = ReentrantCallbackGroup()
        self._control_group = MutuallyExclusiveCallbackGroup()
        # Session totals, kept when cleanup drops the loop: safety counts and the scheduler's chunk statistics.
        self._safety_totals: dict[str, int] = dict.fromkeys(RULES, 0)
        self._chunk_totals: dict[str, int] = {}
        self._latencies: list[float] = []
        self.last_measured: Pose | None = None
        self.last_commanded: Pose | None = None
        self.refused_transitions: list[str] = []
        if hasattr(self, "_service_change_state"):  # refuse unavailable transitions instead of raising
            self._change_state_handler = self._service_change_state.callback
            self._service_change_state.callback = self._on_change_state_request

    # ---------------------------------------------------------------- lifecycle
    def lifecycle_state(self) -> str:
        """'unconfigured', 'inactive', 'active' or 'finalized' (the label the get_state service reports)."""
        return self._state_machine.current_state[1]

    def available_transitions(self) -> dict[int, str]:
        """id -> label of the transitions the current state offers."""
        return {t[0]: t[1] for t in self._state_machine.available_transitions}

    def _refuse(self, requested: str) -> None:
        offered = sorted(set(self.available_transitions().values()))
        message = (f"transition {requested!r} refused: not available from state {self.lifecycle_state()!r} "
                   f"(available: {', '.join(offered) or 'none'})")
        self.refused_transitions.append(message)
        self.get_logger().error(message)

    def request_transition(self, name: str) -> bool:
        """Trigger `name` (configure, activate, deactivate, cleanup, shutdown); False, logged, if refused or failed."""
        if name not in TRANSITIONS:
            raise ValueError(f"unknown lifecycle transition {name!r}; transitions: {TRANSITIONS}")
        labels = {label.split("_")[-1] for label in self.available_transitions().values()}
        if name not in labels:
            self._refuse(name)
            return False
        outcome = getattr(self, f"trigger_{name}")()
        return outcome == TransitionCallbackReturn.SUCCESS

    def _on_change_state_request(self, request: Any, response: Any) -> Any:
        available = self.available_transitions()
        requested = request.transition.label or _TRANSITION_NAMES.get(request.transition.id,
                                                                       f"id {request.transition.id}")
        valid = request.transition.label in available.values() if request.transition.label else (
            request.transition.id in available)
        if not valid:
            self._refuse(requested)
            response.success = False
            return response
        return self._change_state_handler(request, response)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        overrides = {
            name: parameter.value
            for name, parameter in self._parameters.items()
            if name not in _NOT_OVERRIDES and parameter.type_ != Parameter.Type.NOT_SET
        }
        overrides = {k: list(v) if isinstance(v, (tuple, np.ndarray)) else v for k, v in overrides.items()}
        path = self.get_parameter("config_file").value
        try:
            config = load_config(path, overrides)
        except ConfigError as error:
            self.configure_error = str(error)
            self.get_logger().error(f"configure rejected: {error}")
            return TransitionCallbackReturn.FAILURE
        self.config = config
        self.configure_error = None
        self.cache = ObservationCache([*(f"camera/{c}" for c in config.topics.cameras), "joint_states", "ee_pose"])
        self.loop = ControlLoop(config, self.policy)
        self.stats.begin(self.loop.period_s)
        camera_qos = qos_profile(config.qos.cameras)
        state_qos = qos_profile(config.qos.robot_state)
        command_qos = qos_profile(config.qos.commands)
        for camera, topic in config.topics.cameras.items():
            self._entities.append(
                self.create_subscription(
                    Image,
                    topic,
                    self._camera_callback(f"camera/{camera}"),
                    camera_qos,
                    callback_group=self._sensor_group,
                )
            )
        self._entities.append(
            self.create_subscription(
                JointState,
                config.topics.joint_states,
                self._on_joint_states,
                state_qos,
                callback_group=self._sensor_group,
            )
        )
        self._entities.append(
            self.create_subscription(
                PoseStamped, config.topics.ee_pose, self._on_ee_pose, state_qos, callback_group=self._sensor_group
            )
        )
        self._target_publisher = self.create_publisher(PoseStamped, config.topics.target_pose, command_qos)
        self._events_publisher = self.create_publisher(String, config.topics.safety_events, 50)
        # The timer runs from configure to cleanup and ticks only while active: cancelling or destroying a
        # timer the executor has already picked up raises inside the executor (rclpy), a flag does not.
        self._timer = self.create_timer(
            1.0 / config.bridge.control_rate_hz, self._on_tick, callback_group=self._control_group
        )
        try:
            self._gripper = make_gripper(self, config, command_qos)
        except ConfigError as error:
            self.configure_error = str(error)
            self.get_logger().error(f"configure rejected: {error}")
            self._destroy_entities()
            self._drop_loop()
            self.config, self.cache = None, None
            return TransitionCallbackReturn.FAILURE
        if config.safety.enabled and config.bridge.control_rate_hz > config.safety.max_command_rate_hz:
            self.get_logger().warning(
                f"bridge.control_rate_hz {config.bridge.control_rate_hz} exceeds safety.max_command_rate_hz "
                f"{config.safety.max_command_rate_hz}: the rate limit will drop some ticks' commands"
            )
        self.get_logger().info(
            f"configured from {path}: control {config.bridge.control_rate_hz} Hz, target -> "
            f"{self._target_publisher.topic_name}, safety {'on' if config.safety.enabled else 'OFF'}"
        )
        self.last_config = config
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.config is not None and self.loop is not None
        self.loop.reset()
        self.stats.begin(self.loop.period_s)
        with self._tick_lock:
            self.active = True
        self.get_logger().info("activated: running the policy")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_and_hold("deactivate")
        self.get_logger().info(f"deactivated; control loop {json.dumps(self.report()['loop'])}")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self._drop_loop()
        self.config, self.cache = None, None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self._stop_and_hold("shutdown")
        self._destroy_entities()
        self._drop_loop()
        return TransitionCallbackReturn.SUCCESS

    # ---------------------------------------------------------------- report
    def report(self) -> dict[str, Any]:
        """Timing and safety counts of the whole session (every activation, through cleanups)."""
        safety = dict(self._safety_totals)
        chunks = dict(self._chunk_totals)
        latencies = list(self._latencies)
        loop = self.loop
        if loop is not None:
            for rule, count in loop.safety.counts.items():
                safety[rule] = safety.get(rule, 0) + count
            for key, count in loop.scheduler.counts.items():
                chunks[key] = chunks.get(key, 0) + count
            latencies += loop.scheduler.latencies
        values = np.asarray(latencies)

        def ms(q: float) -> float | None:
            return round(float(np.quantile(values, q)) * 1e3, 3) if values.size else None

        timing = {**self.stats.summary(), **chunks, "policy_latency_p50_ms": ms(0.5),
                  "policy_latency_p95_ms": ms(0.95), "policy_latency_max_ms": ms(1.0)}
        return {"loop": timing, "safety": safety}

    def _drop_loop(self) -> None:
        loop, self.loop = self.loop, None
        if loop is None:
            return
        for rule, count in loop.safety.counts.items():
            self._safety_totals[rule] = self._safety_totals.get(rule, 0) + count
        for key, count in loop.scheduler.counts.items():
            self._chunk_totals[key] = self._chunk_totals.get(key, 0) + count
        self._latencies += loop.scheduler.latencies
        loop.close()

    # ---------------------------------------------------------------- callbacks
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _camera_callback(self, stream: str):
        def callback(msg: Image) -> None:
            try:
                image = image_to_numpy(msg)
            except ValueError as error:
                self.get_logger().warning(f"{stream}: dropped frame: {error}", throttle_duration_sec=2.0)
                return
            self._store(stream, image, msg.header.stamp)

        return callback

    def _on_joint_states(self, msg: JointState) -> None:
        reading = JointReading(tuple(msg.name), np.asarray(msg.position, dtype=np.float64))
        self._store("joint_states", reading, msg.header.stamp)

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        try:
            pose = msg_to_pose(msg)
        except ValueError as error:
            self.get_logger().warning(f"ee pose dropped: {error}", throttle_duration_sec=2.0)
            return
        if not np.all(np.isfinite(pose.position)):
            self.get_logger().warning("ee pose dropped: non-finite position", throttle_duration_sec=2.0)
            return
        self.last_measured = pose
        self._store("ee_pose", pose, msg.header.stamp)

    def _store(self, stream: str, value: Any, stamp: Any) -> None:
        cache = self.cache  # a callback may still run while cleanup drops the cache
        if cache is not None:
            cache.update(stream, value, stamp_to_seconds(stamp), self._now())

    def _on_tick(self) -> None:
        with self._tick_lock:
            if not self.active or self.loop is None:
                return
            started = time.perf_counter()
            result = self.loop.tick(self.cache.snapshot(self._now()), time.monotonic())
            self._execute(result.decision)
            self.stats.record(started, time.perf_counter(), result.decision.target is not None)

    # ---------------------------------------------------------------- helpers
    def _execute(self, decision: SafetyDecision) -> None:
        # Each event was already logged by the safety layer (python logging); here it also goes on a topic.
        for event in decision.events:
            payload = {"rule": event.rule, "message": event.message, "time": self._now()}
            self._events_publisher.publish(String(data=json.dumps(payload)))
        if decision.target is not None:
            stamp = self.get_clock().now().to_msg()
            self._target_publisher.publish(pose_to_msg(decision.target, stamp, self.config.frame_id))
            self.last_commanded = decision.target
        if decision.gripper is not None and self._gripper is not None:
            self._gripper.command(decision.gripper, self._now())

    def _stop_and_hold(self, reason: str) -> None:
        with self._tick_lock:
            self.active = False
            if self.loop is not None and self.cache is not None:
                self._execute(self.loop.hold(self.cache.snapshot(self._now()), reason))

    def _destroy_entities(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for entity in self._entities:
            self.destroy_subscription(entity)
        self._entities = []
        for publisher in (self._target_publisher, self._events_publisher):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._target_publisher = self._events_publisher = None
        if self._gripper is not None:
            self._gripper.close()
            self._gripper = None
