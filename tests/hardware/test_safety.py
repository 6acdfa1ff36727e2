"""Every rule of the safety layer, without DDS, each with its log line."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from hardware.config import SafetyConfig
from hardware.safety import Pose, SafetyLayer
from hardware.transforms import rotation_angle_between

DOWN = [0.0, 1.0, 0.0, 0.0]
HOME = Pose.of([0.5, 0.0, 0.4], DOWN)


def action(dx=0.0, dy=0.0, dz=0.0, droll=0.0, dpitch=0.0, dyaw=0.0, gripper=1.0) -> np.ndarray:
    return np.array([dx, dy, dz, droll, dpitch, dyaw, gripper])


@pytest.fixture
def layer() -> SafetyLayer:
    return SafetyLayer(SafetyConfig())


def test_small_step_passes_unchanged(layer, caplog):
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(HOME, action(dx=0.01, dyaw=0.05, gripper=0.0), HOME, now=1.0)
    assert decision.events == [] and caplog.records == []
    assert decision.target.position == pytest.approx([0.51, 0.0, 0.4])
    assert rotation_angle_between(decision.target.quaternion, HOME.quaternion) == pytest.approx(0.05)
    assert decision.gripper == 0.0


def test_translation_step_is_clamped_keeping_its_direction(layer, caplog):
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(HOME, action(dx=0.3, dy=0.4), HOME, now=1.0)
    step = decision.target.position - HOME.position
    assert np.linalg.norm(step) == pytest.approx(SafetyConfig().max_translation_per_step)
    assert step[:2] / np.linalg.norm(step) == pytest.approx([0.6, 0.8])
    assert [e.rule for e in decision.events] == ["clamp_translation"]
    limit = SafetyConfig().max_translation_per_step
    assert "clamp_translation" in caplog.text and f"0.5000 m clamped to {limit} m" in caplog.text


def test_rotation_step_is_clamped(layer, caplog):
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(HOME, action(droll=0.6, dpitch=0.8), HOME, now=1.0)
    limit = SafetyConfig().max_rotation_per_step
    assert rotation_angle_between(decision.target.quaternion, HOME.quaternion) == pytest.approx(limit, abs=1e-6)
    assert [e.rule for e in decision.events] == ["clamp_rotation"]
    assert "clamp_rotation" in caplog.text


def test_workspace_box_clips_the_target(caplog):
    layer = SafetyLayer(SafetyConfig(workspace_max=(0.75, 0.45, 0.41)))
    near_edge = Pose.of([0.745, 0.0, 0.405], DOWN)
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(near_edge, action(dx=0.01, dz=0.01), near_edge, now=1.0)
    assert decision.target.position == pytest.approx([0.75, 0.0, 0.41])
    assert "clamp_workspace" in [e.rule for e in decision.events]
    assert "clamp_workspace" in caplog.text


def test_workspace_box_also_pulls_a_target_back_from_below(layer):
    low = Pose.of([0.5, 0.0, 0.0], DOWN)  # measured pose outside the box (e.g. pushed there by hand)
    decision = layer.filter(low, action(), low, now=1.0)
    assert decision.target.position[2] == pytest.approx(SafetyConfig().workspace_min[2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index", [0, 4, 6])
def test_non_finite_actions_are_rejected(layer, caplog, bad, index):
    values = action(dx=0.01)
    values[index] = bad
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(HOME, values, HOME, now=1.0)
    assert decision.target is None and decision.gripper is None
    assert [e.rule for e in decision.events] == ["non_finite"]
    assert "not finite" in caplog.text


def test_wrong_action_shape_is_rejected(layer):
    decision = layer.filter(HOME, np.zeros(6), HOME, now=1.0)
    assert decision.target is None and "shape" in decision.events[0].message


def test_far_targets_are_rejected_and_the_loop_rebases(layer, caplog):
    drifted = Pose.of([0.59, 0.0, 0.4], DOWN)  # commanded target has run 9 cm ahead of the arm
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.filter(drifted, action(dx=0.02), HOME, now=1.0)
    assert decision.target is None and decision.rebase
    assert [e.rule for e in decision.events] == ["far_target"]
    assert "from the measured pose" in caplog.text
    # Still inside the limit: accepted.
    assert layer.filter(Pose.of([0.57, 0.0, 0.4], DOWN), action(dx=0.02), HOME, now=2.0).target is not None


def test_far_rotation_is_rejected(layer):
    twisted = Pose.of(HOME.position, [np.cos(0.3), 0.0, np.sin(0.3), 0.0])  # ~0.6 rad from DOWN... about y
    angle = rotation_angle_between(twisted.quaternion, HOME.quaternion)
    assert angle > SafetyConfig().max_target_angle
    decision = layer.filter(twisted, action(), HOME, now=1.0)
    assert decision.target is None and decision.events[0].rule == "far_target"


def test_rate_limit_drops_commands_that_come_too_fast(caplog):
    layer = SafetyLayer(SafetyConfig(max_command_rate_hz=10.0))
    assert layer.filter(HOME, action(), HOME, now=1.00).target is not None
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        too_soon = layer.filter(HOME, action(), HOME, now=1.05)
    assert too_soon.target is None and too_soon.events[0].rule == "rate_limit"
    assert "rate_limit" in caplog.text
    assert layer.filter(HOME, action(), HOME, now=1.10).target is not None
    assert layer.counts["rate_limit"] == 1


def test_stale_state_holds_once_at_the_last_measured_pose_then_stays_silent(layer, caplog):
    assert layer.check_state(HOME, state_age=0.1) is None
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        first = layer.check_state(HOME, state_age=0.3)
    assert first.holding and first.target is HOME and first.events[0].rule == "stale_state"
    assert "holding the pose" in caplog.text
    second = layer.check_state(HOME, state_age=0.4)
    assert second.holding and second.target is None and second.events == []
    assert layer.counts["stale_state"] == 1
    # Fresh again: commanding resumes, and the first command rebases on the measured pose.
    assert layer.check_state(HOME, state_age=0.01) is None
    assert layer.filter(HOME, action(), HOME, now=5.0).rebase


def test_never_received_state_holds_without_a_target(layer):
    decision = layer.check_state(None, None)
    assert decision.holding and decision.target is None
    assert "never received" in decision.events[0].message


def test_hold_decision_prefers_the_measured_pose(layer, caplog):
    with caplog.at_level(logging.WARNING, logger="hardware.safety"):
        decision = layer.hold_decision(HOME, Pose.of([0.6, 0, 0.4], DOWN), "deactivate")
    assert decision.target is HOME and decision.events[0].rule == "hold"
    assert "deactivate: holding at the measured pose" in caplog.text
    fallback = layer.hold_decision(None, Pose.of([0.6, 0, 0.4], DOWN), "shutdown")
    assert fallback.target.position == pytest.approx([0.6, 0, 0.4])


def test_disabled_layer_still_guards_nan_but_not_limits():
    layer = SafetyLayer(dataclasses.replace(SafetyConfig(), enabled=False))
    assert layer.filter(HOME, action(dx=np.nan), HOME, now=1.0).target is None
    big = layer.filter(HOME, action(dx=0.3), HOME, now=2.0)
    assert big.target.position[0] == pytest.approx(0.8)


def test_gripper_command_is_clipped_to_unit_range(layer):
    assert layer.filter(HOME, action(gripper=3.0), HOME, now=1.0).gripper == 1.0
    assert layer.filter(HOME, action(gripper=-1.0), HOME, now=2.0).gripper == 0.0


def test_default_limits_pass_demo_motion_unclamped_and_still_clamp_a_larger_step(tmp_path):
    """Three scripted fruit-swap demos, recorded and imported as for training (scripts/measure_demo_motion.py),
    replayed through the default safety layer at 10 Hz as the bridge would (delta_base commanded, the measured
    pose from the demo): not one rule fires, and each command lands on the demo's next target. A step 1.5 times
    the limit is still clamped."""
    pytest.importorskip("rosbags")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "measure_demo_motion.py"
    spec = importlib.util.spec_from_file_location("measure_demo_motion", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    demo_episodes = module.demo_episodes

    config = SafetyConfig()
    layer = SafetyLayer(config)
    ticks = 0
    largest = 0.0
    for episode, steps in demo_episodes([0, 1, 2], tmp_path):
        target, measured = episode["target_pose"].astype(np.float64), episode["ee_pose"].astype(np.float64)
        for t in range(len(steps) - 1):
            base = Pose.of(target[t, :3], target[t, 3:])
            decision = layer.filter(base, steps[t], Pose.of(measured[t, :3], measured[t, 3:]), now=ticks * 0.1)
            assert decision.events == [], (t, decision.events)
            assert decision.target.position == pytest.approx(target[t + 1, :3], abs=1e-5)
            largest = max(largest, float(np.linalg.norm(steps[t, :3])))
            ticks += 1
    assert ticks > 600 and sum(layer.counts.values()) == 0
    assert 0.02 < largest < config.max_translation_per_step  # faster than the old 2 cm limit allowed
    bigger = action(dx=1.5 * config.max_translation_per_step)
    decision = layer.filter(HOME, bigger, HOME, now=ticks * 0.1 + 1.0)
    assert [e.rule for e in decision.events] == ["clamp_translation"]
    assert decision.target.position[0] - HOME.position[0] == pytest.approx(config.max_translation_per_step)
    turn = layer.filter(HOME, action(dyaw=1.5 * config.max_rotation_per_step), HOME, now=ticks * 0.1 + 2.0)
    assert [e.rule for e in turn.events] == ["clamp_rotation"]
