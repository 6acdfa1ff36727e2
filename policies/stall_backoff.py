"""Guidance back-off when the world refuses the plan: the MPC loop's check of its own predictions.

A goal-guided plan can cut through a wall the model has not learnt firmly enough; the agent then executes the
plan's actions, presses against the wall and stays put while every new plan predicts it moving on. The loop
sees this without any privileged information: at each replan it compares how much closer to the goal the ball
got since the last plan was made with how much closer that plan said it would get. A ball that gained less than
`stuck_distance` while its plan predicted a gain of at least `planned_distance` (env units, per replan) was
stopped by something the plan did not expect; the guidance of that environment is then scaled down by `factor`
(to at least `floor` of the planner's scale), so the next plans lean on the model's prior, which keeps to the
free space it learnt. Every other replan scales the guidance back up by `recovery`, up to the planner's scale.

Off by default: on the shipped medium model it trades stuck episodes for slower ones and does not raise the score
yet (docs/maze2d_results.md, "Stall back-off").

Why progress and not the prediction error: guided plans overshoot in free motion too (on the shipped medium model
the first token's predicted position is often 1-2 units ahead of where the ball gets), but there the ball moves;
in the episodes that never reach the goal it moves a median 0.02 units per token for most of the episode while
the plans predict 0.95-1.7 (20 episodes, docs/maze2d_results.md). And progress, not motion: a ball that waits at
the goal also stays put while its plans jitter around the goal, and must keep its guidance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StallBackoff:
    stuck_distance: float = 0.1  # env units per replan: the ball got less than this closer to the goal ...
    planned_distance: float = 0.4  # ... while the plan said it would get at least this closer: the plan was refused
    factor: float = 0.5  # guidance multiplier applied per refused plan
    recovery: float = 1.25  # guidance multiplier applied per plan whose prediction held
    floor: float = 0.05  # lowest guidance, as a fraction of the planner's scale

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stuck_distance) and self.stuck_distance > 0):
            raise ValueError(f"stall stuck_distance must be a positive distance (env units), got {self.stuck_distance}")
        if not (math.isfinite(self.planned_distance) and self.planned_distance > self.stuck_distance):
            raise ValueError(f"stall planned_distance must exceed stuck_distance ({self.stuck_distance}), "
                             f"got {self.planned_distance}")
        if not 0 < self.factor < 1:
            raise ValueError(f"stall back-off factor must be in (0, 1), got {self.factor}")
        if not (math.isfinite(self.recovery) and self.recovery >= 1):
            raise ValueError(f"stall recovery must be >= 1, got {self.recovery}")
        if not 0 <= self.floor <= 1:
            raise ValueError(f"stall floor must be in [0, 1], got {self.floor}")

    def update(self, weights: np.ndarray, progress: np.ndarray, planned_progress: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """New per-environment guidance weights [B] from the old ones, the progress towards the goal each ball made
        since the last plan [B] and the progress that plan predicted [B] (env units, negative = away; NaN =
        unknown, left as is), and which environments were backed off."""
        weights = np.asarray(weights, dtype=np.float64)
        progress = np.asarray(progress, dtype=np.float64)
        planned = np.asarray(planned_progress, dtype=np.float64)
        if progress.shape != weights.shape or planned.shape != weights.shape:
            raise ValueError(f"progress {progress.shape} and planned progress {planned.shape} must match the "
                             f"guidance weights {weights.shape}")
        known = np.isfinite(progress) & np.isfinite(planned)
        refused = known & (progress < self.stuck_distance) & (planned >= self.planned_distance)
        held = known & ~refused
        updated = weights.copy()
        updated[refused] = np.maximum(weights[refused] * self.factor, self.floor)
        updated[held] = np.minimum(weights[held] * self.recovery, 1.0)
        return updated, refused

    @classmethod
    def from_value(cls, value: StallBackoff | dict | float | None) -> StallBackoff | None:
        """From a checkpoint's planner_defaults or an override: a StallBackoff, a dict of its fields, a factor
        alone, or None / 0 (off)."""
        if value is None or isinstance(value, StallBackoff):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(f"stall_backoff: unknown fields {sorted(unknown)}; known: "
                                 f"{sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"stall_backoff must be a factor, a dict of StallBackoff fields or None, got {value!r}")
        return None if value == 0 else cls(factor=float(value))
