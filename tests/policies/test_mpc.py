"""MPCPolicy: replanning cadence, shrinking horizon, executing (clipped) plan actions, noise flags, PD baseline."""

from __future__ import annotations

import numpy as np
import pytest

from planners.base import Plan
from planners.baselines import pd_tracking_action
from planners.df_planner import DFPlanner, DFPlannerConfig
from policies.base import Policy
from policies.mpc import MPCPolicy
from tests.planners.tiny_models import FRAME_STACK, trained_model


class RecordingPlanner:
    """A real DFPlanner whose calls are recorded; `action_gain` scales the returned actions (to test clipping)."""

    def __init__(self, action_gain: float = 1.0, **config):
        values = {"sampling_steps": 4, "guidance_scale": 1.0, "mcg_samples": 1, **config}
        self.inner = DFPlanner(trained_model(), DFPlannerConfig().with_overrides(**values))
        self.frame_stack = self.inner.frame_stack
        self.action_gain = action_gain
        self.calls: list[dict] = []
        self.plans: list[Plan] = []

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
        self.calls.append({"observation": np.array(observation), "horizon": horizon,
                           "noise_level": np.array(noise_level), "history": history})
        plan = self.inner.plan(observation, goal, horizon, history, noise_level)
        plan = Plan(plan.actions * self.action_gain, plan.observations, plan.diagnostics)
        self.plans.append(plan)
        return plan


def rollout(policy, steps: int, num_envs: int = 2, noise_level=0):
    """Feed the policy the observations its own plans predict (a model-consistent closed loop)."""
    rng = np.random.default_rng(0)
    obs = np.concatenate([rng.uniform(-0.5, 0.5, (num_envs, 2)), np.zeros((num_envs, 2))], axis=1)
    actions = []
    for _ in range(steps):
        actions.append(policy.act(obs, noise_level=noise_level))
        offset = policy.step - 1 - policy.plan_step
        obs = policy.current_plan.observations[:, offset]
    return np.stack(actions, axis=1)


def test_replans_every_token_with_the_horizon_shrinking_to_the_episode_end():
    planner = RecordingPlanner()
    policy = MPCPolicy(planner, replan_every=FRAME_STACK)
    assert isinstance(policy, Policy)
    policy.reset(num_envs=2, goals=np.array([[1.0, 0.0], [0.0, 1.0]]), max_episode_steps=9, env_id="synthetic",
                 episode_seeds=[0, 1])
    actions = rollout(policy, 9)
    assert [c["horizon"] for c in planner.calls] == [5, 4, 3, 2, 1]  # ceil((9 - t) / 2) at t = 0, 2, 4, 6, 8
    assert policy.replans == 5
    for step in range(9):  # each step executes the current plan's own action for that step
        plan = planner.plans[step // FRAME_STACK]
        np.testing.assert_allclose(actions[:, step], np.clip(plan.actions[:, step % FRAME_STACK], -1, 1), atol=1e-6)
    assert actions.dtype == np.float32 and actions.shape == (2, 9, 2)
    # A new episode starts over: full horizon and a fresh plan at step 0.
    policy.reset(num_envs=2, goals=np.zeros((2, 2)), max_episode_steps=4)
    rollout(policy, 1)
    assert planner.calls[-1]["horizon"] == 2 and policy.replans == 1


def test_actions_are_clipped_to_the_action_limit():
    planner = RecordingPlanner(action_gain=10.0)
    policy = MPCPolicy(planner, replan_every=FRAME_STACK)
    policy.reset(num_envs=2, goals=np.array([[2.0, 0.0], [-2.0, 0.0]]), max_episode_steps=6)
    actions = rollout(policy, 6)
    assert np.abs(actions).max() <= 1.0
    planned = np.concatenate([p.actions[:, :FRAME_STACK] for p in planner.plans], axis=1)
    assert np.abs(planned).max() > 1.0  # something was actually clipped
    np.testing.assert_allclose(actions, np.clip(planned, -1, 1), atol=1e-6)


def test_noise_flags_reach_the_planner_and_the_model():
    planner = RecordingPlanner()
    policy = MPCPolicy(planner, replan_every=FRAME_STACK)
    policy.reset(num_envs=2, goals=np.zeros((2, 2)), max_episode_steps=4)
    K = planner.inner.num_levels
    rollout(policy, 1, noise_level=np.array([0, K]))
    assert planner.calls[-1]["noise_level"].tolist() == [0, K]
    assert policy.current_plan.diagnostics["context_levels"].tolist() == [0, K]


def test_replan_every_other_cadences_and_plan_log():
    planner = RecordingPlanner()
    policy = MPCPolicy(planner, replan_every=3, keep_plans=2)
    policy.reset(num_envs=1, goals=np.zeros((1, 2)), max_episode_steps=10)
    rollout(policy, 10, num_envs=1)
    assert [c["horizon"] for c in planner.calls] == [5, 4, 2, 1]  # t = 0, 3, 6, 9
    assert [step for step, _ in policy.plan_log] == [6, 9]
    once = MPCPolicy(RecordingPlanner(), replan_every=None)
    once.reset(num_envs=1, goals=np.zeros((1, 2)), max_episode_steps=5)
    rollout(once, 5, num_envs=1)
    assert once.replans == 1  # the single plan covers the whole episode
    unknown_length = MPCPolicy(RecordingPlanner(default_horizon=2), replan_every=None)
    unknown_length.reset(num_envs=1)
    rollout(unknown_length, 5, num_envs=1)
    assert unknown_length.replans == 2  # a plan of 2 tokens (4 steps) runs out, then it plans again


def test_diffuser_pd_preset_plans_once_and_tracks_the_planned_states():
    policy = MPCPolicy.from_preset("diffuser-pd", trained_model(), sampling_steps=4)
    assert policy.replan_every is None and policy.execution == "pd"
    policy.reset(num_envs=2, goals=np.array([[1.0, 1.0], [-1.0, 0.0]]), max_episode_steps=7)
    obs = np.zeros((2, 4))
    for step in range(7):
        action = policy.act(obs)
        waypoint = policy.current_plan.observations[:, step]
        np.testing.assert_allclose(action, np.clip(pd_tracking_action(waypoint, obs), -1, 1), atol=1e-6)
        obs = obs + np.array([0.1, 0.0, 0.0, 0.0])  # the env need not follow the plan: feedback corrects it
    assert policy.replans == 1
    assert policy.current_plan.num_steps == 8  # ceil(7 / 2) tokens
    df = MPCPolicy.from_preset("df", trained_model())
    assert df.replan_every == FRAME_STACK and df.execution == "actions"
    df_pd = MPCPolicy.from_preset("df-pd", trained_model(), sampling_steps=4)
    assert df_pd.replan_every == FRAME_STACK and df_pd.execution == "pd"
    df_pd.reset(num_envs=2, goals=np.array([[1.0, 1.0], [-1.0, 0.0]]), max_episode_steps=7)
    for step in range(5):
        action = df_pd.act(obs)
        waypoint = df_pd.current_plan.observations[:, step % FRAME_STACK]
        np.testing.assert_allclose(action, np.clip(pd_tracking_action(waypoint, obs), -1, 1), atol=1e-6)
    assert df_pd.replans == -(-5 // FRAME_STACK)  # a new plan every token


def test_bad_input_is_refused_with_clear_errors():
    planner = RecordingPlanner()
    with pytest.raises(ValueError, match="replan_every"):
        MPCPolicy(planner, replan_every=0)
    with pytest.raises(ValueError, match="execution"):
        MPCPolicy(planner, execution="torque")
    policy = MPCPolicy(planner)
    with pytest.raises(ValueError, match="goals"):
        policy.reset(num_envs=2, goals=np.zeros((3, 2)))
    policy.reset(num_envs=2, goals=np.zeros((2, 2)), max_episode_steps=5)
    with pytest.raises(ValueError, match="reset for 2 envs"):
        policy.act(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="noise_level"):
        policy.act(np.zeros((2, 4)), noise_level=np.array([0, 10_000]))


def test_history_context_runs_executed_tokens_at_their_noisiest_frame_level():
    planner = RecordingPlanner()
    policy = MPCPolicy(planner, replan_every=FRAME_STACK, context="history")
    policy.reset(num_envs=2, goals=np.zeros((2, 2)), max_episode_steps=3 * FRAME_STACK)
    rng = np.random.default_rng(1)
    seen, executed = [], []
    for step in range(2 * FRAME_STACK + 1):
        obs = np.concatenate([rng.uniform(-0.5, 0.5, (2, 2)), np.zeros((2, 2))], axis=1)
        level = np.array([0, 7]) if step == 3 else np.array([0, 0])  # env 1's obs of step 3 is noisy
        seen.append(obs)
        executed.append(policy.act(obs, noise_level=level))
    first, second, third = (call["history"] for call in planner.calls)
    assert first is None and planner.calls[0]["noise_level"].tolist() == [0, 0]  # nothing executed yet
    assert second.tokens.shape == (2, 1, FRAME_STACK * 6) and third.tokens.shape == (2, 2, FRAME_STACK * 6)
    np.testing.assert_allclose(third.start_observation, seen[0])
    frames = third.tokens.reshape(2, 2 * FRAME_STACK, 6)
    for t in range(2 * FRAME_STACK):  # frame t = [o_{t+1} as seen, a_t as executed]
        np.testing.assert_allclose(frames[:, t, :4], seen[t + 1])
        np.testing.assert_allclose(frames[:, t, 4:], executed[t], rtol=1e-6)
    noisy_token = (3 - 1) // FRAME_STACK
    expected = np.zeros((2, 2), dtype=int)
    expected[1, noisy_token] = 7
    assert third.levels.tolist() == expected.tolist()
    windowed = MPCPolicy(RecordingPlanner(), replan_every=FRAME_STACK, context="history", history_tokens=1)
    windowed.reset(num_envs=2, goals=np.zeros((2, 2)), max_episode_steps=3 * FRAME_STACK)
    for obs in seen:
        windowed.act(obs)
    last = windowed.planner.calls[-1]["history"]
    assert last.tokens.shape == (2, 1, FRAME_STACK * 6)
    np.testing.assert_allclose(last.start_observation, seen[FRAME_STACK])
    with pytest.raises(ValueError, match="replan_every"):
        MPCPolicy(RecordingPlanner(), replan_every=FRAME_STACK + 1, context="history")
    with pytest.raises(ValueError, match="context"):
        MPCPolicy(RecordingPlanner(), context="memory")
