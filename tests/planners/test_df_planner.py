"""DFPlanner invariants: shapes, schedules, goal guidance, MCG, context noise levels, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from df_agent.sampler import SamplerConfig, sample
from planners.base import History, Plan, Planner
from planners.baselines import PRESETS, make_planner, pd_tracking_action
from planners.df_planner import DFPlanner, DFPlannerConfig, goal_reward, scheduling_matrix, softmin_goal_reward
from tests.planners.tiny_models import FRAME_STACK, trained_model, untrained_model


def planner(model=None, **overrides) -> DFPlanner:
    values = {"sampling_steps": 6, "default_horizon": 4, "guidance_scale": 1.0, "mcg_samples": 1, **overrides}
    return DFPlanner(model if model is not None else trained_model(), DFPlannerConfig().with_overrides(**values))


def test_plan_shapes_and_units():
    model = trained_model()
    obs = np.array([[0.0, 0.0, 0.0, 0.0], [0.5, -0.5, 0.0, 0.0], [-0.3, 0.2, 0.0, 0.0]])
    goal = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    p = planner(model)
    assert isinstance(p, Planner)
    plan = p.plan(obs, goal, horizon=3)
    assert isinstance(plan, Plan)
    assert plan.actions.shape == (3, 3 * FRAME_STACK, 2)
    assert plan.observations.shape == (3, 3 * FRAME_STACK, 4)
    assert plan.diagnostics["horizon_tokens"] == 3
    assert np.isfinite(plan.actions).all() and np.isfinite(plan.observations).all()
    # The plan starts where the observation is and moves about one data step (0.25) per env step.
    first_step = np.linalg.norm(plan.observations[:, 0, :2] - obs[:, :2], axis=-1)
    assert (first_step < 1.0).all(), first_step
    steps = np.linalg.norm(np.diff(plan.observations[:, :, :2], axis=1), axis=-1)
    assert 0.1 < float(np.median(steps)) < 0.5, steps
    assert p.plan(obs, goal).actions.shape[1] == 4 * FRAME_STACK  # default horizon
    assert p.plan(obs, None, horizon=1).actions.shape == (3, FRAME_STACK, 2)
    with pytest.raises(ValueError, match="horizon"):
        p.plan(obs, goal, horizon=0)
    with pytest.raises(ValueError, match="observation"):
        p.plan(obs[:, :3], goal)
    with pytest.raises(ValueError, match="goal"):
        p.plan(obs, goal[:2])


@pytest.mark.parametrize("schedule", ["pyramid", "autoregressive", "full_sequence"])
def test_schedules_plan_and_use_their_matrix(schedule):
    p = planner(schedule=schedule, sampling_steps=4)
    plan = p.plan(np.zeros((2, 4)), np.ones((2, 2)), horizon=5)
    expected_rows = {"pyramid": 4 + 4 + 1, "autoregressive": 5 * 4 + 1, "full_sequence": 4 + 1}[schedule]
    assert plan.diagnostics["rows"] == expected_rows
    assert scheduling_matrix(schedule, 5, 4).shape == (expected_rows, 5)
    matrix = p.levels_matrix(5)
    assert int(matrix[0].min()) == p.num_levels and int(matrix[-1].max()) == 0


def test_pyramid_keeps_the_future_noisier():
    matrix = scheduling_matrix("pyramid", 6, 10, uncertainty_scale=2.0)
    assert bool((matrix[:, 1:] >= matrix[:, :-1]).all())  # far tokens never cleaner than near ones
    assert matrix.shape[0] == 10 + 2 * 5 + 1
    with pytest.raises(ValueError, match="schedule"):
        DFPlannerConfig(schedule="zigzag")
    with pytest.raises(ValueError, match="noisy_context"):
        DFPlannerConfig(noisy_context="ignore")


def test_goal_guidance_moves_plans_towards_the_goal():
    obs = np.zeros((48, 4))
    goal = np.tile([2.0, 0.0], (48, 1))

    def distance(plan: Plan) -> float:
        return float(np.linalg.norm(plan.observations[:, -1, :2] - goal, axis=-1).mean())

    unguided = planner(guidance_scale=0.0, sampling_steps=10).plan(obs, goal)
    guided = planner(guidance_scale=1.0, sampling_steps=10).plan(obs, goal)
    mcg = planner(guidance_scale=1.0, sampling_steps=10, mcg_samples=4).plan(obs, goal)
    assert distance(guided) < 0.5 * distance(unguided), (distance(guided), distance(unguided))
    assert distance(mcg) < 0.5 * distance(unguided), (distance(mcg), distance(unguided))
    assert guided.diagnostics["goal_reward"].mean() > unguided.diagnostics["goal_reward"].mean()
    # The planned actions head the same way as the planned motion (the model's own actions are executable).
    heading = guided.actions[:, 0] / np.linalg.norm(guided.actions[:, 0], axis=-1, keepdims=True)
    assert float(heading[:, 0].mean()) > 0.5


def test_goal_reward_is_the_flexible_horizon_sum_over_frames():
    xy = torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])
    assert float(goal_reward(xy, torch.zeros(1, 2))) == pytest.approx(-5.0)


def test_softmin_goal_reward_is_a_smooth_min_distance():
    xy = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]])  # distances 0, 5, 10 from the origin
    goal = torch.zeros(1, 2)
    exact = 2.0 * torch.log(torch.exp(torch.tensor([0.0, -2.5, -5.0])).sum())
    torch.testing.assert_close(softmin_goal_reward(xy, goal, 2.0), exact.reshape(1))
    assert float(softmin_goal_reward(xy + torch.tensor([1.0, 0.0]), goal, 1e-3)) == pytest.approx(-1.0, abs=1e-3)
    with pytest.raises(ValueError, match="goal_reward"):
        DFPlannerConfig(goal_reward="final")
    with pytest.raises(ValueError, match="goal_temperature"):
        DFPlannerConfig(goal_temperature=0.0)


def test_softmin_goal_reward_guides_the_planner_and_scores_its_plans():
    obs = np.zeros((48, 4))
    goal = np.tile([2.0, 0.0], (48, 1))

    def distance(plan: Plan) -> float:
        return float(np.linalg.norm(plan.observations[..., :2] - goal[:, None], axis=-1).min(axis=1).mean())

    unguided = planner(guidance_scale=0.0, sampling_steps=10).plan(obs, goal)
    guided = planner(guidance_scale=20.0, sampling_steps=10, goal_reward="softmin").plan(obs, goal)
    assert distance(guided) < 0.5 * distance(unguided), (distance(guided), distance(unguided))
    # The plan's reported reward is the configured one.
    xy = torch.as_tensor(guided.observations[..., :2])
    expected = softmin_goal_reward(xy, torch.as_tensor(goal), 0.5).numpy()
    np.testing.assert_allclose(guided.diagnostics["goal_reward"], expected, rtol=1e-4, atol=1e-4)


def test_guidance_fn_unnormalises_and_handles_mcg_copies():
    model = trained_model()
    p = planner(model)
    goal = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    x0 = torch.randn(2, 3, model.config.token_dim, requires_grad=True)
    reward = p.guidance_fn(goal)
    frames = model.token_normalizer.unnormalize(x0).reshape(2, -1, 6)
    expected = goal_reward(frames[..., :2], goal)
    torch.testing.assert_close(reward(x0), expected)
    stacked = torch.cat([x0, x0 * 0.5], dim=0)  # two MCG copies of the same batch
    frames_half = model.token_normalizer.unnormalize(x0 * 0.5).reshape(2, -1, 6)
    torch.testing.assert_close(reward(stacked), torch.cat([expected, goal_reward(frames_half[..., :2], goal)]))
    (gradient,) = torch.autograd.grad(reward(x0).sum(), x0)  # differentiable end to end
    assert float(gradient.abs().sum()) > 0


def test_mcg_with_one_sample_equals_plain_guidance():
    model = trained_model()
    obs = np.zeros((3, 4))
    goal = np.tile([1.5, 0.5], (3, 1))
    p = planner(model, mcg_samples=1, seed=7)
    plan = p.plan(obs, goal)
    # Plain guidance done by hand: same latent, same noise, the sampler without MCG.
    generator = torch.Generator().manual_seed(7)
    context = model.context_normalizer.normalize(torch.zeros(3, 4))
    torch.randn(context.shape, generator=generator)  # the planner draws context noise first (unused at level 0)
    z0 = model.init_latent(context, 0)
    goal_t = torch.as_tensor(goal, dtype=torch.float32)

    def reward(x0):
        return goal_reward(model.token_normalizer.unnormalize(x0).reshape(x0.shape[0], -1, 6)[..., :2], goal_t)

    result = sample(model, p.levels_matrix(4), z0.detach(), config=SamplerConfig(guidance_scale=1.0),
                    guidance=reward, generator=generator)
    by_hand = model.token_normalizer.unnormalize(result.tokens).reshape(3, -1, 6)
    np.testing.assert_allclose(plan.observations, by_hand[..., :4].detach().double().numpy(), rtol=1e-5, atol=1e-5)
    mcg = planner(model, mcg_samples=4, seed=7).plan(obs, goal)
    assert not np.allclose(mcg.observations, plan.observations)  # other futures change the averaged gradient


class LevelSpy:
    """Records the context levels the planner hands to the real model's init_latent."""

    def __init__(self, model):
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.original = model.init_latent

        def spy(context, context_level=0):
            level = torch.as_tensor(context_level).long().expand(context.shape[0]).clone()
            self.calls.append((context.detach().clone(), level))
            return self.original(context, context_level)

        model.init_latent = spy
        self.model = model


def test_noise_flags_set_the_context_level_and_missing_ignores_the_value():
    model = untrained_model(seed=3)
    spy = LevelSpy(model)
    p = planner(model, guidance_scale=0.0, seed=1)
    K = model.num_levels
    obs = np.array([[0.2, 0.1, 0.0, 0.0], [0.4, -0.3, 0.0, 0.0], [-0.5, 0.5, 0.0, 0.0]])
    plan = p.plan(obs, None, noise_level=np.array([0, 37, K]))
    context, level = spy.calls[-1]
    assert level.tolist() == [0, 37, K]
    assert plan.diagnostics["context_levels"].tolist() == [0, 37, K]
    clean = model.context_normalizer.normalize(torch.as_tensor(obs[:1], dtype=torch.float32))
    torch.testing.assert_close(context[:1], clean)  # trusted: the value itself
    noisy = model.context_normalizer.normalize(torch.as_tensor(obs[1:2]).float())
    scale = float(model.schedule.alpha_bar(torch.tensor(37)).sqrt())
    torch.testing.assert_close(context[1:2], scale * noisy)  # already noisy: only brought to the level-k scale
    planner(model, guidance_scale=0.0, noisy_context="renoise").plan(obs, None, noise_level=np.array([0, 37, K]))
    renoised = spy.calls[-1][0]
    assert not torch.allclose(renoised[1:2], scale * noisy)  # distrusted: fresh noise up to level k
    torch.testing.assert_close(renoised[:1], clean)
    p.plan(obs, None, noise_level=5)
    assert spy.calls[-1][1].tolist() == [5, 5, 5]

    # Missing: the value cannot matter (even NaN is accepted); a noisy value still does.
    other = obs + np.array([3.0, -2.0, 1.0, 1.0])
    other_nan = np.full_like(obs, np.nan)
    missing = np.full(3, K)
    plans = [planner(model, guidance_scale=0.0, seed=4).plan(o, None, noise_level=missing) for o in (obs, other,
                                                                                                     other_nan)]
    np.testing.assert_array_equal(plans[0].observations, plans[1].observations)
    np.testing.assert_array_equal(plans[0].observations, plans[2].observations)
    noisy = [planner(model, guidance_scale=0.0, seed=4).plan(o, None, noise_level=10) for o in (obs, other)]
    assert not np.allclose(noisy[0].observations, noisy[1].observations)
    with pytest.raises(ValueError, match="noise_level"):
        p.plan(obs, None, noise_level=K + 1)
    with pytest.raises(ValueError, match="noise_level"):
        p.plan(obs, None, noise_level=np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        p.plan(other_nan, None, noise_level=0)


def test_history_runs_through_the_latent():
    model = trained_model()
    p = planner(model, guidance_scale=0.0)
    start = np.zeros((2, 4))
    tokens = np.zeros((2, 2, model.config.token_dim))
    frames = tokens.reshape(2, -1, 6)
    frames[:, :, 0] = 0.25 * np.arange(1, 5)  # moving right along x
    frames[:, :, 2] = 0.25
    frames[:, :, 4] = 1.0
    plan = p.plan(frames[:, -1, :4], None, horizon=2, history=History(start, frames.reshape(2, 2, -1)))
    assert plan.actions.shape == (2, 2 * FRAME_STACK, 2)
    with pytest.raises(ValueError, match="history"):
        p.plan(frames[:, -1, :4], None, history=History(start, tokens[:, :, :5]))
    # With history, noise_level says how far to trust the history's start observation; history.levels the tokens.
    flagged = p.plan(frames[:, -1, :4], None, horizon=2, noise_level=3,
                     history=History(start, frames.reshape(2, 2, -1), levels=np.array([[0, 5], [5, 0]])))
    assert flagged.diagnostics["context_levels"].tolist() == [3, 3]
    with pytest.raises(ValueError, match=r"history\.levels"):
        p.plan(frames[:, -1, :4], None, history=History(start, tokens, levels=np.zeros((2, 3))))


def test_presets_build_the_named_planners():
    model = trained_model()
    assert set(PRESETS) == {"df", "df-no-mcg", "df-ar", "full-sequence", "diffuser-pd", "df-pd"}
    assert make_planner("df", model).config.sampler.mcg_samples > 1
    assert make_planner("df-no-mcg", model).config.sampler.mcg_samples == 1
    assert make_planner("df-ar", model).config.schedule == "autoregressive"
    assert make_planner("full-sequence", model).config.schedule == "full_sequence"
    assert make_planner("df", model, guidance_scale=3.0, mcg_samples=None).config.sampler.guidance_scale == 3.0
    assert PRESETS["diffuser-pd"].execution == "pd" and PRESETS["diffuser-pd"].replan_once
    assert PRESETS["df-pd"].execution == "pd" and not PRESETS["df-pd"].replan_once
    assert PRESETS["df-pd"].planner == PRESETS["df"].planner
    import argparse

    from df_agent.cli import eval_maze2d

    parser = argparse.ArgumentParser()
    eval_maze2d.add_arguments(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "planner")
    assert set(choices) == set(PRESETS)  # the eval CLI offers exactly the presets
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("mppi", model)
    with pytest.raises(ValueError, match="override"):
        make_planner("df", model, temperature=1.0)


def test_pd_tracking_action_is_diffusers_controller():
    waypoint = np.array([[1.0, 2.0, 0.5, 0.0]])
    observation = np.array([[0.5, 2.5, 0.0, 0.5]])
    np.testing.assert_allclose(pd_tracking_action(waypoint, observation), [[1.0, -1.0]])


def test_bf16_precision_plans_like_fp32():
    obs = np.zeros((48, 4))
    goal = np.tile([2.0, 0.0], (48, 1))
    fp32 = planner(guidance_scale=1.0, sampling_steps=10).plan(obs, goal)
    bf16 = planner(guidance_scale=1.0, sampling_steps=10, precision="bf16").plan(obs, goal)
    assert bf16.actions.dtype == np.float64 and np.isfinite(bf16.observations).all()
    # Same noise, same model: bf16 rounding moves the plan a little, not somewhere else.
    end_fp32 = fp32.observations[:, -1, :2].mean(axis=0)
    end_bf16 = bf16.observations[:, -1, :2].mean(axis=0)
    assert np.linalg.norm(end_fp32 - end_bf16) < 0.3, (end_fp32, end_bf16)
    assert float(np.linalg.norm(bf16.observations[:, -1, :2] - goal, axis=-1).mean()) < 1.0
    with pytest.raises(ValueError, match="precision"):
        DFPlannerConfig(precision="fp8")


def test_guided_components_mask_follows_the_frame_layout():
    assert planner().guidance_mask() is None
    mask = planner(guided_components="actions").guidance_mask().reshape(FRAME_STACK, 6)
    torch.testing.assert_close(mask, torch.tensor([0.0, 0, 0, 0, 1, 1]).expand(FRAME_STACK, 6))
    mask = planner(guided_components="motion").guidance_mask().reshape(FRAME_STACK, 6)
    torch.testing.assert_close(mask, torch.tensor([0.0, 0, 1, 1, 1, 1]).expand(FRAME_STACK, 6))
    with pytest.raises(ValueError, match="guided_components"):
        DFPlannerConfig(guided_components="positions")


def test_action_only_guidance_reaches_the_sampler():
    # Same seed and noise: guiding only the actions still changes the plan (so the mask reaches the sampler),
    # and differently from guiding every component (the exact per-component step is tested in test_sampler).
    obs = np.zeros((8, 4))
    goal = np.tile([2.0, 0.0], (8, 1))
    unguided = planner(guidance_scale=0.0).plan(obs, goal)
    actions_only = planner(guided_components="actions").plan(obs, goal)
    full = planner().plan(obs, goal)
    assert not np.allclose(actions_only.actions, unguided.actions)
    assert not np.allclose(actions_only.observations, full.observations)
