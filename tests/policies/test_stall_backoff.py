"""Stall back-off: guidance scaled down per env when the observation refutes the plan, and back up after."""

from __future__ import annotations

import numpy as np
import pytest

from planners.df_planner import DFPlanner, DFPlannerConfig
from policies.mpc import MPCPolicy
from policies.stall_backoff import StallBackoff
from tests.planners.tiny_models import FRAME_STACK, trained_model


def test_update_backs_off_refused_envs_and_recovers_the_others():
    rule = StallBackoff(stuck_distance=0.1, planned_distance=0.4, factor=0.5, recovery=2.0, floor=0.1)
    # stuck with a long plan / moving / stuck with a short plan (dwelling at a goal) / stuck at the floor
    weights, refused = rule.update(np.array([1.0, 1.0, 0.25, 0.15]), np.array([0.0, 0.5, 0.02, 0.05]),
                                   np.array([1.0, 2.0, 0.2, 0.9]))
    np.testing.assert_allclose(weights, [0.5, 1.0, 0.5, 0.1])  # recovery capped at 1, back-off at the floor
    assert refused.tolist() == [True, False, False, True]
    weights, refused = rule.update(weights, np.array([np.nan, 0.0, 0.3, 0.3]), np.array([1.0, 0.5, 0.3, 0.3]))
    np.testing.assert_allclose(weights, [0.5, 0.5, 1.0, 0.2])  # NaN: unknown, unchanged


@pytest.mark.parametrize("value, message", [
    ({"factor": 1.5}, "factor must be in"), ({"stuck_distance": -1.0}, "stuck_distance"),
    ({"planned_distance": 0.05}, "planned_distance must exceed"), ({"recovery": 0.5}, "recovery"),
    ({"floor": 2.0}, "floor"), ({"speed": 1.0}, "unknown fields"), ("fast", "must be a factor"),
])
def test_bad_settings_are_refused_with_their_name(value, message):
    with pytest.raises(ValueError, match=message):
        StallBackoff.from_value(value)


def test_from_value_forms():
    assert StallBackoff.from_value(None) is None and StallBackoff.from_value(0) is None
    assert StallBackoff.from_value(0.25) == StallBackoff(factor=0.25)
    assert StallBackoff.from_value({"stuck_distance": 0.2}).stuck_distance == 0.2


class WeightRecordingPlanner(DFPlanner):
    def __init__(self):
        super().__init__(trained_model(), DFPlannerConfig().with_overrides(sampling_steps=4, guidance_scale=1.0,
                                                                           mcg_samples=1))
        self.weights: list[np.ndarray | None] = []

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0, guidance_weight=None):
        self.weights.append(None if guidance_weight is None else np.array(guidance_weight))
        return super().plan(observation, goal, horizon, history, noise_level, guidance_weight=guidance_weight)


def test_a_blocked_env_gets_less_guidance_and_a_free_one_keeps_it():
    planner = WeightRecordingPlanner()
    policy = MPCPolicy(planner, replan_every=FRAME_STACK, stall_backoff={"stuck_distance": 0.01,
                                                                                  "planned_distance": 0.02})
    policy.reset(num_envs=2, goals=np.array([[1.0, 0.0], [0.0, 1.0]]), max_episode_steps=8, episode_seeds=[0, 1])
    obs = np.zeros((2, 4))
    blocked_at = obs[0].copy()
    for _ in range(8):
        policy.act(obs)
        offset = policy.step - 1 - policy.plan_step
        obs = policy.current_plan.observations[:, offset].copy()  # env 1 goes where its plan says
        obs[0] = blocked_at  # env 0 is held in place, as by a wall
    assert planner.weights[0].tolist() == [1.0, 1.0]
    assert policy.stall_events >= 1
    blocked, free = np.array([w[0] for w in planner.weights]), np.array([w[1] for w in planner.weights])
    assert (free == 1.0).all()
    assert blocked[-1] < 1.0


def test_a_ball_waiting_at_its_goal_keeps_its_guidance():
    planner = WeightRecordingPlanner()
    policy = MPCPolicy(planner, replan_every=FRAME_STACK, stall_backoff={"stuck_distance": 0.01,
                                                                          "planned_distance": 0.02})
    policy.reset(num_envs=1, goals=np.zeros((1, 2)), max_episode_steps=8, episode_seeds=[0])
    for _ in range(8):
        policy.act(np.zeros((1, 4)))  # at the goal, at rest: no progress is possible, so none is missed
    assert policy.stall_events == 0 and all(w.tolist() == [1.0] for w in planner.weights)


def test_zero_weight_gives_the_unguided_plan_of_that_env():
    planner = DFPlanner(trained_model(), DFPlannerConfig().with_overrides(sampling_steps=4, guidance_scale=2.0,
                                                                          mcg_samples=1))
    obs = np.zeros((2, 4))
    goal = np.array([[1.0, 1.0], [1.0, 1.0]])
    planner.reseed(3)
    weighted = planner.plan(obs, goal, 3, guidance_weight=np.array([0.0, 1.0]))
    planner.reseed(3)
    unguided = planner.plan(obs, None, 3)
    planner.reseed(3)
    guided = planner.plan(obs, goal, 3)
    np.testing.assert_allclose(weighted.observations[0], unguided.observations[0], atol=1e-5)
    np.testing.assert_allclose(weighted.observations[1], guided.observations[1], atol=1e-5)
    assert not np.allclose(guided.observations[0], unguided.observations[0], atol=1e-3)
    with pytest.raises(ValueError, match="guidance_weight must be >= 0"):
        planner.plan(obs, goal, 3, guidance_weight=np.array([-1.0, 1.0]))
    with pytest.raises(ValueError, match="guidance_weight must have shape"):
        planner.plan(obs, goal, 3, guidance_weight=np.ones(3))


def test_a_planner_without_guidance_weight_or_pd_execution_is_refused():
    class Plain:
        frame_stack = FRAME_STACK

        def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
            raise AssertionError("not called")

    with pytest.raises(ValueError, match="takes guidance_weight"):
        MPCPolicy(Plain(), stall_backoff=0.5)
    with pytest.raises(ValueError, match="execution='actions'"):
        MPCPolicy(WeightRecordingPlanner(), execution="pd", stall_backoff=0.5)
