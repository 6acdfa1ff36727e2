"""One control tick, without ROS: snapshot -> (scheduled action of the policy's chunk) -> safety -> command.

The lifecycle node calls `ControlLoop.tick` from its timer and publishes what comes back; keeping the logic
here makes it testable with plain numpy and lets the node stay a thin adapter. The policy itself runs in the
`ActionScheduler`'s worker thread: a tick only takes the action its chunk planned for this tick (if any), so
the tick rate holds whatever the policy's latency.

A chunk is a path of deltas that starts where the arm was commanded to be at its observation tick (the
commanded base then, or the measured pose with `delta_base: measured`). The loop turns it into absolute
targets from that anchor, and each tick commands the step from its current base to its target for this tick.
On time, that is exactly the policy's delta.

A late chunk (its stale leading actions dropped) does not start where the arm is: during the latency the arm
went on with the previous chunk, whose plan for those ticks differs from the new one's. Re-adding the new deltas
to the current pose would leave the arm off the new plan for good; commanding the planned pose at once (the
gap plus this tick's delta in one step) is a jump that the per-step limit clamps whenever the two plans
disagree. So the loop rejoins the plan over `bridge.catch_up_ticks` ticks: the target of the k-th tick of a
chunk is the restarted path (the new deltas from the current target) moved a fraction min(1, k / N) of the way
to the planned path. Each step is then the policy's delta plus 1/N of the gap, and the arm is on the chunk's
own timeline after N ticks (1: at once, the old behaviour; 0: never).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.action_scheduler import ActionScheduler, TickClock
from hardware.config import RobotConfig
from hardware.observation import Snapshot, build_policy_observation
from hardware.safety import Pose, SafetyDecision, SafetyEvent, SafetyLayer
from hardware.transforms import (
    apply_delta,
    normalize_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_rotvec,
    rotvec_to_quaternion,
)

ANCHOR_TICKS = 2000  # anchors kept (ticks); a chunk observed earlier than this is long stale anyway


@dataclass
class ChunkPath:
    """A chunk's absolute targets: as planned from its anchor, and restarted from the target at its first tick."""

    chunk: Any
    first_index: int  # the action executed at the chunk's first tick
    planned: list[Pose | None]
    restarted: list[Pose | None]
    catch_up_ticks: int

    def target(self, index: int) -> Pose | None:
        planned, restarted = self.planned[index], self.restarted[index]
        if planned is None or restarted is None or self.catch_up_ticks == 1:
            return planned
        if self.catch_up_ticks == 0:
            return restarted
        weight = min(1.0, (index - self.first_index + 1) / self.catch_up_ticks)
        rotation = quaternion_to_rotvec(quaternion_multiply(planned.quaternion,
                                                            quaternion_conjugate(restarted.quaternion)))
        quaternion = quaternion_multiply(rotvec_to_quaternion(weight * rotation), restarted.quaternion)
        position = restarted.position + weight * (planned.position - restarted.position)
        return Pose(position, normalize_quaternion(quaternion))


def delta_path(start: Pose, actions: np.ndarray, scale: tuple[float, float], first: int = 0) -> list[Pose | None]:
    """Absolute poses after each of `actions[first:]` added to `start` (None before `first`, and for an action
    that is not a finite delta: it is rejected as it is, and the path goes on without it)."""
    position_scale, rotation_scale = scale
    path: list[Pose | None] = [None] * first
    position, quaternion = start.position, start.quaternion
    for delta in np.asarray(actions[first:], dtype=np.float64):
        if not np.all(np.isfinite(delta[:6])):
            path.append(None)
            continue
        position, quaternion = apply_delta(position, quaternion, delta[:3] * position_scale,
                                           delta[3:6] * rotation_scale)
        path.append(Pose(position, quaternion))
    return path


@dataclass
class TickResult:
    decision: SafetyDecision
    tick: int = 0
    noise_levels: dict[str, int] = field(default_factory=dict)  # of the observation requested this tick, if any
    chunk_latency_s: float | None = None  # a chunk arrived this tick, sampled in this long
    trimmed: int = 0  # stale leading actions dropped from that chunk
    acted: bool = False  # the tick had an action of the policy (before safety)


class ControlLoop:
    def __init__(self, config: RobotConfig, policy: Any) -> None:
        self.config = config
        self.policy = policy
        self.period_s = 1.0 / config.bridge.control_rate_hz
        self.safety = SafetyLayer(config.safety)
        self.scheduler = ActionScheduler(policy, self.period_s, config.safety.policy_timeout_s)
        self.clock = TickClock(self.period_s)
        self.base: Pose | None = None  # what the next delta is added to
        self.last_target: Pose | None = None
        self._policy_holding = False
        self._anchors: dict[int, Pose] = {}  # tick -> where a chunk observed at that tick starts
        self._path: ChunkPath | None = None  # the executing chunk's targets

    def reset(self) -> None:
        self.scheduler.reset()
        self.safety.reset()
        self.clock = TickClock(self.period_s)
        self.base = None
        self.last_target = None
        self._policy_holding = False
        self._anchors = {}
        self._path = None

    def close(self) -> None:
        self.scheduler.close()

    def tick(self, snapshot: Snapshot, now: float | None = None) -> TickResult:
        """`now`: monotonic seconds of this tick (default: time.monotonic()), for the tick index."""
        tick = self.clock.advance(time.monotonic() if now is None else now)
        measured: Pose | None = snapshot.value("ee_pose")
        state_ages = [snapshot.age("ee_pose"), snapshot.age("joint_states")]
        state_age = None if any(a is None for a in state_ages) else max(a for a in state_ages if a is not None)
        hold = self.safety.check_state(measured, state_age)
        if hold is not None:
            self.scheduler.pause()  # no chunk planned on stale state is executed later
            self.base = None
            if hold.target is not None:
                self.last_target = hold.target
            return TickResult(hold, tick)
        assert measured is not None
        self.scheduler.resume()
        levels: dict[str, int] = {}

        def observe() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
            observation, noise = build_policy_observation(snapshot, self.config)
            levels.update({key: int(value[0]) for key, value in noise.items()})
            return observation, noise

        step = self.scheduler.step(tick, observe)
        result = TickResult(SafetyDecision(None, None), tick, levels, step.chunk_latency_s, step.trimmed)
        # A chunk observed now starts from where the arm is commanded at the observation: before this tick's
        # command for a chunk whose first action is meant for this tick, after it otherwise.
        before = self._anchor(measured)
        try:
            self._decide(step, measured, snapshot.time, result)
        finally:
            self._anchors[tick] = before if self.scheduler.start_offset == 0 else self._anchor(measured)
            self._anchors.pop(tick - ANCHOR_TICKS, None)
        return result

    def _anchor(self, measured: Pose) -> Pose:
        """Where deltas start now: the measured pose, or the last commanded target with `delta_base: commanded`."""
        return measured if self.config.bridge.delta_base == "measured" or self.base is None else self.base

    def _decide(self, step: Any, measured: Pose, now: float, result: TickResult) -> None:
        if step.events:
            events: list[SafetyEvent] = []
            for rule, message in step.events:
                self.safety.record(events, rule, message)
            entering = not self._policy_holding
            self._policy_holding = True
            self.base = None
            # As the stale-state watchdog: one hold at the measured pose on entering, then nothing.
            result.decision = SafetyDecision(measured if entering else None, None, holding=True, rebase=True,
                                             events=events)
            if entering:
                self.last_target = measured
            return
        if step.action is None:
            return  # no action meant for this tick: command nothing, the controller keeps its target
        self._policy_holding = False
        result.acted = True
        if self.base is None or self.config.bridge.delta_base == "measured":
            self.base = measured
        action = np.array(step.action, dtype=np.float64)
        target = self._planned_target(step, measured)
        if target is not None:  # the step from the current base to where the plan puts the arm at this tick
            rotation = quaternion_to_rotvec(quaternion_multiply(target.quaternion,
                                                                quaternion_conjugate(self.base.quaternion)))
            action[:3], action[3:6] = target.position - self.base.position, rotation
        decision = self.safety.filter(self.base, action, measured, now)
        if decision.target is not None:
            self.base = decision.target
            self.last_target = decision.target
        elif decision.rebase:
            self.base = None
        result.decision = decision

    def _planned_target(self, step: Any, measured: Pose) -> Pose | None:
        """The absolute target of `step`'s action on its chunk's path; None for an action that is not a finite
        (dx, dy, dz, droll, dpitch, dyaw, gripper) delta (the safety layer rejects it as it is)."""
        chunk = step.chunk
        if chunk is None or chunk.actions.shape[-1] != 7:
            return None
        if self._path is None or self._path.chunk is not chunk:
            scale = self.config.bridge.action_scale
            anchor = self._anchors.get(chunk.observation_tick, measured)
            assert self.base is not None
            self._path = ChunkPath(chunk, step.index, delta_path(anchor, chunk.actions, scale),
                                   delta_path(self.base, chunk.actions, scale, step.index),
                                   self.config.bridge.catch_up_ticks)
        return self._path.target(step.index)

    def hold(self, snapshot: Snapshot, reason: str) -> SafetyDecision:
        self.scheduler.pause()
        measured = snapshot.value("ee_pose")
        fresh = snapshot.age("ee_pose") is not None and snapshot.age("ee_pose") <= self.config.safety.state_timeout_s
        decision = self.safety.hold_decision(measured if fresh else None, self.last_target, reason)
        self.base = None
        return decision
