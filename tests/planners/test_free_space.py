"""The free-space head: learns where data positions lie, scores paths through empty space, saves/loads safely,
and enters the planner's guidance reward only when asked."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from planners.df_planner import DFPlanner, DFPlannerConfig, goal_reward
from planners.free_space import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    FreeSpaceModel,
    fit_free_space,
    free_space_cost,
    has_free_space,
    load_free_space,
    save_free_space,
)
from tests.planners.tiny_models import trained_model


def two_rooms(count: int, seed: int = 0) -> np.ndarray:
    """Positions in two 1 x 1 rooms, x in [-2, -1] and [1, 2], y in [0, 1]; nothing in the gap between."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 1.0, size=(count, 2))
    left = rng.random(count) < 0.5
    xy[:, 0] = np.where(left, xy[:, 0] - 2.0, xy[:, 0] + 1.0)
    return xy.astype(np.float32)


@functools.lru_cache(maxsize=1)
def trained_head() -> FreeSpaceModel:
    model, report = fit_free_space(two_rooms(20000), resolution=0.05, bandwidth=0.1, padding=0.5)
    assert report.positions == 20000
    return model


def logits(model: FreeSpaceModel, points: list[tuple[float, float]]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(points, dtype=torch.float32)).numpy()


def test_head_separates_visited_from_empty_space():
    model = trained_head()
    inside = logits(model, [(-1.5, 0.5), (1.5, 0.5), (-1.8, 0.2), (1.2, 0.8)])
    gap = logits(model, [(0.0, 0.5), (-0.3, 0.5), (0.3, 0.5), (0.0, 0.1)])
    assert inside.min() > 0 > gap.max(), (inside, gap)


def test_cost_is_higher_for_a_path_through_the_gap_even_between_free_frames():
    model = trained_head()
    stays = torch.tensor([[[-1.8, 0.5], [-1.5, 0.5], [-1.2, 0.5]]])
    # Both frames lie in rooms; only the segment between them crosses the empty gap.
    jumps = torch.tensor([[[-1.5, 0.5], [1.5, 0.5]]])
    assert free_space_cost(model, jumps, interpolation=5) > free_space_cost(model, stays, interpolation=5) + 1.0
    # Without interpolation only the frames count, and the jump looks about as cheap as two frames that stay.
    assert free_space_cost(model, jumps, interpolation=0) < free_space_cost(model, stays[:, :2], interpolation=0) + 1.0


def test_cost_gradient_pushes_a_point_out_of_the_gap():
    model = trained_head()
    point = torch.tensor([[[-0.7, 0.5]]], requires_grad=True)
    free_space_cost(model, point, interpolation=0).sum().backward()
    assert point.grad[0, 0, 0] > 0  # descending the cost moves x towards the left room at -1


def test_save_and_load_round_trip(tmp_path):
    model = trained_head()
    save_free_space(model, tmp_path, {"maze": "two-rooms"})
    assert has_free_space(tmp_path)
    loaded = load_free_space(tmp_path)
    points = torch.randn(50, 2)
    with torch.no_grad():
        assert torch.equal(model(points), loaded(points))
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["metadata"] == {"maze": "two-rooms"}


def test_load_refuses_missing_or_mismatched_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no free-space head"):
        load_free_space(tmp_path)
    save_free_space(trained_head(), tmp_path)
    document = json.loads((tmp_path / CONFIG_FILE).read_text())
    document["config"]["shape"] = [10, 10]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match="has shape"):
        load_free_space(tmp_path)
    document["format"] = "something-else"
    (tmp_path / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(ValueError, match="format"):
        load_free_space(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_free_space(tmp_path)
    assert (tmp_path / WEIGHTS_FILE).exists()


def test_fit_refuses_bad_positions():
    with pytest.raises(ValueError, match="shape"):
        fit_free_space(np.zeros((500, 3)))
    bad = two_rooms(500)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_free_space(bad)


def test_uniform_data_gives_a_flat_map():
    rng = np.random.default_rng(1)
    model, _ = fit_free_space(rng.uniform(0, 4, size=(400000, 2)), resolution=0.1, bandwidth=0.3, padding=0.0)
    inner = logits(model, [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (2.0, 2.0)])
    assert np.ptp(inner) < 0.05 and np.abs(inner).max() < 0.3, inner


def test_lookup_is_bilinear_between_nodes():
    from planners.free_space import FreeSpaceConfig, FreeSpaceModel

    config = FreeSpaceConfig(low=(0.0, 0.0), high=(1.0, 2.0), shape=(3, 2))  # nodes at y = 0, 1, 2; x = 0, 1
    grid = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    model = FreeSpaceModel(config, grid)
    values = logits(model, [(0.0, 0.0), (1.0, 2.0), (0.5, 0.5), (0.25, 1.5), (5.0, -3.0)])
    # (0.5, 0.5): mean of rows 0-1 at x 0.5 = (0.5 + 2.5) / 2; (0.25, 1.5): 0.25 + 3; outside: border node (0, 1).
    assert np.allclose(values, [0.0, 5.0, 1.5, 3.25, 1.0])


def test_planner_needs_a_head_for_a_positive_weight_and_ignores_it_at_zero():
    model = trained_model()
    with pytest.raises(ValueError, match="free_space_weight"):
        DFPlanner(model, DFPlannerConfig(free_space_weight=0.5))
    with pytest.raises(ValueError, match="free_space_weight"):
        DFPlannerConfig(free_space_weight=-1.0)
    head = trained_head()
    frames = torch.tensor([[[-0.2, 0.5], [0.0, 0.5], [0.2, 0.5]]])
    goal = torch.tensor([[1.5, 0.5]])
    off = DFPlanner(model, DFPlannerConfig(), free_space=head)
    assert torch.equal(off.goal_reward(frames, goal), goal_reward(frames, goal))
    on = DFPlanner(model, DFPlannerConfig(free_space_weight=0.5, free_space_interpolation=0), free_space=head)
    expected = goal_reward(frames, goal) - 0.5 * free_space_cost(head, frames, 2.0, 0)
    assert torch.allclose(on.goal_reward(frames, goal), expected)


def test_free_space_guidance_runs_through_the_planner():
    model = trained_model()
    head = trained_head()
    observation = np.array([[-1.5, 0.5, 0.0, 0.0]] * 4)
    goal = np.array([[1.5, 0.5]] * 4)
    config = DFPlannerConfig(sampling_steps=4, free_space_weight=1.0).with_overrides(guidance_scale=0.2,
                                                                                     mcg_samples=2)
    plan = DFPlanner(model, config, free_space=head).plan(observation, goal, horizon=3)
    assert plan.actions.shape == (4, 3 * 2, 2) and np.isfinite(plan.observations).all()
    assert np.isfinite(plan.diagnostics["goal_reward"]).all()


def test_load_policy_attaches_the_checkpoints_head(tmp_path):
    import shutil

    from envs.maze2d.policies import default_checkpoint
    from policies.loading import load_policy

    checkpoint = tmp_path / "umaze"
    shutil.copytree(default_checkpoint("maze2d-umaze-v0"), checkpoint)
    with pytest.raises(ValueError, match="free-space head"):
        load_policy(checkpoint, kind="df_lowdim", free_space_weight=0.1)
    save_free_space(trained_head(), checkpoint)
    policy = load_policy(checkpoint, kind="df_lowdim", free_space_weight=0.1)
    assert policy.planner.free_space is not None and policy.planner.config.free_space_weight == 0.1
