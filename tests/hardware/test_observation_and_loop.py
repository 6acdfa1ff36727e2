"""Observation alignment and the control tick, without DDS."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from hardware.config import RobotConfig, load_config
from hardware.control_loop import ControlLoop
from hardware.observation import JointReading, ObservationCache, build_policy_observation, camera_noise_level
from hardware.safety import Pose
from hardware.transforms import quaternion_conjugate, quaternion_multiply, quaternion_to_rotvec
from policies.scripted import ReachTargetPolicy, ReplayActionsPolicy

CONFIG = load_config()
DOWN = [0.0, 1.0, 0.0, 0.0]
STREAMS = ["camera/front", "camera/wrist", "joint_states", "ee_pose"]
FINGERS = ("fr3_finger_joint1", "fr3_finger_joint2")


def fresh_cache(now: float, pose=(0.5, 0.0, 0.4), camera_age: dict[str, float] | None = None) -> ObservationCache:
    cache = ObservationCache(STREAMS)
    names = tuple(f"fr3_joint{i}" for i in range(1, 8)) + FINGERS
    cache.update("joint_states", JointReading(names, np.r_[np.zeros(7), 0.02, 0.02]), now - 0.01, now)
    cache.update("ee_pose", Pose.of(pose, DOWN), now - 0.01, now)
    for camera, age in (camera_age or {"front": 0.05, "wrist": 0.05}).items():
        cache.update(f"camera/{camera}", np.full((48, 64, 3), 7, np.uint8), now - age, now)
    return cache


def test_snapshot_is_consistent_and_knows_each_age():
    cache = fresh_cache(10.0, camera_age={"front": 0.1})
    snapshot = cache.snapshot(10.5)
    assert snapshot.age("ee_pose") == pytest.approx(0.51)
    assert snapshot.age("camera/front") == pytest.approx(0.6)
    assert snapshot.age("camera/wrist") is None
    cache.update("ee_pose", Pose.of([0.6, 0, 0.4], DOWN), 10.6, 10.6)
    assert snapshot.value("ee_pose").position[0] == 0.5, "a snapshot does not change under later updates"


def test_future_stamp_counts_as_age_zero_and_missing_stamp_uses_receive_time():
    cache = ObservationCache(["ee_pose"])
    cache.update("ee_pose", "x", stamp=12.0, received=10.0)
    assert cache.snapshot(10.0).age("ee_pose") == 0.0
    cache.update("ee_pose", "x", stamp=0.0, received=9.5)
    assert cache.snapshot(10.0).age("ee_pose") == pytest.approx(0.5)
    with pytest.raises(KeyError, match="unknown observation stream 'camera'"):
        cache.update("camera", None, 1.0, 1.0)


def test_concurrent_updates_and_snapshots():
    cache = ObservationCache(["a"])
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            cache.update("a", (i, i), float(i), float(i))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(2000):
            item = cache.snapshot(0.0).streams["a"]
            assert item is None or (item.value[0] == item.value[1] and item.stamp == item.value[0])
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize(("age", "level"), [(0.0, 0), (0.3, 0), (0.31, 500), (1.0, 500), (1.01, 1000), (None, 1000)])
def test_camera_noise_levels_by_age(age, level):
    assert camera_noise_level(age, CONFIG) == level


def test_policy_observation_layout_and_noise_flags():
    snapshot = fresh_cache(10.0, camera_age={"front": 0.05, "wrist": 0.5}).snapshot(10.0)
    observation, noise = build_policy_observation(snapshot, CONFIG)
    assert observation["front"].shape == (1, 32, 32, 3) and observation["front"].dtype == np.uint8
    assert (observation["front"] == 7).all(), "resized, not altered"
    assert noise["front"].tolist() == [0] and noise["wrist"].tolist() == [500]
    assert observation["joint_positions"].shape == (1, 9)
    assert observation["ee_pose"][0] == pytest.approx([0.5, 0, 0.4, 0, 1, 0, 0])
    assert observation["proprio"][0] == pytest.approx([0.5, 0, 0.4, 0, 1, 0, 0, 0.04])
    missing = fresh_cache(10.0, camera_age={"front": 0.05}).snapshot(10.0)
    observation, noise = build_policy_observation(missing, CONFIG)
    assert noise["wrist"].tolist() == [1000] and (observation["wrist"] == 0).all()


def tick(loop: ControlLoop, now: float, cache_time: float | None = None):
    """One control tick at monotonic time `now` (ticks 0.1 s apart), then let the policy's worker answer."""
    result = loop.tick(fresh_cache(now if cache_time is None else cache_time).snapshot(now), now=now)
    loop.scheduler.wait_for_answer(10.0)
    return result


def test_control_loop_reaches_and_chains_targets_from_the_last_command():
    config = dataclasses.replace(CONFIG, safety=dataclasses.replace(CONFIG.safety, max_translation_per_step=0.02))
    loop = ControlLoop(config, ReachTargetPolicy([0.6, 0.0, 0.4], gain=1.0))
    loop.reset()
    try:
        first = tick(loop, 10.0)
        # The policy samples in its worker: the observation of tick 0 becomes the command of tick 1.
        assert first.decision.target is None and not first.acted and first.noise_levels["front"] == 0
        second = tick(loop, 10.1)
        assert second.decision.target.position == pytest.approx([0.52, 0, 0.4])  # clamped to 2 cm
        assert second.chunk_latency_s is not None and second.trimmed == 0
        # The arm has not moved yet; "commanded" base: the next target builds on the last one.
        third = tick(loop, 10.2)
        assert third.decision.target.position == pytest.approx([0.54, 0, 0.4])
    finally:
        loop.close()


def test_control_loop_measured_base_and_action_scale():
    bridge = dataclasses.replace(CONFIG.bridge, delta_base="measured", action_scale=(0.05, 0.2))
    config = dataclasses.replace(CONFIG, bridge=bridge)
    loop = ControlLoop(config, ReplayActionsPolicy([[0.2, 0, 0, 0, 0, 0.5, 1.0]]))
    loop.reset()
    try:
        tick(loop, 10.0)
        for now in (10.1, 10.2):
            target = tick(loop, now).decision.target
            assert target.position == pytest.approx([0.51, 0, 0.4])  # 0.2 units * 5 cm from the measured pose
    finally:
        loop.close()


def test_control_loop_holds_without_calling_the_policy_when_state_is_stale():
    policy = ReplayActionsPolicy([[0.01, 0, 0, 0, 0, 0, 1]])
    loop = ControlLoop(CONFIG, policy)
    loop.reset()
    try:
        result = tick(loop, 11.0, cache_time=10.0)  # state 1 s old
        assert result.decision.holding and result.chunk_latency_s is None
        assert result.decision.target.position == pytest.approx([0.5, 0, 0.4])
        assert loop.scheduler.counts["chunks"] == 0 and policy.index == 0
    finally:
        loop.close()


def test_a_raising_policy_is_contained_as_a_safety_event_and_holds():
    class Broken:
        def reset(self, num_envs=None, **kwargs):
            pass

        def act(self, observation, noise_level=0):
            raise RuntimeError("boom")

    loop = ControlLoop(RobotConfig(), Broken())
    loop.reset()
    try:
        tick(loop, 10.0)
        result = tick(loop, 10.1)
        assert result.decision.events[0].rule == "policy_error" and "boom" in result.decision.events[0].message
        assert result.decision.holding and result.decision.target.position == pytest.approx([0.5, 0, 0.4])
        again = tick(loop, 10.2)  # still failing: reported again, the hold is not re-sent
        assert again.decision.events[0].rule == "policy_error" and again.decision.target is None
        assert loop.safety.counts["policy_error"] == 2
    finally:
        loop.close()


def test_a_slow_policy_does_not_slow_the_tick():
    from policies.scripted import DelayedPolicy

    loop = ControlLoop(CONFIG, DelayedPolicy(ReachTargetPolicy([0.6, 0.0, 0.4], horizon=30), delay_s=1.0))
    loop.reset()
    try:
        started = time.perf_counter()
        results = [loop.tick(fresh_cache(10.0 + 0.1 * i).snapshot(10.0 + 0.1 * i), now=10.0 + 0.1 * i)
                   for i in range(5)]
        assert time.perf_counter() - started < 0.5, "ticks waited for a policy that takes 1 s"
        assert all(r.decision.target is None for r in results)
        loop.scheduler.wait_for_answer(10.0)
        # It answered 1 s after tick 0's observation; at tick 20 (2 s) the first 19 planned actions are stale.
        late = loop.tick(fresh_cache(12.0).snapshot(12.0), now=12.0)
        assert late.trimmed == 19 and late.decision.target is not None
    finally:
        loop.close()


def test_hold_uses_the_measured_pose_when_fresh_else_the_last_target():
    loop = ControlLoop(CONFIG, ReachTargetPolicy([0.6, 0.0, 0.4]))
    loop.reset()
    try:
        tick(loop, 10.0)
        tick(loop, 10.1)
        assert loop.last_target is not None
        assert loop.hold(fresh_cache(10.0).snapshot(10.0), "deactivate").target.position == pytest.approx(
            [0.5, 0, 0.4])
        stale = loop.hold(fresh_cache(10.0).snapshot(20.0), "shutdown")
        assert stale.target.position == pytest.approx(loop.last_target.position)
    finally:
        loop.close()


IMMEDIATE_CATCH_UP = dataclasses.replace(CONFIG, bridge=dataclasses.replace(CONFIG.bridge, catch_up_ticks=1))


class LateSteps:
    """Ten 1 cm steps in +x (gripper open), sampled in 50 ms: 3 ticks late when the next tick comes 0.4 s on."""

    def reset(self, num_envs=None, **kwargs):
        pass

    def sample_chunk(self, observation, noise_level=0):
        time.sleep(0.05)
        chunk = np.zeros((1, 10, 7))
        chunk[0, :, 0] = 0.01
        chunk[0, :, 5] = 0.02  # and 0.02 rad of yaw
        chunk[0, :, 6] = 1.0
        return chunk


def yaw_of(pose: Pose) -> float:
    return float(quaternion_to_rotvec(quaternion_multiply(pose.quaternion, quaternion_conjugate(np.array(DOWN))))[2])


def test_a_late_chunk_resumes_on_its_planned_path_not_from_scratch():
    """A chunk of ten 1 cm steps in +x, observed at tick 0 and first used at tick 4 (3 ticks late, actions 0-2
    dropped): with `catch_up_ticks: 1`, tick 4 commands where the plan puts the arm at tick 4 (4 cm from the
    anchor), not 1 cm."""
    loop = ControlLoop(IMMEDIATE_CATCH_UP, LateSteps())
    loop.reset()
    try:
        tick(loop, 10.0)
        late = tick(loop, 10.4)
        assert late.trimmed == 3 and late.decision.events == []
        assert late.decision.target.position == pytest.approx([0.54, 0, 0.4])
        assert yaw_of(late.decision.target) == pytest.approx(0.08)
        assert tick(loop, 10.5).decision.target.position == pytest.approx([0.55, 0, 0.4])
    finally:
        loop.close()


@pytest.mark.parametrize("catch_up_ticks", [2, 5])
def test_a_late_chunk_rejoins_its_path_over_catch_up_ticks(catch_up_ticks):
    """The same late chunk with `catch_up_ticks: N`: each of the first N ticks moves 1 cm plus 1/N of the 3 cm
    gap (and likewise in yaw), then the arm is on the planned path and moves 1 cm a tick."""
    config = dataclasses.replace(CONFIG, bridge=dataclasses.replace(CONFIG.bridge, catch_up_ticks=catch_up_ticks))
    loop = ControlLoop(config, LateSteps())
    loop.reset()
    try:
        tick(loop, 10.0)
        x, yaw = 0.5, 0.0
        for k in range(1, 7):
            result = tick(loop, 10.3 + 0.1 * k)
            assert result.decision.events == [], result.decision.events
            step = 0.01 + (0.03 / catch_up_ticks if k <= catch_up_ticks else 0.0)
            x, yaw = x + step, yaw + 2 * step
            assert result.decision.target.position == pytest.approx([x, 0, 0.4]), k
            assert yaw_of(result.decision.target) == pytest.approx(yaw), k
        assert x == pytest.approx(0.5 + 0.01 * 9)  # on the plan: its pose for tick 9
    finally:
        loop.close()


def test_catch_up_ticks_zero_restarts_a_late_chunk_from_the_current_target():
    config = dataclasses.replace(CONFIG, bridge=dataclasses.replace(CONFIG.bridge, catch_up_ticks=0))
    loop = ControlLoop(config, LateSteps())
    loop.reset()
    try:
        tick(loop, 10.0)
        for k in range(1, 5):
            result = tick(loop, 10.3 + 0.1 * k)
            assert result.decision.target.position == pytest.approx([0.5 + 0.01 * k, 0, 0.4])
    finally:
        loop.close()


def test_chunks_that_agree_with_the_executed_motion_stay_at_the_planned_pace():
    """A policy that always plans the same steady 1 cm steps, each chunk one tick late by design: only the first
    chunk starts off its path (the arm had not moved at its observation); that 1 cm gap is spread over the next
    5 ticks (0.2 cm each), the second chunk starts on its path, nothing is clamped, and the arm ends on the
    plans' timeline (tick k at k + 1 cm)."""

    class SteadySteps:
        chunk_starts_at_observation = True
        replan_every = 6

        def reset(self, num_envs=None, **kwargs):
            pass

        def sample_chunk(self, observation, noise_level=0):
            time.sleep(0.03)
            chunk = np.zeros((1, 8, 7))
            chunk[0, :, 1] = 0.01
            chunk[0, :, 6] = 1.0
            return chunk

    loop = ControlLoop(CONFIG, SteadySteps())
    loop.reset()
    try:
        tick(loop, 10.0)
        y = 0.0
        for k in range(1, 9):
            result = tick(loop, 10.0 + 0.1 * k)
            assert result.decision.events == []
            step = result.decision.target.position[1] - y
            assert 0.01 - 1e-9 <= step <= 0.012 + 1e-9, (k, step)
            y = result.decision.target.position[1]
        assert y == pytest.approx(0.01 * 9)
    finally:
        loop.close()
