"""One control tick, without ROS: snapshot -> policy observation -> policy -> safety -> command.

The lifecycle node calls `ControlLoop.tick` from its timer and publishes what comes back; keeping the logic
here makes it testable with plain numpy and lets the node stay a thin adapter.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.config import RobotConfig
from hardware.observation import Snapshot, build_policy_observation
from hardware.safety import Pose, SafetyDecision, SafetyEvent, SafetyLayer

log = logging.getLogger(__name__)


@dataclass
class TickResult:
    decision: SafetyDecision
    noise_levels: dict[str, int] = field(default_factory=dict)
    policy_latency_s: float | None = None  # None when the policy did not run (holding)


class ControlLoop:
    def __init__(self, config: RobotConfig, policy: Any) -> None:
        self.config = config
        self.policy = policy
        self.safety = SafetyLayer(config.safety)
        self.base: Pose | None = None  # what the next delta is added to
        self.last_target: Pose | None = None

    def reset(self) -> None:
        self.policy.reset(num_envs=1)
        self.safety.reset()
        self.base = None
        self.last_target = None

    def tick(self, snapshot: Snapshot) -> TickResult:
        measured: Pose | None = snapshot.value("ee_pose")
        state_ages = [snapshot.age("ee_pose"), snapshot.age("joint_states")]
        state_age = None if any(a is None for a in state_ages) else max(a for a in state_ages if a is not None)
        hold = self.safety.check_state(measured, state_age)
        if hold is not None:
            self.base = None
            if hold.target is not None:
                self.last_target = hold.target
            return TickResult(hold)
        assert measured is not None
        observation, noise = build_policy_observation(snapshot, self.config)
        started = time.perf_counter()
        try:
            actions = np.asarray(self.policy.act(observation, noise_level=noise))
        except Exception as error:  # a failing policy must not take the node down; it holds instead
            log.exception("policy.act failed")
            events: list[SafetyEvent] = []
            self.safety.record(events, "policy_error", f"policy raised {type(error).__name__}: {error}; no command")
            return TickResult(SafetyDecision(None, None, rebase=True, events=events))
        latency = time.perf_counter() - started
        action = np.array(actions[0] if actions.ndim == 2 else actions, dtype=np.float64)
        if action.shape == (7,):
            position_scale, rotation_scale = self.config.bridge.action_scale
            action[:3] *= position_scale
            action[3:6] *= rotation_scale
        if self.base is None or self.config.bridge.delta_base == "measured":
            self.base = measured
        decision = self.safety.filter(self.base, action, measured, snapshot.time)
        if decision.target is not None:
            self.base = decision.target
            self.last_target = decision.target
        elif decision.rebase:
            self.base = None
        levels = {key: int(value[0]) for key, value in noise.items()}
        return TickResult(decision, levels, latency)

    def hold(self, snapshot: Snapshot, reason: str) -> SafetyDecision:
        measured = snapshot.value("ee_pose")
        fresh = snapshot.age("ee_pose") is not None and snapshot.age("ee_pose") <= self.config.safety.state_timeout_s
        decision = self.safety.hold_decision(measured if fresh else None, self.last_target, reason)
        self.base = None
        return decision
