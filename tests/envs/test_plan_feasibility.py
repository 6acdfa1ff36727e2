"""Plan feasibility: the wall mask, random starts, and the report on real planners (the shipped umaze model)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from df_agent.checkpoint import load_checkpoint
from envs.maze2d.feasibility import plan_feasibility, random_starts
from envs.maze2d.grid import MazeGrid
from envs.maze2d.maps import get_maze
from envs.maze2d.policies import default_checkpoint
from planners.base import Plan
from planners.baselines import make_planner

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "maze2d_plan_feasibility.py"


def test_in_wall_marks_wall_cells_free_cells_and_outside_points():
    spec = get_maze("umaze")
    grid = MazeGrid(spec)
    wall = next((i, j) for i, row in enumerate(spec.layout) for j, cell in enumerate(row) if cell == 1)
    points = np.array([grid.cell_to_xy(wall), grid.cell_to_xy(spec.free_cells[0]), (100.0, 0.0), (np.nan, 0.0)])
    assert grid.in_wall(points).tolist() == [True, False, True, True]
    assert grid.in_wall(points.reshape(2, 2, 2)).shape == (2, 2)
    with pytest.raises(ValueError, match="last axis of size 2"):
        grid.in_wall(np.zeros((3, 4)))


@pytest.mark.parametrize("goal", ["fixed", "random"])
def test_random_starts_lie_in_free_cells_at_rest(goal):
    spec = get_maze("medium")
    grid = MazeGrid(spec)
    observations, goals = random_starts("medium", 32, seed=3, goal=goal)
    assert observations.shape == (32, 4) and goals.shape == (32, 2)
    assert not grid.in_wall(observations[:, :2]).any() and not grid.in_wall(goals).any()
    assert np.all(observations[:, 2:] == 0.0)
    if goal == "fixed":
        assert np.allclose(goals, grid.cell_to_xy(spec.goal_cell))
    np.testing.assert_array_equal(observations, random_starts("medium", 32, seed=3, goal=goal)[0])
    with pytest.raises(ValueError, match="goal must be one of"):
        random_starts("medium", 4, seed=0, goal="nearest")


class StraightLinePlanner:
    """Plans a straight line from the start to the goal: through any wall in between."""

    frame_stack = 10

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
        steps = horizon * self.frame_stack
        fractions = np.linspace(0.0, 1.0, steps + 1)[1:, None]
        xy = observation[:, None, :2] + fractions * (goal - observation[:, :2])[:, None, :]
        observations = np.concatenate([xy, np.zeros_like(xy)], axis=-1)
        return Plan(actions=np.zeros_like(xy), observations=observations)


def test_a_straight_line_through_the_maze_is_reported_as_crossing_walls():
    report = plan_feasibility(StraightLinePlanner(), "large", horizon=8, starts=32, seed=0)
    assert report.reach_fraction == 1.0 and report.mean_final_distance < 1e-9
    assert report.plans_through_wall > 0.3 and 0.0 < report.wall_frame_fraction < 1.0


class JumpPlanner:
    """Jumps from the start to the goal in one frame and stays there: no frame lies in a wall."""

    frame_stack = 2

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
        xy = np.repeat(goal[:, None, :], horizon * self.frame_stack, axis=1)
        return Plan(actions=np.zeros_like(xy), observations=np.concatenate([xy, np.zeros_like(xy)], axis=-1))


def test_a_jump_across_a_wall_counts_as_a_path_through_it_but_not_a_frame():
    report = plan_feasibility(JumpPlanner(), "large", horizon=3, starts=32, seed=0)
    assert report.wall_frame_fraction == 0.0 and report.plans_through_wall == 0.0
    assert report.paths_through_wall > 0.3


def test_shipped_umaze_model_plans_unguided_and_guided():
    model = load_checkpoint(default_checkpoint("maze2d-umaze-v0"))
    unguided = plan_feasibility(make_planner("df", model, guidance_scale=0.0), "umaze", horizon=6, starts=16)
    guided = plan_feasibility(make_planner("df-no-mcg", model, guidance_scale=0.2), "umaze", horizon=6, starts=16)
    for report in (unguided, guided):
        assert 0.0 <= report.wall_frame_fraction <= report.plans_through_wall <= report.paths_through_wall <= 1.0
        assert report.max_frame_step > 0.0 and report.horizon == 6 and report.starts == 16
    # The trained umaze model keeps its own (unguided) plans almost entirely out of the walls.
    assert unguided.wall_frame_fraction < 0.05
    # Goal guidance brings the plans closer to the goal.
    assert guided.mean_min_distance < unguided.mean_min_distance


def test_feasibility_script_writes_one_report_per_scale(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("maze2d_plan_feasibility", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "feasibility.json"
    checkpoint = str(default_checkpoint("maze2d-umaze-v0"))
    assert module.main([checkpoint, "--horizon", "3", "--starts", "4", "--guidance-scales", "0", "0.2",
                        "--planner", "df-no-mcg", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [row["guidance"] for row in data["reports"]] == [0.0, 0.2]
    assert all(row["maze"] == "umaze" for row in data["reports"])
    assert "wall_frame_fraction" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="must be finite and >= 0"):
        module.main([checkpoint, "--horizon", "3", "--guidance-scales", "-1"])
    with pytest.raises(SystemExit, match="not a checkpoint directory"):
        module.main([str(tmp_path), "--horizon", "3"])
    # Other planner settings apply to every row and are recorded in it.
    assert module.main([checkpoint, "--horizon", "3", "--starts", "4", "--guidance-scales", "0.2",
                        "--planner", "df-no-mcg", "--set", "guidance_grad_clip=0.5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["reports"][0]["guidance_grad_clip"] == 0.5
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        module.main([checkpoint, "--horizon", "3", "--set", "guidance_grad_clip"])
    with pytest.raises(ValueError, match="free-space head"):
        module.main([checkpoint, "--horizon", "3", "--guidance-scales", "0.2", "--goal-rewards", "geodesic"])
