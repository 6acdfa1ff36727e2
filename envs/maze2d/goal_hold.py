"""Goal holding: once a planner's agent is at the goal, does it stay there?

The maze2d return counts the steps spent within the goal radius, so an agent that reaches the goal and then
drifts out of it loses score with a success rate of 1. `goal_hold_report` measures that phase alone, in a few
minutes instead of a full closed-loop evaluation: every environment starts near the goal (uniform within
`start_offset` of it, velocity N(0, start_speed_std^2) per axis), the planner replans every `replan_every` steps
for `steps` steps, and the report gives the fraction of steps within the goal radius and the mean distance to
the goal at each replan. Plans look `lookahead_tokens` tokens past the measured steps, as an episode's plans
look to the episode's end. Starts are placed with the simulator's state setter, which only a measurement may use;
the planner sees observations and the goal, as in an evaluation.

`execution="actions"` executes the plan's own actions (the DF protocol); "pd" tracks the plan's states with
Diffuser's PD controller instead, which tells whether the plan's states or its actions are what drifts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from envs.maze2d.env import GOAL_RADIUS
from envs.maze2d.maps import get_maze

EXECUTIONS = ("actions", "pd")


@dataclass
class GoalHoldReport:
    starts: int
    steps: int
    replan_every: int
    execution: str
    inside_fraction: float  # steps within the goal radius / (starts * steps)
    final_inside_fraction: float  # environments within the radius at the last step
    mean_distance_per_replan: list[float]  # mean distance to the goal after each replan's steps
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def goal_hold_report(planner, maze: str, *, starts: int = 24, steps: int = 150, replan_every: int = 10,
                     seed: int = 0, start_offset: float = 0.35, start_speed_std: float = 1.0,
                     execution: str = "actions", lookahead_tokens: int = 30) -> GoalHoldReport:
    """Run `planner` (a maze2d `Planner`) from `starts` states near the maze's goal for `steps` steps."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the maze2d ids)
    from planners.baselines import pd_tracking_action

    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
    if starts < 1 or steps < 1 or replan_every < 1:
        raise ValueError(f"starts, steps and replan_every must be >= 1, got {starts}, {steps}, {replan_every}")
    if not (0 <= start_offset < GOAL_RADIUS):
        raise ValueError(f"start_offset must be in [0, {GOAL_RADIUS}), got {start_offset}")
    if lookahead_tokens < 0:
        raise ValueError(f"lookahead_tokens must be >= 0, got {lookahead_tokens}")
    if start_speed_std < 0:
        raise ValueError(f"start_speed_std must be >= 0, got {start_speed_std}")
    get_maze(maze)  # unknown mazes fail here
    env_id = f"maze2d-{maze}-v0"
    rng = np.random.default_rng(seed)
    environments = [gym.make(env_id).unwrapped for _ in range(starts)]
    started = time.perf_counter()
    try:
        observations = np.zeros((starts, 4))
        for i, env in enumerate(environments):
            env.reset(seed=seed + i)
            position = env.goal + rng.uniform(-start_offset, start_offset, 2)
            velocity = rng.normal(0.0, start_speed_std, 2)
            env.point_env.set_state(position, velocity)
            observations[i] = np.concatenate([position, velocity])
        goals = np.stack([env.goal for env in environments])
        inside = np.zeros(starts)
        distances: list[float] = []
        done = 0
        while done < steps:
            remaining_tokens = max(1, -(-(steps - done) // 10))
            # As in an episode, the plan looks past the measured steps (to the end of a longer episode).
            plan = planner.plan(observations.copy(), goals, horizon=remaining_tokens + lookahead_tokens)
            for t in range(min(replan_every, steps - done, plan.actions.shape[1])):
                if execution == "actions":
                    actions = plan.actions[:, t]
                else:
                    actions = pd_tracking_action(plan.observations[:, t], observations)
                for i, env in enumerate(environments):
                    observation, reward, *_ = env.step(np.clip(actions[i], -1.0, 1.0))
                    observations[i] = observation
                    inside[i] += reward
                done += 1
            distances.append(float(np.linalg.norm(observations[:, :2] - goals, axis=1).mean()))
        final = np.linalg.norm(observations[:, :2] - goals, axis=1) <= GOAL_RADIUS
    finally:
        for env in environments:
            env.close()
    return GoalHoldReport(starts=starts, steps=steps, replan_every=replan_every, execution=execution,
                          inside_fraction=float(inside.sum() / (starts * steps)),
                          final_inside_fraction=float(final.mean()), mean_distance_per_replan=distances,
                          seconds=time.perf_counter() - started)
