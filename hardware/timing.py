"""Control-loop timing: achieved tick rate, jitter, deadline misses and the time each tick took.

Intervals are measured only between ticks of one activation (`begin` starts a new run of ticks), so a node
that was inactive for a while does not report that pause as a tick interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEADLINE_FACTOR = 1.5  # a tick that starts more than this many periods after the previous one missed its deadline


@dataclass
class TickStats:
    period_s: float = 0.1
    intervals: list[float] = field(default_factory=list)  # seconds between consecutive tick starts
    durations: list[float] = field(default_factory=list)  # seconds each tick's work took
    ticks: int = 0
    commands: int = 0
    _last_start: float | None = None

    def begin(self, period_s: float | None = None) -> None:
        """A new run of ticks (activation): the gap before it is not an interval."""
        if period_s is not None:
            self.period_s = period_s
        self._last_start = None

    def record(self, started: float, finished: float, commanded: bool) -> None:
        """`started`, `finished`: perf_counter seconds of one tick."""
        if self._last_start is not None:
            self.intervals.append(started - self._last_start)
        self._last_start = started
        self.durations.append(finished - started)
        self.ticks += 1
        self.commands += int(commanded)

    def summary(self) -> dict[str, float | int | None]:
        intervals, durations = np.asarray(self.intervals), np.asarray(self.durations)

        def ms(values: np.ndarray, reducer) -> float | None:
            return round(float(reducer(values)) * 1e3, 3) if values.size else None

        return {
            "ticks": self.ticks,
            "commands": self.commands,
            "period_ms": round(self.period_s * 1e3, 3),
            "rate_hz": round(1.0 / float(intervals.mean()), 3) if intervals.size else None,
            "jitter_ms": ms(intervals, np.std),
            "max_interval_ms": ms(intervals, np.max),
            "deadline_misses": int(np.sum(intervals > DEADLINE_FACTOR * self.period_s)),
            "tick_duration_p95_ms": ms(durations, lambda v: np.percentile(v, 95)),
            "tick_duration_max_ms": ms(durations, np.max),
        }
