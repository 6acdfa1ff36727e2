"""Real-time execution of action chunks: the policy samples in a worker thread, the control tick never waits.

The control loop ticks at a fixed period; a policy (a DF model sampling a chunk of actions takes seconds on a
CPU) runs in one worker thread, so a slow policy cannot slow the tick. Timing follows diffusion_policy's
real-robot loop and LeRobot's asynchronous inference:

- A request carries the observation of tick n; the chunk it returns is stamped with n, and its action i is
  meant for tick n + 1 + i (the first tick after the observation). A policy whose chunks start at their
  observation's own tick (`chunk_starts_at_observation = True`: the DF imitation policy, trained on tokens
  whose first action follows the observation at once) has action i meant for tick n + i instead; since no
  answer arrives before tick n + 1, its first action is always trimmed, and the control loop's catch-up onto
  the chunk's path (control_loop.py) keeps the arm on the chunk's own timeline.
- A chunk that arrives at tick k after its start tick s is late by k - s ticks: that many leading actions are
  stale and dropped; the rest replace the plan from tick k on. Nothing is ever executed late, and since every tick pops
  at most the one action meant for it, no action is published twice.
- The next chunk is requested while the current one executes: when what is left of the plan covers no more
  than the measured latency (a high quantile of recent latencies, in ticks) plus a margin, or, for a policy
  that declares `replan_every` (a DF policy whose tokens hold that many actions), every `replan_every` ticks.
- A policy that raises (`policy_error`) or does not answer within `stall_timeout_s` (`policy_stall`) makes the
  scheduler drop its plan and ask for a hold; it asks again on the next tick (after an error) or as soon as the
  stalled call returns.

A policy with `sample_chunk(observation, noise_level=..., executed=...) -> [1, T, A]` returns whole chunks
(`executed` are the actions executed since its previous observation, for a policy with memory); any other
policy's `act(observation, noise_level) -> [1, A]` is a chunk of one action.
"""

from __future__ import annotations

import inspect
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MARGIN_TICKS = 1  # requested this many ticks earlier than the measured latency needs
LATENCY_WINDOW = 20  # recent latencies the lead is estimated from
LATENCY_QUANTILE = 0.9


@dataclass(frozen=True)
class Chunk:
    observation_tick: int
    actions: np.ndarray  # [T, A], policy units; action i is for tick observation_tick + start_offset + i
    latency_s: float
    start_offset: int = 1  # 0 for a policy whose chunks start at their observation's own tick

    @property
    def start_tick(self) -> int:
        return self.observation_tick + self.start_offset


@dataclass
class ScheduledStep:
    """What the scheduler says for one tick."""

    tick: int
    action: np.ndarray | None  # the action meant for this tick, None when there is none
    chunk: Chunk | None = None  # the chunk it comes from, and its index there (chunk.actions[index] is action)
    index: int = 0
    hold: bool = False  # the policy failed or stalled: command a hold this tick
    events: list[tuple[str, str]] = field(default_factory=list)  # (rule, message): policy_error, policy_stall
    chunk_latency_s: float | None = None  # a chunk arrived at this tick (its sampling time)
    trimmed: int = 0  # stale leading actions dropped from that chunk


def chunk_interface(policy: Any) -> tuple[Callable[..., np.ndarray], int | None]:
    """(sample(observation, noise_level, executed) -> [T, A], replan_every) for any policy."""
    replan_every = getattr(policy, "replan_every", None)
    if hasattr(policy, "sample_chunk"):
        takes_executed = "executed" in inspect.signature(policy.sample_chunk).parameters

        def sample(observation: Any, noise_level: Any, executed: np.ndarray | None) -> np.ndarray:
            extra = {"executed": executed} if takes_executed else {}
            chunk = np.asarray(policy.sample_chunk(observation, noise_level=noise_level, **extra), dtype=np.float64)
            if chunk.ndim == 3:
                chunk = chunk[0]
            return chunk

        return sample, None if replan_every is None else int(replan_every)

    def act(observation: Any, noise_level: Any, executed: np.ndarray | None) -> np.ndarray:
        action = np.asarray(policy.act(observation, noise_level=noise_level), dtype=np.float64)
        return action.reshape(1, -1) if action.ndim < 2 else action[:1]

    return act, None


class ChunkWorker:
    """One daemon thread that calls the policy, one job at a time (policies are not thread-safe).

    Jobs carry a generation; results of an older generation (asked for before a reset) are discarded, so a
    call that stalls past a reset cannot leak its chunk into the next episode.
    """

    def __init__(self, policy: Any, name: str = "df-agent-policy-worker") -> None:
        self.policy = policy
        self._sample, self.replan_every = chunk_interface(policy)
        self.start_offset = 0 if getattr(policy, "chunk_starts_at_observation", False) else 1
        self._jobs: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit_reset(self, generation: int) -> None:
        self._jobs.put(("reset", generation, None))

    def submit(self, generation: int, tick: int, observation: Any, noise_level: Any,
               executed: np.ndarray | None) -> None:
        self._jobs.put(("sample", generation, (tick, observation, noise_level, executed)))

    def results(self) -> list[tuple[int, str, Any]]:
        """(generation, 'chunk' | 'error', Chunk | exception) of every job finished since the last call."""
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def has_results(self) -> bool:
        return not self._results.empty()

    def close(self, timeout: float = 1.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)  # a policy stuck in a call is left behind (daemon thread)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, generation, payload = job
            if kind == "reset":
                try:
                    self.policy.reset(num_envs=1)
                except Exception as error:  # reported like a failed sample: the loop holds
                    log.exception("policy.reset failed")
                    self._results.put((generation, "error", error))
                continue
            tick, observation, noise_level, executed = payload
            started = time.perf_counter()
            try:
                actions = self._sample(observation, noise_level, executed)
                if actions.ndim != 2 or len(actions) == 0:
                    raise ValueError(f"policy returned actions of shape {actions.shape}, expected [T, A] with T >= 1")
            except Exception as error:
                log.exception("policy failed to sample a chunk")
                self._results.put((generation, "error", error))
                continue
            self._results.put((generation, "chunk", Chunk(tick, actions, time.perf_counter() - started,
                                                                  self.start_offset)))


class ActionScheduler:
    """Turns a policy into one action (or none) per control tick without ever blocking the tick."""

    def __init__(self, policy: Any, period_s: float, stall_timeout_s: float, margin_ticks: int = MARGIN_TICKS) -> None:
        if period_s <= 0 or stall_timeout_s <= 0:
            raise ValueError(f"period_s and stall_timeout_s must be > 0, got {period_s}, {stall_timeout_s}")
        self.period_s = float(period_s)
        self.stall_timeout_s = float(stall_timeout_s)
        self.margin_ticks = int(margin_ticks)
        self.worker = ChunkWorker(policy)
        self.replan_every = self.worker.replan_every
        self.start_offset = self.worker.start_offset
        self.counts = {"chunks": 0, "late_chunks": 0, "stale_chunks": 0, "trimmed_actions": 0, "starved_ticks": 0,
                       "policy_errors": 0, "policy_stalls": 0}
        self.latencies: list[float] = []
        self._generation = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._plan: dict[int, tuple[Chunk, int]] = {}  # tick -> (chunk, index of the action meant for it)
        self._in_flight: tuple[int, float] | None = None  # (observation tick, perf_counter at request)
        self._stall_reported = False
        self._last_tick: int | None = None
        self._last_request_tick: int | None = None
        self._executed: list[np.ndarray] | None = None  # since the last request; None before the first one
        self._last_gripper = 1.0
        self._action_dim = 7
        self._recent: list[float] = []
        self._paused = False

    # ------------------------------------------------------------------------------------------------ control
    def reset(self) -> None:
        """New episode: forget the plan, discard answers to earlier requests, reset the policy (in the worker)."""
        self._generation += 1
        self._reset_state()
        self.worker.submit_reset(self._generation)

    def pause(self) -> None:
        """Stop requesting and drop the plan (deactivate, stale robot state); `resume` or `reset` ends it."""
        self._plan.clear()
        self._paused = True

    def resume(self) -> None:
        """Continue after a pause: earlier answers are discarded, the next chunk starts from a fresh observation."""
        if self._paused:
            self._generation += 1
            self._in_flight = None
            self._stall_reported = False
            self._executed = None
            self._last_request_tick = None
            self._paused = False

    def close(self) -> None:
        self.worker.close()

    @property
    def lead_ticks(self) -> int:
        """Ticks a request needs to come back, from the measured latencies (at least 1)."""
        if not self._recent:
            return 1
        latency = float(np.quantile(self._recent, LATENCY_QUANTILE))
        return max(1, math.ceil(latency / self.period_s - 1e-9))

    def planned_ticks(self) -> list[int]:
        return sorted(self._plan)

    def wait_for_answer(self, timeout: float) -> bool:
        """Block until the request in flight has an answer (tests and offline drivers; never the control tick).

        Returns at once, False, when nothing is in flight."""
        if self._in_flight is None:
            return self.worker.has_results()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker.has_results():
                return True
            time.sleep(0.001)
        return False

    # ------------------------------------------------------------------------------------------------ the tick
    def step(self, tick: int, observe: Callable[[], tuple[Any, Any]]) -> ScheduledStep:
        """The action for control tick `tick` (ticks strictly increase; a skipped tick's action is dropped).

        `observe()` returns (observation, noise_level) of this tick; it is called only when a chunk is requested.
        """
        if self._last_tick is not None and tick <= self._last_tick:
            raise ValueError(f"ticks must increase: got {tick} after {self._last_tick}")
        self._last_tick = tick
        result = ScheduledStep(tick, None)
        self._collect(tick, result)
        if self._in_flight is not None and not self._stall_reported:
            waited = time.perf_counter() - self._in_flight[1]
            if waited > self.stall_timeout_s:
                self._stall_reported = True
                self._plan.clear()
                self.counts["policy_stalls"] += 1
                result.hold = True
                result.events.append(("policy_stall", f"policy has not answered for {waited:.2f} s "
                                      f"(timeout {self.stall_timeout_s} s): holding"))
        for old in [t for t in self._plan if t < tick]:
            del self._plan[old]  # meant for a tick that has passed: never executed late
        entry = self._plan.pop(tick, None)
        action = None
        if entry is not None:
            result.chunk, result.index = entry
            action = result.action = np.asarray(entry[0].actions[entry[1]], dtype=np.float64)
        if action is None and not self._paused:
            self.counts["starved_ticks"] += 1
        if not self._paused and self._in_flight is None and self._should_request(tick):
            observation, noise_level = observe()
            executed = None if self._executed is None else np.stack(self._executed) if self._executed else None
            self.worker.submit(self._generation, tick, observation, noise_level, executed)
            self._in_flight = (tick, time.perf_counter())
            self._stall_reported = False
            self._last_request_tick = tick
            self._executed = []
        if action is not None:
            self._last_gripper = float(action[-1])
        if self._executed is not None:  # what the next request's policy is told was executed after its observation
            self._executed.append(action if action is not None else self._hold_action())
        return result

    def _hold_action(self) -> np.ndarray:
        """No motion, the last gripper command: what a tick without an action executed."""
        hold = np.zeros(self._action_dim)
        hold[-1] = self._last_gripper
        return hold

    def _should_request(self, tick: int) -> bool:
        if self._last_request_tick is None:
            return True
        if self.replan_every is not None:
            return tick - self._last_request_tick >= self.replan_every
        remaining = sum(1 for t in self._plan if t > tick)
        return remaining <= self.lead_ticks - 1 + self.margin_ticks

    def _collect(self, tick: int, result: ScheduledStep) -> None:
        for generation, kind, payload in self.worker.results():
            if generation != self._generation:
                continue  # asked for before a reset / resume
            if kind == "error":
                self._in_flight = None
                self._plan.clear()
                self.counts["policy_errors"] += 1
                result.hold = True
                result.events.append(("policy_error", f"policy raised {type(payload).__name__}: {payload}; holding"))
                continue
            chunk: Chunk = payload
            self._in_flight = None
            self._action_dim = chunk.actions.shape[1]
            self.counts["chunks"] += 1
            self.latencies.append(chunk.latency_s)
            self._recent = [*self._recent[-(LATENCY_WINDOW - 1):], chunk.latency_s]
            late = max(0, tick - chunk.start_tick)
            kept = range(late, len(chunk.actions))
            result.chunk_latency_s = chunk.latency_s
            result.trimmed = min(late, len(chunk.actions))
            if late:
                self.counts["late_chunks"] += 1
                self.counts["trimmed_actions"] += result.trimmed
            if len(kept) == 0:
                self.counts["stale_chunks"] += 1
                continue
            first = chunk.start_tick + late
            for t in [t for t in self._plan if t >= first]:
                del self._plan[t]  # the newer chunk supersedes the rest of the older one
            for i, index in enumerate(kept):
                self._plan[first + i] = (chunk, index)

    def summary(self) -> dict[str, Any]:
        latencies = np.asarray(self.latencies)

        def ms(q: float) -> float | None:
            return round(float(np.quantile(latencies, q)) * 1e3, 3) if latencies.size else None

        return {**self.counts, "policy_latency_p50_ms": ms(0.5), "policy_latency_p95_ms": ms(0.95),
                "policy_latency_max_ms": ms(1.0), "replan_every": self.replan_every}


class TickClock:
    """Control-tick indices from a monotonic clock: +1 per period; a callback that came a whole period late
    skips the missed tick (its action is dropped, not executed late)."""

    def __init__(self, period_s: float) -> None:
        self.period_s = float(period_s)
        self.tick: int | None = None
        self._last_time: float | None = None
        self.skipped = 0

    def advance(self, now: float) -> int:
        if self.tick is None or self._last_time is None:
            self.tick = 0
        else:
            missed = max(0, round((now - self._last_time) / self.period_s) - 1)
            self.skipped += missed
            self.tick += 1 + missed
        self._last_time = now
        return self.tick
