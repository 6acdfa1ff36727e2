"""The geodesic goal distance: shortest ways through the data's free space, exact on open ground up to the grid's
octile metric, around a wall where one stands, differentiable, and wired into the planner's guidance."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from planners.df_planner import DFPlanner, DFPlannerConfig
from planners.free_space import FreeSpaceModel, fit_free_space
from planners.goal_distance import GoalDistanceField, geodesic_distance, geodesic_goal_reward
from tests.planners.tiny_models import trained_model

# Octile steps (8 neighbours) overestimate a Euclidean distance by at most sqrt(4 - 2 sqrt 2) - 1 = 8.2%.
OCTILE_ERROR = 0.083


def u_corridor(count: int, seed: int = 0) -> np.ndarray:
    """Positions in a U: two arms x in [0, 1] and [2, 3] for y in [0, 3], joined by a floor y in [0, 1].
    The wall x in (1, 2), y in (1, 3] between the arms is never visited."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 3.0, size=(count * 2, 2))
    keep = (xy[:, 1] <= 1.0) | (xy[:, 0] <= 1.0) | (xy[:, 0] >= 2.0)
    return xy[keep][:count].astype(np.float32)


def open_square(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=(count, 2)).astype(np.float32)


@functools.lru_cache(maxsize=2)
def head(layout: str) -> FreeSpaceModel:
    positions = u_corridor(60000) if layout == "u" else open_square(60000)
    model, _ = fit_free_space(positions, resolution=0.05, bandwidth=0.1, padding=0.5)
    return model


def distances(field: GoalDistanceField, goal: tuple[float, float], points: list[tuple[float, float]]) -> np.ndarray:
    fields = field.fields(np.array([goal]))
    xy = torch.tensor([points], dtype=torch.float32)
    return geodesic_distance(fields, field.low, field.high, field.outside_slope, xy)[0].numpy()


def test_open_ground_distance_is_euclidean_up_to_the_octile_metric():
    field = GoalDistanceField(head("open"))
    goal = (0.5, 0.5)
    points = [(2.5, 0.5), (2.5, 2.5), (1.0, 2.7), (0.5, 0.5), (0.7, 0.6)]
    euclid = np.array([np.hypot(x - goal[0], y - goal[1]) for x, y in points])
    got = distances(field, goal, points)
    assert np.all(got >= euclid - 0.03), (got, euclid)
    assert np.all(got <= euclid * (1 + OCTILE_ERROR) + 0.03), (got, euclid)


def test_distance_goes_around_the_wall():
    field = GoalDistanceField(head("u"))
    goal = (2.5, 2.8)  # top of the right arm
    start = (0.5, 2.8)  # top of the left arm: 2 units away in a straight line, through the wall
    # Down the left arm to the inner corner (1, 1), across the wall's foot to (2, 1), up the right arm: 4.74;
    # the free space reaches a little beyond the data (the kernel's tail), so the corners are cut a little.
    around = 2 * float(np.hypot(0.5, 1.8)) + 1.0
    got = float(distances(field, goal, [start])[0])
    assert got > 4.0, got
    assert got < around * (1 + OCTILE_ERROR), got


def test_gradient_follows_the_corridor_not_the_straight_line():
    field = GoalDistanceField(head("u"))
    goal = np.array([[2.5, 2.8]])
    fields = field.fields(goal)
    point = torch.tensor([[[0.5, 2.0]]], requires_grad=True)  # left arm, goal up and to the right
    geodesic_distance(fields, field.low, field.high, field.outside_slope, point).sum().backward()
    descent = -point.grad[0, 0]
    assert descent[1] < 0 and abs(descent[1]) > abs(descent[0]), descent  # down the arm, towards the floor
    assert 0.8 < float(descent.norm()) < 1.2  # unit slope in free space, like the straight-line distance


def test_a_point_in_the_wall_is_led_out_of_it_and_costs_more():
    field = GoalDistanceField(head("u"), outside_slope=3.0)
    goal = np.array([[2.5, 2.8]])
    fields = field.fields(goal)
    point = torch.tensor([[[1.4, 2.0]]], requires_grad=True)  # inside the wall, nearer the left arm
    value = geodesic_distance(fields, field.low, field.high, field.outside_slope, point)
    value.sum().backward()
    assert point.grad[0, 0, 0] > 0  # descending moves x back towards the left arm at x <= 1
    inside_arm = float(distances(field, (2.5, 2.8), [(1.0, 2.0)])[0])
    assert float(value.detach()) > inside_arm


def test_points_beyond_the_grid_keep_a_slope():
    field = GoalDistanceField(head("open"))
    beyond = (field.high[0] + 2.0, 1.0)
    edge = (field.high[0], 1.0)
    got = distances(field, (0.5, 0.5), [edge, beyond])
    assert got[1] == pytest.approx(got[0] + 2.0 * field.outside_slope, rel=1e-4)


def test_fields_are_cached_per_goal_and_refuse_bad_input():
    field = GoalDistanceField(head("u"), cache_size=2)
    first = field.field(np.array([0.5, 0.5]))
    assert field.field(np.array([0.5, 0.5])) is first
    field.field(np.array([2.5, 0.5]))
    field.field(np.array([2.5, 2.5]))
    assert field.field(np.array([0.5, 0.5])) is not first  # evicted, recomputed
    with pytest.raises(ValueError, match="goal"):
        field.field(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="goals"):
        field.fields(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="outside_slope"):
        GoalDistanceField(head("u"), outside_slope=0.5)
    with pytest.raises(ValueError, match="no grid node"):
        GoalDistanceField(head("u"), free_logit=1e9)


def test_planner_uses_the_geodesic_reward_only_with_a_head():
    model = trained_model()
    with pytest.raises(ValueError, match="geodesic"):
        DFPlanner(model, DFPlannerConfig(goal_reward="geodesic"))
    with pytest.raises(ValueError, match="geodesic_outside_slope"):
        DFPlannerConfig(goal_reward="geodesic", geodesic_outside_slope=0.0)
    planner = DFPlanner(model, DFPlannerConfig(goal_reward="geodesic"), free_space=head("u"))
    frames = torch.tensor([[[0.5, 2.0], [0.5, 1.5]], [[2.5, 2.0], [2.5, 2.5]]])
    goal = torch.tensor([[2.5, 2.8], [2.5, 2.8]])
    expected = geodesic_goal_reward(planner.goal_distance, frames, goal)
    assert torch.allclose(planner.goal_reward(frames, goal), expected)
    # The right arm's plan is nearer the goal by the corridor even though both are 2 units across.
    assert expected[1] > expected[0] + 5.0


def test_geodesic_guidance_runs_through_the_planner():
    model = trained_model()
    observation = np.array([[0.5, 2.0, 0.0, 0.0]] * 3)
    goal = np.array([[2.5, 2.8]] * 3)
    config = DFPlannerConfig(sampling_steps=4, goal_reward="geodesic").with_overrides(guidance_scale=0.2,
                                                                                      mcg_samples=2)
    plan = DFPlanner(model, config, free_space=head("u")).plan(observation, goal, horizon=3)
    assert plan.actions.shape == (3, 3 * 2, 2) and np.isfinite(plan.observations).all()
    assert np.isfinite(plan.diagnostics["goal_reward"]).all()


def test_smooth_core_is_quadratic_inside_its_radius_and_shifted_outside():
    from planners.goal_distance import smooth_core

    distance = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.0], requires_grad=True)
    value = smooth_core(distance, 0.5)
    torch.testing.assert_close(value, torch.tensor([0.0, 0.01, 0.25, 0.75, 1.75]))
    value.sum().backward()
    # The pull fades to 0 at the goal and is the plain distance's unit slope beyond the radius.
    torch.testing.assert_close(distance.grad, torch.tensor([0.0, 0.2, 1.0, 1.0, 1.0]))
    assert smooth_core(distance, 0.0) is distance


def test_goal_core_radius_reaches_both_rewards_and_is_validated():
    from planners.df_planner import goal_reward
    from planners.goal_distance import smooth_core

    with pytest.raises(ValueError, match="goal_core_radius"):
        DFPlannerConfig(goal_core_radius=-0.1)
    model = trained_model()
    frames = torch.tensor([[[2.4, 2.7], [2.5, 2.0]]])
    goal = torch.tensor([[2.5, 2.8]])
    plain = DFPlanner(model, DFPlannerConfig(goal_core_radius=0.3))
    expected = -smooth_core((frames - goal[:, None]).norm(dim=-1), 0.3).sum(dim=1)
    torch.testing.assert_close(plain.goal_reward(frames, goal), expected)
    assert not torch.allclose(expected, goal_reward(frames, goal))
    geodesic = DFPlanner(model, DFPlannerConfig(goal_reward="geodesic", goal_core_radius=0.3), free_space=head("u"))
    cored = geodesic_goal_reward(geodesic.goal_distance, frames, goal, core_radius=0.3)
    assert torch.allclose(geodesic.goal_reward(frames, goal), cored)
    assert cored > geodesic_goal_reward(geodesic.goal_distance, frames, goal)  # the core only lowers the cost
