"""The evaluation interface every task implements: a `Runner` steps seeded episodes of a batched policy.

    result = Maze2DRunner("maze2d-umaze-v0", recorders=[PlanRecorder(4)]).run(policy, episodes=100, seed=0)
    records = FrankaSwapRunner(corruption="occlusion").run(policy, episodes=50, seed=10_000)

A runner owns the rollout loop (environments in lockstep, `policy.reset(...)` per batch, one batched
`policy.act(...)` per step; episode i uses seed `seed + i` whatever the batch size) and the task's scoring.
What is recorded on the way (plans, video frames, ...) are `Recorder`s, called at fixed points of the loop, so
a task's loop does not grow a flag per figure. Implementations: `envs.evaluation.Maze2DRunner` (maze2d
normalised score) and `envs.franka_swap.evaluation.FrankaSwapRunner` (fruit-swap success and stages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Runner(Protocol):
    def run(self, policy: Any, episodes: int, seed: int = 0) -> Any:
        """Run `episodes` seeded episodes (seeds seed, seed + 1, ...) and return the task's scored result."""
        ...


class Recorder:
    """Observes a runner's loop; every hook is optional (the defaults do nothing)."""

    def check(self, policy: Any) -> None:
        """Called once before the first episode: refuse a policy this recorder cannot record."""

    def substitute_env(self, first_episode: int, env_id: str) -> Any | None:
        """An env to run slot 0 of the batch starting at `first_episode` instead of the runner's (e.g. one that
        renders); None keeps the runner's."""
        return None

    def start_batch(self, first_episode: int, envs: Sequence[Any], observations: Any) -> None:
        """After the batch's resets."""

    def after_act(self, step: int, policy: Any) -> None:
        """After `policy.act` at env step `step` (0-based), before the envs step."""

    def after_step(self, step: int, envs: Sequence[Any], observations: Any) -> None:
        """After every env of the batch stepped."""

    def end_batch(self) -> None:
        """After the batch's last step."""

    def close(self) -> None:
        """After the last batch, also on errors: release what the recorder opened."""
