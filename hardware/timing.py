"""Control-loop timing: achieved tick rate, jitter and per-tick policy latency."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TickStats:
    tick_starts: list[float] = field(default_factory=list)  # perf_counter seconds
    policy_latencies: list[float] = field(default_factory=list)
    commands: int = 0

    def record(self, started: float, policy_latency: float | None, commanded: bool) -> None:
        self.tick_starts.append(started)
        if policy_latency is not None:
            self.policy_latencies.append(policy_latency)
        self.commands += int(commanded)

    def summary(self) -> dict[str, float | int | None]:
        intervals = np.diff(self.tick_starts) if len(self.tick_starts) > 1 else np.zeros(0)
        latencies = np.asarray(self.policy_latencies)

        def ms(values: np.ndarray, reducer) -> float | None:
            return round(float(reducer(values)) * 1e3, 3) if values.size else None

        return {
            "ticks": len(self.tick_starts),
            "commands": self.commands,
            "rate_hz": round(1.0 / float(intervals.mean()), 3) if intervals.size else None,
            "jitter_ms": ms(intervals, np.std),
            "max_interval_ms": ms(intervals, np.max),
            "policy_latency_mean_ms": ms(latencies, np.mean),
            "policy_latency_p95_ms": ms(latencies, lambda v: np.percentile(v, 95)),
        }
