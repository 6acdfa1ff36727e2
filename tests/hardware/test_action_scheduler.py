"""Real-time chunk scheduling (hardware/action_scheduler.py) with real slow, failing and stalling policies.

The policies below are policies under test (they sleep or raise in their own calls, in the scheduler's real
worker thread); nothing of the scheduler is replaced. Ticks are driven by hand where the order of events must
be exact, and by a real clock where the point is that the tick does not wait for the policy.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hardware.action_scheduler import ActionScheduler, TickClock


def observe_tick(tick: int):
    return lambda: ({"tick": np.array([tick])}, 0)


class StampedChunks:
    """Chunks whose action i is (observation tick, i, call number, 0, 0, 0, gripper 1), after `delay_s`."""

    def __init__(self, length: int, delay_s: float = 0.0, slow_calls: dict[int, float] | None = None) -> None:
        self.length, self.delay_s, self.slow_calls = length, delay_s, slow_calls or {}
        self.calls = 0
        self.resets = 0

    def reset(self, num_envs=None, **kwargs):
        self.resets += 1

    def sample_chunk(self, observation, noise_level=0):
        self.calls += 1
        time.sleep(self.slow_calls.get(self.calls, self.delay_s))
        tick = int(observation["tick"][0])
        chunk = np.zeros((1, self.length, 7))
        chunk[0, :, 0] = tick
        chunk[0, :, 1] = np.arange(self.length)
        chunk[0, :, 2] = self.calls
        chunk[0, :, 6] = 1.0
        return chunk


class FailsAfter:
    """A per-step policy (`act` only) that raises from its `ok`-th call on."""

    def __init__(self, ok: int) -> None:
        self.ok, self.calls = ok, 0

    def reset(self, num_envs=None, **kwargs):
        pass

    def act(self, observation, noise_level=0):
        self.calls += 1
        if self.calls > self.ok:
            raise RuntimeError(f"policy broke on call {self.calls}")
        return np.array([[0.01, 0, 0, 0, 0, 0, 1.0]])


class WithMemory:
    """Declares a token cadence and records what it is told was executed."""

    replan_every = 4

    def __init__(self) -> None:
        self.requests: list[int] = []
        self.executed: list[np.ndarray | None] = []

    def reset(self, num_envs=None, **kwargs):
        pass

    def sample_chunk(self, observation, noise_level=0, executed=None):
        self.requests.append(int(observation["tick"][0]))
        self.executed.append(None if executed is None else np.asarray(executed))
        chunk = np.zeros((1, 8, 7))
        chunk[0, :, 0] = len(self.requests) * 100 + np.arange(8)
        return chunk


def scheduler_for(policy, period_s=0.1, stall_timeout_s=5.0) -> ActionScheduler:
    scheduler = ActionScheduler(policy, period_s=period_s, stall_timeout_s=stall_timeout_s)
    scheduler.reset()
    return scheduler


def step_and_wait(scheduler: ActionScheduler, tick: int, timeout: float = 5.0):
    """One tick, then let the worker answer whatever was asked (exact event order, no timing luck)."""
    result = scheduler.step(tick, observe_tick(tick))
    scheduler.wait_for_answer(timeout)
    return result


def test_on_time_chunk_starts_at_the_tick_after_its_observation():
    scheduler = scheduler_for(StampedChunks(length=5))
    try:
        first = step_and_wait(scheduler, 0)
        assert first.action is None  # nothing planned yet; the request carries tick 0's observation
        second = scheduler.step(1, observe_tick(1))
        assert second.trimmed == 0 and second.chunk_latency_s is not None
        assert second.action[:2].tolist() == [0, 0]  # chunk of observation 0, action 0, at tick 1
    finally:
        scheduler.close()


def test_a_late_chunk_is_trimmed_by_the_ticks_it_is_late():
    scheduler = scheduler_for(StampedChunks(length=6))
    try:
        step_and_wait(scheduler, 0)
        # The chunk of observation 0 is meant to start at tick 1; it is first seen at tick 3: 2 ticks late.
        late = scheduler.step(3, observe_tick(3))
        assert late.trimmed == 2
        assert late.action[:2].tolist() == [0, 2], "the stale leading actions 0 and 1 are dropped"
        assert scheduler.step(4, observe_tick(4)).action[:2].tolist() == [0, 3]
        assert scheduler.counts["late_chunks"] == 1 and scheduler.counts["trimmed_actions"] == 2
    finally:
        scheduler.close()


def test_a_chunk_later_than_its_length_is_dropped_whole():
    scheduler = scheduler_for(StampedChunks(length=2))
    try:
        step_and_wait(scheduler, 0)
        result = scheduler.step(5, observe_tick(5))
        assert result.action is None and result.trimmed == 2
        assert scheduler.counts["stale_chunks"] == 1
    finally:
        scheduler.close()


def test_no_action_is_published_twice_or_late_under_a_real_clock():
    """A slow policy (0.13 s per chunk of 6 at a 0.05 s period) on a real clock: every executed action runs at
    exactly the tick it was planned for (observation tick + 1 + index), and none twice."""
    period = 0.05
    scheduler = scheduler_for(StampedChunks(length=6, delay_s=0.13), period_s=period)
    clock = TickClock(period)
    executed: list[tuple[int, int, int]] = []
    try:
        start = time.monotonic()
        for n in range(50):
            time.sleep(max(0.0, start + n * period - time.monotonic()))
            tick = clock.advance(time.monotonic())
            result = scheduler.step(tick, observe_tick(tick))
            if result.action is not None:
                observation_tick, index = int(result.action[0]), int(result.action[1])
                assert observation_tick + 1 + index == tick, "an action ran at a tick it was not planned for"
                executed.append((tick, observation_tick, index))
    finally:
        scheduler.close()
    assert len(executed) > 10, executed
    assert len({t for t, _, _ in executed}) == len(executed), "one action per tick at most"
    assert len({(o, i) for _, o, i in executed}) == len(executed), "no planned action executed twice"
    assert scheduler.counts["late_chunks"] > 0 and scheduler.counts["trimmed_actions"] > 0
    assert scheduler.lead_ticks >= 3  # 0.13 s measured at a 0.05 s period


def test_requests_are_scheduled_against_the_measured_latency():
    scheduler = scheduler_for(StampedChunks(length=10, delay_s=0.25))
    try:
        step_and_wait(scheduler, 0)
        scheduler.step(1, observe_tick(1))  # collects the chunk: 0.25 s measured = 3 ticks at 10 Hz
        assert scheduler.lead_ticks == 3
        requested = []
        for tick in range(2, 12):
            scheduler.step(tick, observe_tick(tick))
            if scheduler._in_flight is not None and scheduler._in_flight[0] == tick:
                requested.append((tick, len([t for t in scheduler.planned_ticks() if t > tick])))
        # Asked for the next chunk when the plan covered no more than lead - 1 + margin = 3 ticks after this one.
        assert requested == [(7, 3)], requested
    finally:
        scheduler.close()


def test_worker_failure_holds_and_is_reported():
    policy = FailsAfter(ok=2)
    scheduler = scheduler_for(policy)
    try:
        results = [step_and_wait(scheduler, tick) for tick in range(6)]
    finally:
        scheduler.close()
    assert [r.action is not None for r in results[:3]] == [False, True, True]
    failed = results[3]
    assert failed.hold and failed.action is None
    assert failed.events[0][0] == "policy_error" and "policy broke on call 3" in failed.events[0][1]
    assert all(r.hold for r in results[3:]), "it asks again each tick and holds while the policy keeps failing"
    assert scheduler.counts["policy_errors"] == 3


def test_a_stall_past_the_timeout_holds_while_the_tick_keeps_its_rate():
    """The first call takes 0.9 s; the timeout is 0.3 s. The tick never waits for it, the stall is reported
    once with a hold, and when the call finally returns its chunk is trimmed to what is still in the future."""
    period = 0.05
    policy = StampedChunks(length=40, slow_calls={1: 0.9})
    scheduler = scheduler_for(policy, period_s=period, stall_timeout_s=0.3)
    clock = TickClock(period)
    results, step_seconds = [], []
    try:
        start = time.monotonic()
        for n in range(50):
            time.sleep(max(0.0, start + n * period - time.monotonic()))
            tick = clock.advance(time.monotonic())
            before = time.perf_counter()
            results.append(scheduler.step(tick, observe_tick(tick)))
            step_seconds.append(time.perf_counter() - before)
    finally:
        scheduler.close()
    stalls = [r for r in results if any(rule == "policy_stall" for rule, _ in r.events)]
    assert len(stalls) == 1 and stalls[0].hold and stalls[0].action is None
    assert "timeout 0.3 s" in stalls[0].events[0][1]
    stall_index = results.index(stalls[0])
    resumed = [i for i, r in enumerate(results) if i > stall_index and r.action is not None]
    assert resumed, "actions resume once the stalled call returns"
    assert all(r.action is None for r in results[stall_index:resumed[0]]), "the old plan is dropped on a stall"
    assert results[resumed[0]].trimmed > 0 and results[resumed[0]].action[2] == 1  # the slow call's late chunk
    assert max(step_seconds) < 0.3, "a tick waited for the policy"
    assert scheduler.counts["policy_stalls"] == 1


def test_a_declared_token_cadence_requests_every_n_ticks_and_passes_what_was_executed():
    policy = WithMemory()
    scheduler = scheduler_for(policy)
    try:
        results = [step_and_wait(scheduler, tick) for tick in range(13)]
    finally:
        scheduler.close()
    assert policy.requests == [0, 4, 8, 12]
    assert policy.executed[0] is None
    # Observation 4 is told what ran after observation 0: ticks 0-3 (tick 0 had no action: a hold).
    first = policy.executed[1]
    assert first.shape == (4, 7)
    assert first[0].tolist() == [0, 0, 0, 0, 0, 0, 1] and first[1:, 0].tolist() == [100, 101, 102]
    assert policy.executed[2][:, 0].tolist() == [103, 200, 201, 202]
    assert results[5].action[0] == 200  # the second chunk takes over from the tick after its observation


def test_results_asked_for_before_a_reset_are_discarded():
    policy = StampedChunks(length=5, delay_s=0.2)
    scheduler = scheduler_for(policy)
    try:
        scheduler.step(0, observe_tick(0))
        scheduler.reset()
        deadline = time.monotonic() + 5.0
        while not scheduler.worker.has_results() and time.monotonic() < deadline:
            time.sleep(0.01)  # the answer to the request from before the reset is in
        assert scheduler.worker.has_results()
        assert scheduler.step(1, observe_tick(1)).action is None
        assert scheduler.counts["chunks"] == 0
    finally:
        scheduler.close()


def test_tick_clock_skips_a_missed_tick():
    clock = TickClock(0.1)
    assert [clock.advance(t) for t in (0.0, 0.06, 0.2, 0.41, 0.5)] == [0, 1, 2, 4, 5]
    assert clock.skipped == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="period_s and stall_timeout_s must be > 0"):
        ActionScheduler(FailsAfter(1), period_s=0.0, stall_timeout_s=1.0)


class StartsAtObservation(StampedChunks):
    """Chunks trained to start at their observation's own tick (as the DF imitation policy's tokens)."""

    chunk_starts_at_observation = True


def test_a_chunk_that_starts_at_its_observation_loses_its_first_action_and_stays_on_its_timeline():
    scheduler = scheduler_for(StartsAtObservation(length=5))
    try:
        assert scheduler.start_offset == 0
        step_and_wait(scheduler, 0)
        # Action i is meant for tick 0 + i; at tick 1 (the first tick an answer can reach) action 1 runs.
        at_one = scheduler.step(1, observe_tick(1))
        assert at_one.trimmed == 1 and at_one.action[:2].tolist() == [0, 1]
        assert scheduler.step(2, observe_tick(2)).action[:2].tolist() == [0, 2]
        assert scheduler.counts["late_chunks"] == 1 and scheduler.counts["trimmed_actions"] == 1
    finally:
        scheduler.close()
    assert scheduler_for(StampedChunks(length=5)).start_offset == 1  # the default: the tick after
