"""Goal holding: starts near the goal in the real simulator, and the report on scripted and shipped planners."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from envs.maze2d.goal_hold import goal_hold_report
from envs.maze2d.policies import default_checkpoint
from planners.base import Plan

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "maze2d_goal_hold.py"


class ConstantPlanner:
    """Plans the goal as every state and a constant action: `push` = (1, 0) drives the ball out of the radius."""

    frame_stack = 10

    def __init__(self, push: tuple[float, float]) -> None:
        self.push = np.asarray(push, dtype=np.float64)
        self.calls = 0

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
        self.calls += 1
        steps = horizon * self.frame_stack
        states = np.zeros((len(observation), steps, 4))
        states[..., :2] = goal[:, None, :]
        actions = np.broadcast_to(self.push, (len(observation), steps, 2)).copy()
        return Plan(actions=actions, observations=states)


def test_pushing_away_loses_the_goal_and_tracking_the_goal_holds_it():
    away = goal_hold_report(ConstantPlanner((1.0, 0.0)), "umaze", starts=4, steps=60, seed=0)
    still = goal_hold_report(ConstantPlanner((0.0, 0.0)), "umaze", starts=4, steps=60, seed=0, start_speed_std=0.0)
    tracked = goal_hold_report(ConstantPlanner((1.0, 0.0)), "umaze", starts=4, steps=60, seed=0, execution="pd")
    assert away.final_inside_fraction == 0.0 and away.inside_fraction < 0.5
    # At rest with zero actions the ball stays where it started, within the radius.
    assert still.inside_fraction == 1.0
    # The PD tracker ignores the plan's actions and follows its states (the goal).
    distances = tracked.mean_distance_per_replan
    assert tracked.inside_fraction == 1.0 and all(b < a for a, b in itertools.pairwise(distances))
    assert len(away.mean_distance_per_replan) == 6 and away.steps == 60 and away.starts == 4


def test_replans_every_given_steps_and_refuses_bad_settings():
    planner = ConstantPlanner((0.0, 0.0))
    report = goal_hold_report(planner, "umaze", starts=2, steps=25, replan_every=5, seed=0)
    assert planner.calls == 5 and report.replan_every == 5
    with pytest.raises(ValueError, match="execution must be one of"):
        goal_hold_report(planner, "umaze", execution="teleport")
    with pytest.raises(ValueError, match="start_offset"):
        goal_hold_report(planner, "umaze", start_offset=0.6)
    with pytest.raises(ValueError, match=">= 1"):
        goal_hold_report(planner, "umaze", steps=0)


def test_goal_hold_script_runs_the_shipped_umaze_model(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("maze2d_goal_hold", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "hold.json"
    checkpoint = str(default_checkpoint("maze2d-umaze-v0"))
    assert module.main([checkpoint, "--starts", "2", "--steps", "20", "--set", "sampling_steps=4", "mcg_samples=1",
                        "--set", "sampling_steps=4", "mcg_samples=1", "guidance_scale=0", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [row["settings"]["guidance_scale"] for row in data["reports"][1:]] == [0]
    assert all(0.0 <= row["inside_fraction"] <= 1.0 and len(row["mean_distance_per_replan"]) == 2
               for row in data["reports"])
    assert "inside fraction" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        module.main([checkpoint, "--set", "sampling_steps"])
    with pytest.raises(SystemExit, match="not a checkpoint directory"):
        module.main([str(tmp_path)])
