"""DDS scenarios for the bridge, run one per process inside a private network namespace.

Usage: python ros2_scenarios.py SCENARIO OUT.json  (test_ros2_bridge.py runs it through hardware.netns).

Each scenario starts the real `df_agent_policy` lifecycle node and a `ProbeRobot` node that speaks the
robot's topics over real Fast DDS (state and camera publishers it can pause, recorders of what the bridge
commands), and writes what it observed as JSON for the test to assert on.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from hardware.config import load_config
from hardware.messages import joint_state_msg, msg_to_pose, numpy_to_image, pose_to_msg, qos_profile
from hardware.policy_node import PolicyNode
from hardware.safety import Pose
from hardware.spin import spin_once
from policies.scripted import ReachTargetPolicy, ReplayActionsPolicy

DOWN = [0.0, 1.0, 0.0, 0.0]  # tool pointing down, as the Franka usually is
CONFIG = load_config()
EXECUTORS: list[MultiThreadedExecutor] = []  # shut down before rclpy, so no callback outlives the context


class RecordingPolicy:
    """Wraps a policy and records the noise levels and observation keys it was given each tick."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.noise_levels: list[dict[str, int]] = []
        self.keys: list[str] = []

    def reset(self, num_envs: int | None = None, **kwargs: Any) -> None:
        self.inner.reset(num_envs)

    def act(self, observation: dict[str, np.ndarray], noise_level: Any = 0) -> np.ndarray:
        self.keys = sorted(observation)
        self.noise_levels.append({key: int(value[0]) for key, value in noise_level.items()})
        return self.inner.act(observation, noise_level)


class ProbeRobot(Node):
    """A stand-in robot on the real topics: publishes a fixed state, records what the bridge sends."""

    def __init__(self, position: list[float], events_topic: str = "/df_agent_policy/safety_events") -> None:
        super().__init__("probe_robot")
        self.pose = Pose.of(position, DOWN)
        self.publish_state = True
        self.publish_cameras = dict.fromkeys(CONFIG.topics.cameras, True)
        self.targets: list[tuple[float, list[float]]] = []
        self.events: list[dict[str, Any]] = []
        self.gripper: list[float] = []
        state_qos = qos_profile(CONFIG.qos.robot_state)
        self._pose_pub = self.create_publisher(PoseStamped, CONFIG.topics.ee_pose, state_qos)
        self._joint_pub = self.create_publisher(JointState, CONFIG.topics.joint_states, state_qos)
        self._cameras = {
            name: self.create_publisher(Image, topic, qos_profile(CONFIG.qos.cameras))
            for name, topic in CONFIG.topics.cameras.items()
        }
        command_qos = qos_profile(CONFIG.qos.commands)
        self.create_subscription(PoseStamped, CONFIG.topics.target_pose, self._on_target, command_qos)
        self.create_subscription(String, events_topic, self._on_event, 50)  # the bridge's private ~/safety_events
        self.create_subscription(Float64, CONFIG.topics.gripper_command, lambda m: self.gripper.append(m.data), 10)
        self.create_timer(0.02, self._publish_state)
        self.create_timer(0.05, self._publish_cameras)

    def _publish_state(self) -> None:
        if not self.publish_state:
            return
        stamp = self.get_clock().now().to_msg()
        self._pose_pub.publish(pose_to_msg(self.pose, stamp, "fr3_link0"))
        self._joint_pub.publish(
            joint_state_msg([f"fr3_joint{i}" for i in range(1, 8)], np.zeros(7), np.zeros(7), stamp)
        )

    def _publish_cameras(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for name, publisher in self._cameras.items():
            if self.publish_cameras[name]:
                publisher.publish(numpy_to_image(np.full((12, 16, 3), 100, np.uint8), stamp, name))

    def _on_target(self, msg: PoseStamped) -> None:
        pose = msg_to_pose(msg)
        self.targets.append((time.monotonic(), [float(v) for v in pose.as_array()]))

    def _on_event(self, msg: String) -> None:
        self.events.append(json.loads(msg.data))


def wait_for_target(executor: MultiThreadedExecutor, probe: ProbeRobot, pose: np.ndarray, since: int,
                    timeout: float = 10.0) -> None:
    """Spin until the probe has received a target equal to `pose` (index >= since), or `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(np.allclose(target, pose, atol=1e-6) for _, target in probe.targets[since:]):
            return
        spin_for(executor, 0.05)


def spin_for(executor: MultiThreadedExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        spin_once(executor, 0.01)


def wait_for_state(executor: MultiThreadedExecutor, node: PolicyNode, timeout: float = 10.0) -> bool:
    """Spin until the bridge has a fresh robot state in its cache (discovery done)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        spin_once(executor, 0.01)
        snapshot = node.cache.snapshot(node.get_clock().now().nanoseconds * 1e-9)
        if snapshot.value("ee_pose") is not None and snapshot.value("joint_states") is not None:
            return True
    return False


def setup(policy: Any, position: list[float], overrides: dict[str, Any] | None = None):
    parameters = [Parameter(key, value=value) for key, value in (overrides or {}).items()]
    node = PolicyNode(policy, parameter_overrides=parameters)
    probe = ProbeRobot(position)
    executor = MultiThreadedExecutor(num_threads=3)
    EXECUTORS.append(executor)
    executor.add_node(node)
    executor.add_node(probe)
    return node, probe, executor


def start(node: PolicyNode, executor: MultiThreadedExecutor) -> None:
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError(f"configure failed: {node.configure_error}")
    if not wait_for_state(executor, node):
        raise RuntimeError("bridge never received the probe robot's state")
    node.trigger_activate()


def rules(events: list[dict[str, Any]]) -> list[str]:
    return sorted({event["rule"] for event in events})


# ------------------------------------------------------------------------------------------------ scenarios
def call(executor: MultiThreadedExecutor, client: Any, request: Any, timeout: float = 10.0) -> Any:
    if not client.wait_for_service(timeout_sec=timeout):
        raise RuntimeError(f"service {client.srv_name} not available")
    future = client.call_async(request)
    end = time.monotonic() + timeout
    while not future.done() and time.monotonic() < end:
        spin_once(executor, 0.01)
    if not future.done():
        raise RuntimeError(f"service {client.srv_name} did not answer")
    return future.result()


def scenario_lifecycle() -> dict[str, Any]:
    """Drive the bridge through its lifecycle with the standard lifecycle services, as a launch file would."""
    node, probe, executor = setup(ReachTargetPolicy([0.6, 0.0, 0.4]), [0.5, 0.0, 0.4])
    get_state = probe.create_client(GetState, "/df_agent_policy/get_state")
    change_state = probe.create_client(ChangeState, "/df_agent_policy/change_state")

    def state() -> str:
        return call(executor, get_state, GetState.Request()).current_state.label

    def transition(transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return bool(call(executor, change_state, request).success)

    # Not offered while unconfigured: refused with a message, the node (and its services) carry on.
    refused = [transition(Transition.TRANSITION_ACTIVATE), node.request_transition("deactivate")]
    states = [state()]
    publishers_before = node.count_publishers(CONFIG.topics.target_pose)  # the probe does not publish it
    ok = [transition(Transition.TRANSITION_CONFIGURE)]
    states.append(state())
    publishers_configured = node.count_publishers(CONFIG.topics.target_pose)
    wait_for_state(executor, node)
    spin_for(executor, 0.5)
    targets_while_inactive = len(probe.targets)
    ok.append(transition(Transition.TRANSITION_ACTIVATE))
    states.append(state())
    spin_for(executor, 1.5)
    targets_while_active = len(probe.targets)
    ok.append(transition(Transition.TRANSITION_DEACTIVATE))
    states.append(state())
    # On a loaded machine delivery can lag well behind the transition: wait for the hold itself.
    wait_for_target(executor, probe, probe.pose.as_array(), since=targets_while_active)
    spin_for(executor, 0.5)
    after_deactivate = [t for _, t in probe.targets[targets_while_active:]]
    spin_for(executor, 0.5)
    targets_after_hold = len(probe.targets)
    ok.append(transition(Transition.TRANSITION_CLEANUP))
    states.append(state())
    spin_for(executor, 0.3)
    publishers_cleaned = node.count_publishers(CONFIG.topics.target_pose)
    report_after_cleanup = node.report()
    # Configure and activate again, then shut down from active: the shutdown must also hold.
    ok.append(transition(Transition.TRANSITION_CONFIGURE))
    wait_for_state(executor, node)
    ok.append(transition(Transition.TRANSITION_ACTIVATE))
    spin_for(executor, 1.0)
    before_shutdown = len(probe.targets)
    events_before = len(probe.events)
    ok.append(transition(Transition.TRANSITION_ACTIVE_SHUTDOWN))
    states.append(state())
    wait_for_target(executor, probe, probe.pose.as_array(), since=before_shutdown)
    spin_for(executor, 0.3)
    return {
        "states": states,
        "ok": ok,
        "publishers": [publishers_before, publishers_configured, publishers_cleaned],
        "targets_while_inactive": targets_while_inactive,
        "targets_while_active": targets_while_active,
        "after_deactivate": after_deactivate,
        "targets_after_hold": targets_after_hold,
        "measured": probe.pose.as_array().tolist(),
        "shutdown_targets": [t for _, t in probe.targets[before_shutdown:]],
        "shutdown_events": probe.events[events_before:],
        "refused": refused,
        "refused_messages": node.refused_transitions,
        "report_after_cleanup": report_after_cleanup,
        "report_at_end": node.report(),
    }


def scenario_bad_params() -> dict[str, Any]:
    results: dict[str, Any] = {}
    cases = {
        "negative_step": {"safety.max_translation_per_step": -0.01},
        "unknown_key": {"safety.max_speed": 1.0},
        "inverted_box": {"safety.workspace_min": [0.8, -0.4, 0.1], "safety.workspace_max": [0.3, 0.4, 0.6]},
        "bad_qos": {"qos.cameras.preset": "fastest"},
        "bad_topic": {"topics.target_pose": "not a topic"},
        "missing_file": {"config_file": "/nonexistent/robot.yaml"},
        "franka_gripper_without_msgs": {"gripper.backend": "franka_action"},
    }
    for name, overrides in cases.items():
        node = PolicyNode(
            ReachTargetPolicy([0.5, 0, 0.4]),
            node_name=f"df_agent_policy_{name}",
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        outcome = node.trigger_configure()
        results[name] = {
            "success": outcome == TransitionCallbackReturn.SUCCESS,
            "state": node.lifecycle_state(),
            "error": node.configure_error,
            "publishers": node.count_publishers(CONFIG.topics.target_pose),
        }
        node.destroy_node()
    return results


def _run_policy(actions: Any, position: list[float], seconds: float, overrides: dict[str, Any] | None = None):
    policy = ReplayActionsPolicy(actions) if not hasattr(actions, "act") else actions
    node, probe, executor = setup(policy, position, overrides)
    start(node, executor)
    spin_for(executor, seconds)
    node.trigger_deactivate()
    spin_for(executor, 0.3)
    return node, probe


def scenario_workspace() -> dict[str, Any]:
    # Measured pose 1 cm inside the x limit; the policy keeps pushing +x.
    _, probe = _run_policy([[0.02, 0, 0, 0, 0, 0, 1]], [0.74, 0.0, 0.4], 1.5, {"bridge.delta_base": "measured"})
    return {
        "targets": [t for _, t in probe.targets],
        "events": probe.events,
        "rules": rules(probe.events),
        "workspace_max": list(CONFIG.safety.workspace_max),
    }


def scenario_step_limits() -> dict[str, Any]:
    _, probe = _run_policy([[0.3, 0, 0, 1.0, 0, 0, 1]], [0.5, 0.0, 0.4], 1.5, {"bridge.delta_base": "measured"})
    return {
        "targets": [t for _, t in probe.targets],
        "events": probe.events,
        "rules": rules(probe.events),
        "measured": probe.pose.as_array().tolist(),
        "limits": [CONFIG.safety.max_translation_per_step, CONFIG.safety.max_rotation_per_step],
    }


def scenario_nan() -> dict[str, Any]:
    nan = float("nan")
    actions = [[nan, 0, 0, 0, 0, 0, 1], [0.01, 0, 0, 0, 0, 0, 1], [0, math.inf, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, nan]]
    node, probe = _run_policy(actions * 50, [0.5, 0.0, 0.4], 1.5)
    return {
        "targets": [t for _, t in probe.targets],
        "events": probe.events,
        "rules": rules(probe.events),
        "gripper": probe.gripper,
        "non_finite": node.loop.safety.counts["non_finite"] if node.loop else None,
    }


def scenario_far_target() -> dict[str, Any]:
    # The arm does not move (the probe's pose is fixed) while the policy keeps commanding +x: the commanded
    # target runs away from the measured pose until the far-target rule rejects it.
    _, probe = _run_policy([[0.02, 0, 0, 0, 0, 0, 1]], [0.5, 0.0, 0.4], 2.0)
    return {
        "targets": [t for _, t in probe.targets],
        "events": probe.events,
        "rules": rules(probe.events),
        "measured": probe.pose.as_array().tolist(),
        "max_distance": CONFIG.safety.max_target_distance,
    }


def scenario_rate_limit() -> dict[str, Any]:
    overrides = {"bridge.control_rate_hz": 40.0, "safety.max_command_rate_hz": 10.0, "bridge.delta_base": "measured"}
    node, probe = _run_policy([[0.001, 0, 0, 0, 0, 0, 1]], [0.5, 0.0, 0.4], 2.0, overrides)
    times = [t for t, _ in probe.targets[:-1]]  # the last one is the deactivate hold
    return {
        "times": times,
        "events": probe.events,
        "rules": rules(probe.events),
        "max_rate": 10.0,
        "ticks": node.stats.summary()["ticks"],
    }


def scenario_stale_camera() -> dict[str, Any]:
    policy = RecordingPolicy(ReachTargetPolicy([0.55, 0.0, 0.4]))
    node, probe, executor = setup(policy, [0.5, 0.0, 0.4])
    start(node, executor)
    spin_for(executor, 0.6)
    fresh = list(policy.noise_levels)
    probe.publish_cameras["wrist"] = False
    spin_for(executor, 2.0)
    stale = list(policy.noise_levels[len(fresh) :])
    targets_during_stale = len(probe.targets)
    probe.publish_cameras["wrist"] = True
    spin_for(executor, 0.6)
    recovered = policy.noise_levels[-1]
    node.trigger_deactivate()
    return {
        "fresh": fresh,
        "stale": stale,
        "recovered": recovered,
        "keys": policy.keys,
        "targets_during_stale": targets_during_stale,
        "levels": {"stale": CONFIG.bridge.noise_levels.stale, "missing": CONFIG.bridge.noise_levels.missing},
    }


def scenario_stale_state() -> dict[str, Any]:
    policy = RecordingPolicy(ReachTargetPolicy([0.6, 0.0, 0.4]))
    node, probe, executor = setup(policy, [0.5, 0.0, 0.4])
    start(node, executor)
    spin_for(executor, 0.8)
    before = len(probe.targets)
    calls_before = len(policy.noise_levels)
    probe.publish_state = False
    spin_for(executor, 1.5)
    during = [t for _, t in probe.targets[before:]]
    calls_during = len(policy.noise_levels) - calls_before
    events_during = list(probe.events)
    probe.publish_state = True
    spin_for(executor, 1.0)
    after = len(probe.targets) - before - len(during)
    node.trigger_deactivate()
    return {
        "targets_before": before,
        "during": during,
        "calls_during": calls_during,
        "after": after,
        "measured": probe.pose.as_array().tolist(),
        "events": events_during,
        "rules": rules(events_during),
        "state_timeout": CONFIG.safety.state_timeout_s,
    }


def scenario_namespaced_probe() -> dict[str, Any]:
    """A probe robot in /arm (its relative topics resolve there) beside a bridge started by the CLI with
    `--ros-args -r __ns:=/arm`: it must receive the bridge's commands and events under /arm only."""
    probe = ProbeRobot([0.5, 0.0, 0.4], events_topic="/arm/df_agent_policy/safety_events")
    root_targets: list[Any] = []
    probe.create_subscription(PoseStamped, "/cartesian_impedance_controller/target_pose",
                              root_targets.append, qos_profile(CONFIG.qos.commands))
    executor = MultiThreadedExecutor(num_threads=2)
    EXECUTORS.append(executor)
    executor.add_node(probe)
    end = time.monotonic() + 60.0
    while time.monotonic() < end and not (len(probe.targets) >= 5 and probe.events):
        spin_for(executor, 0.1)
    spin_for(executor, 0.5)
    topics = sorted(name for name, _ in probe.get_topic_names_and_types())
    nodes = sorted(f"{namespace.rstrip('/')}/{name}" for name, namespace in probe.get_node_names_and_namespaces())
    return {"namespace": probe.get_namespace(), "targets": len(probe.targets), "events": probe.events,
            "root_targets": len(root_targets),
            "root_target_publishers": probe.count_publishers("/cartesian_impedance_controller/target_pose"),
            "topics": [t for t in topics if t != "/cartesian_impedance_controller/target_pose"],  # our watcher
            "nodes": nodes}


SCENARIOS = {name[len("scenario_") :]: fn for name, fn in globals().items() if name.startswith("scenario_")}


def main() -> int:
    name, out = sys.argv[1], Path(sys.argv[2])
    rclpy.init(args=["ros2_scenarios", *sys.argv[3:]])  # e.g. --ros-args -r __ns:=/arm
    try:
        result = SCENARIOS[name]()
    finally:
        for executor in EXECUTORS:
            executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown()
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
