"""The safety layer between a policy's end-effector deltas and the robot's target-pose topic.

Pure Python (numpy only) so every rule is testable without DDS. One call to `SafetyLayer.filter` turns a
proposed delta into either a target pose to publish or no command, and reports every rule that fired
as a `SafetyEvent` (also logged, one line each). Rules, in the order they apply:

1. stale robot state (watchdog): no fresh joint state / ee pose -> stop commanding and hold the pose;
2. rate limit: never command faster than `max_command_rate_hz`;
3. NaN/inf guard: a non-finite action is rejected;
4. per-step limits: translation and rotation of the delta are scaled down to the per-step maxima;
5. workspace box: the target position is clipped into the box;
6. far-target rejection: a target too far (or too rotated) from the measured pose is rejected.

Stale *camera* frames are not a reason to stop: they reach the policy flagged noisy/missing (see
`observation`), which is what Diffusion Forcing's per-token noise levels are for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from hardware.config import SafetyConfig
from hardware.transforms import apply_delta, normalize_quaternion, rotation_angle_between

log = logging.getLogger(__name__)

RULES = (
    "stale_state",
    "rate_limit",
    "non_finite",
    "clamp_translation",
    "clamp_rotation",
    "clamp_workspace",
    "far_target",
    "policy_error",
    "policy_stall",
    "hold",
)


@dataclass(frozen=True)
class Pose:
    position: np.ndarray  # [3] metres, robot base frame
    quaternion: np.ndarray  # [4] (w, x, y, z)

    @staticmethod
    def of(position: object, quaternion: object) -> Pose:
        return Pose(np.asarray(position, dtype=np.float64).copy(), normalize_quaternion(np.asarray(quaternion)))

    def as_array(self) -> np.ndarray:
        return np.concatenate([self.position, self.quaternion])


@dataclass(frozen=True)
class SafetyEvent:
    rule: str
    message: str


@dataclass
class SafetyDecision:
    """What to do this tick: publish `target` (if not None) and whether the loop is holding the pose."""

    target: Pose | None
    gripper: float | None
    holding: bool = False
    rebase: bool = False  # the next delta should start from the measured pose again
    events: list[SafetyEvent] = field(default_factory=list)


class SafetyLayer:
    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.workspace_min = np.asarray(config.workspace_min, dtype=np.float64)
        self.workspace_max = np.asarray(config.workspace_max, dtype=np.float64)
        self.counts: dict[str, int] = dict.fromkeys(RULES, 0)
        self.holding = False
        self._last_command_time: float | None = None
        if not config.enabled:
            log.warning("safety layer DISABLED by config: only the NaN/inf guard and the state watchdog remain")

    def reset(self) -> None:
        self.holding = False
        self._last_command_time = None

    def record(self, events: list[SafetyEvent], rule: str, message: str) -> None:
        self.counts[rule] += 1
        events.append(SafetyEvent(rule, message))
        log.warning("safety %s: %s", rule, message)

    def check_state(self, measured: Pose | None, state_age: float | None) -> SafetyDecision | None:
        """Watchdog on the robot state. Returns a hold decision when it is stale, else None.

        On the tick the loop enters the hold, the decision carries the last measured pose as the target
        (hold where the arm was last seen); afterwards it publishes nothing until the state is fresh again.
        """
        timeout = self.config.state_timeout_s
        if measured is not None and state_age is not None and state_age <= timeout:
            if self.holding:
                log.info("safety: robot state fresh again, resuming commands from the measured pose")
            return None
        events: list[SafetyEvent] = []
        entering = not self.holding
        if entering:
            age = "never received" if state_age is None else f"{state_age:.3f} s old"
            self.record(events, "stale_state", f"robot state {age} (timeout {timeout} s): holding the pose")
        self.holding = True
        target = measured if entering else None
        return SafetyDecision(target=target, gripper=None, holding=True, rebase=True, events=events)

    def filter(
        self,
        base: Pose,
        action: np.ndarray,
        measured: Pose,
        now: float,
    ) -> SafetyDecision:
        """Turn `action` = (dx, dy, dz, droll, dpitch, dyaw, gripper) applied to `base` into a safe decision."""
        events: list[SafetyEvent] = []
        rebase = self.holding  # coming out of a hold: start again from where the arm is
        self.holding = False
        cfg = self.config
        if self._last_command_time is not None and cfg.enabled:
            min_interval = 1.0 / cfg.max_command_rate_hz
            elapsed = now - self._last_command_time
            # A small tolerance keeps timer jitter at exactly the maximum rate from tripping the limit.
            if elapsed < 0.9 * min_interval:
                self.record(
                    events, "rate_limit", f"{elapsed * 1e3:.1f} ms since last command < {min_interval * 1e3:.1f} ms"
                )
                return SafetyDecision(None, None, rebase=rebase, events=events)
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,):
            self.record(events, "non_finite", f"action has shape {action.shape}, expected (7,): rejected")
            return SafetyDecision(None, None, rebase=rebase, events=events)
        if not np.all(np.isfinite(action)):
            self.record(events, "non_finite", f"action {np.array2string(action, precision=3)} is not finite: rejected")
            return SafetyDecision(None, None, rebase=rebase, events=events)
        delta_position, delta_rotation, gripper = action[:3].copy(), action[3:6].copy(), float(action[6])
        gripper = float(np.clip(gripper, 0.0, 1.0))
        if cfg.enabled:
            step = float(np.linalg.norm(delta_position))
            if step > cfg.max_translation_per_step:
                delta_position *= cfg.max_translation_per_step / step
                self.record(
                    events, "clamp_translation", f"step {step:.4f} m clamped to {cfg.max_translation_per_step} m"
                )
            turn = float(np.linalg.norm(delta_rotation))
            if turn > cfg.max_rotation_per_step:
                delta_rotation *= cfg.max_rotation_per_step / turn
                self.record(
                    events, "clamp_rotation", f"rotation {turn:.4f} rad clamped to {cfg.max_rotation_per_step} rad"
                )
        position, quaternion = apply_delta(base.position, base.quaternion, delta_position, delta_rotation)
        if cfg.enabled:
            clipped = np.clip(position, self.workspace_min, self.workspace_max)
            if np.any(clipped != position):
                before, after = np.array2string(position, precision=3), np.array2string(clipped, precision=3)
                self.record(events, "clamp_workspace", f"target {before} clipped to {after}")
                position = clipped
            distance = float(np.linalg.norm(position - measured.position))
            angle = rotation_angle_between(quaternion, measured.quaternion)
            if distance > cfg.max_target_distance or angle > cfg.max_target_angle:
                self.record(
                    events,
                    "far_target",
                    f"target {distance:.3f} m / {angle:.3f} rad from the measured pose "
                    f"(limits {cfg.max_target_distance} m / {cfg.max_target_angle} rad): rejected",
                )
                return SafetyDecision(None, None, rebase=True, events=events)
        self._last_command_time = now
        return SafetyDecision(Pose(position, quaternion), gripper, rebase=rebase, events=events)

    def hold_decision(self, measured: Pose | None, last_target: Pose | None, reason: str) -> SafetyDecision:
        """Hold-pose command for deactivate / shutdown: the measured pose, else the last commanded target."""
        events: list[SafetyEvent] = []
        target = measured if measured is not None else last_target
        where = "measured pose" if measured is not None else "last target" if last_target is not None else "nothing"
        self.record(events, "hold", f"{reason}: holding at the {where}")
        self.holding = True
        return SafetyDecision(target=target, gripper=None, holding=True, rebase=True, events=events)
