"""`df-agent deploy ros2`: run a policy on a (real or simulated) Franka through the `df_agent_policy` node."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


# rclpy executors the node can run on. `single` (the default) runs every callback in the spinning thread: the
# subscriptions only cache messages and the tick takes milliseconds, so nothing waits long, and the policy
# samples in its own worker thread anyway. `multi` dispatches callbacks to a thread pool; its Python dispatch
# costs about half a core at the bridge's message rates and competes with the policy worker for the GIL
# (measured on 2 cores with the shipped policy: 6.7 Hz and 212 ms jitter against 10.0 Hz and 0.9 ms with
# `single`, docs/ros2.md). `events` is rclpy's experimental EventsExecutor (C++ dispatch).
EXECUTORS = {"multi": "rclpy.executors.MultiThreadedExecutor", "single": "rclpy.executors.SingleThreadedExecutor",
             "events": "rclpy.experimental.EventsExecutor"}


def make_executor(name: str) -> Any:
    import importlib

    module, _, cls = EXECUTORS[name].rpartition(".")
    executor_class = getattr(importlib.import_module(module), cls)
    return executor_class(num_threads=3) if name == "multi" else executor_class()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint", help="policy checkpoint: a directory (config.json [+ model.safetensors]) or a shipped name "
                             "(franka-swap: the DF imitation policy of the fruit swap)"
    )
    source.add_argument(
        "--reach-target",
        type=float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="instead of a checkpoint: the scripted reach-to-target policy, end effector to this point (metres)",
    )
    parser.add_argument("--config", type=Path, default=None, help="robot YAML (default: hardware/configs/robot.yaml)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument(
        "--no-autostart",
        action="store_true",
        help="do not configure/activate; wait for a lifecycle manager (ros2 lifecycle set ...)",
    )
    parser.add_argument("--report", type=Path, default=None,
                        help="write the session report as JSON: policy, config, duration, final pose, loop timing "
                             "(rate, jitter, deadline misses, policy latency p50/p95) and safety counts")
    parser.add_argument("--reach-horizon", type=int, default=1,
                        help="with --reach-target: actions per chunk (the reach rolled forward; default 1)")
    parser.add_argument("--added-latency", type=float, default=0.0, metavar="SECONDS",
                        help="make every policy call this much slower (measures how the real-time loop copes "
                             "with a slow policy; default 0)")
    parser.add_argument("--executor", choices=sorted(EXECUTORS), default="single",
                        help="rclpy executor that runs the node's callbacks (default: single; see docs/ros2.md)")
    parser.add_argument(
        "--ros-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after it goes to ROS (e.g. --ros-args -p safety.enabled:=true -r __ns:=/arm), as in ros2 run",
    )
    parser.add_argument(
        "--policy-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a policy setting of the checkpoint, e.g. --policy-param sampling_steps=10 (YAML value; "
             "the settings are the policy config's fields, e.g. DFImitationPolicyConfig)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --param safety.max_translation_per_step=0.01 (YAML value)",
    )


def _parse_policy_params(items: list[str]) -> dict:
    import yaml

    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--policy-param {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(text)
    return overrides


def _parse_params(items: list[str]) -> list:
    import yaml
    from rclpy.parameter import Parameter

    parameters = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        value = yaml.safe_load(text)
        parameters.append(Parameter(key, value=value))
    return parameters


def _with_policy_units(policy: object, params: list[str]) -> list[str]:
    """The overrides plus `bridge.action_scale` from the policy's own action units (metres, radians per unit of
    its actions, e.g. the fruit-swap env's 0.07 / 0.2 for a policy trained on its demos), unless given."""
    units = getattr(policy, "action_units", None)
    if units is None or any(item.partition("=")[0] == "bridge.action_scale" for item in params):
        return list(params)
    log.info("bridge.action_scale = %s (the policy's action units)", list(units))
    return [*params, f"bridge.action_scale=[{float(units[0])}, {float(units[1])}]"]


def _describe(policy: object, args: argparse.Namespace) -> dict:
    described = policy.describe() if hasattr(policy, "describe") else {"type": type(policy).__name__}
    return {"checkpoint": str(args.checkpoint) if args.checkpoint else None, **described}


def _pose(pose: object) -> dict | None:
    if pose is None:
        return None
    return {"position": [round(float(v), 6) for v in pose.position],
            "quaternion_wxyz": [round(float(v), 6) for v in pose.quaternion]}


def run(args: argparse.Namespace) -> int:
    import time

    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from hardware.config import DEFAULT_CONFIG_PATH
    from hardware.policy_node import PolicyNode
    from hardware.spin import spin_until_stopped
    from policies.loading import load_policy
    from policies.scripted import DelayedPolicy, ReachTargetPolicy

    if args.reach_horizon < 1 or args.added_latency < 0:
        raise ValueError("--reach-horizon must be >= 1 and --added-latency >= 0")
    if args.checkpoint:
        from df_agent.checkpoint import resolve_checkpoint

        args.checkpoint = resolve_checkpoint(args.checkpoint)
        policy = load_policy(args.checkpoint, **_parse_policy_params(args.policy_param))
    else:
        if args.policy_param:
            raise ValueError("--policy-param needs --checkpoint (the scripted reach policy has no such settings)")
        policy = ReachTargetPolicy(args.reach_target, horizon=args.reach_horizon)
    if args.added_latency > 0:
        policy = DelayedPolicy(policy, args.added_latency)
    ros_args = ["df-agent", "--ros-args", *args.ros_args] if args.ros_args else None
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = PolicyNode(policy, config_file=args.config,
                          parameter_overrides=_parse_params(_with_policy_units(policy, args.param)))
        executor = make_executor(args.executor)
        executor.add_node(node)
        started = time.monotonic()
        if not args.no_autostart:
            if not node.request_transition("configure"):
                log.error("configure failed: %s", node.configure_error)
                return 1
            node.request_transition("activate")
        # Also stop once a lifecycle manager has shut the node down (ros2 lifecycle set ... shutdown).
        why = spin_until_stopped(executor, args.duration, lambda: node.lifecycle_state() == "finalized")
        log.info("stopping (%s)", why)
        if node.active:  # deactivate commands the hold pose
            node.request_transition("deactivate")
        if node.lifecycle_state() != "finalized":  # a lifecycle manager may have shut it down already
            node.request_transition("shutdown")
        duration = time.monotonic() - started
        report = node.report()
        summary = {
            "policy": _describe(policy, args),
            "config": {"file": str(node.get_parameter("config_file").value or DEFAULT_CONFIG_PATH),
                       "overrides": list(args.param), "ros_args": list(args.ros_args),
                       "resolved": node.last_config.to_dict() if node.last_config is not None else None},
            "node": node.get_fully_qualified_name(),
            "executor": args.executor,
            "duration_s": round(duration, 3),
            "stop_reason": why,
            "final_state": node.lifecycle_state(),
            "final_pose": _pose(node.last_measured),
            "last_commanded_target": _pose(node.last_commanded),
            "loop": report["loop"],
            "safety": report["safety"],
            "refused_transitions": list(node.refused_transitions),
        }
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    print(json.dumps({key: summary[key] for key in ("policy", "duration_s", "final_pose", "loop", "safety")},
                     indent=2))
    if args.report:
        write_json_atomic(args.report, with_provenance(summary, command_of(args)))
    return 0
