"""Plan figures (the paper's Fig. 14/15): plans collected for the first episodes only, drawn red over the
executed trajectories in blue; a valid PNG written atomically; clear errors without plans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from df_agent.cli.main import main
from envs.evaluation import evaluate, plot_plans
from envs.maze2d.expert import ExpertPolicy
from planners.df_planner import DFPlanner, DFPlannerConfig
from policies.mpc import MPCPolicy
from tests.planners.tiny_models import trained_model

ENV = "maze2d-umaze-v0"


def colour_fractions(path) -> tuple[float, float]:
    import matplotlib.image

    image = matplotlib.image.imread(str(path))[..., :3]  # PNG -> float RGB in [0, 1]
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    red = (r > 0.85) & (g < 0.75) & (b < 0.75) & (np.abs(g - b) < 0.1)
    blue = (b > 0.8) & (r < 0.3) & (g < 0.3)
    return float(red.mean()), float(blue.mean())


def tiny_policy() -> MPCPolicy:
    config = DFPlannerConfig().with_overrides(sampling_steps=2, mcg_samples=1, guidance_scale=0.05)
    planner = DFPlanner(trained_model(), config)
    return MPCPolicy(planner, replan_every=4, max_horizon=3, keep_plans=8)


def test_plans_of_the_first_episodes_are_drawn_red_over_blue_trajectories(tmp_path):
    path = tmp_path / "figs" / "plans.png"
    result = evaluate(tiny_policy(), ENV, episodes=3, seed=0, num_envs=2, progress=False, plan_figure=path,
                      plan_figure_episodes=2)
    # Only the first two episodes are kept, each with every plan (more than the policy's own plan_log keeps).
    assert len(result.plans) == 2
    for plans in result.plans:
        assert [step for step, _ in plans] == list(range(0, result.max_episode_steps, 4))
        # (x, y) of 3 tokens x frame_stack 2, until the horizon shrinks to the rest of the episode
        assert [xy.shape for _, xy in plans] == [(min(3, -(-(300 - step) // 2)) * 2, 2) for step, _ in plans]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    red, blue = colour_fractions(path)
    assert red > 1e-4 and blue > 1e-4
    assert not list(path.parent.glob(".*tmp*"))  # no temp file left behind
    assert "plans" not in json.loads(json.dumps(result.to_dict()))


def test_plan_figure_can_be_redrawn_every_nth_plan_and_needs_plans(tmp_path):
    result = evaluate(tiny_policy(), ENV, episodes=1, seed=1, num_envs=1, progress=False,
                      plan_figure=tmp_path / "a.png", plan_figure_episodes=1)
    sparse = plot_plans(result, tmp_path / "b.png", every=10)
    red_all, _ = colour_fractions(tmp_path / "a.png")
    red_sparse, _ = colour_fractions(sparse)
    assert 0 < red_sparse < red_all
    with pytest.raises(ValueError, match="every"):
        plot_plans(result, tmp_path / "c.png", every=0)
    with pytest.raises(ValueError, match="plan_log"):
        evaluate(ExpertPolicy("umaze"), ENV, 1, progress=False, plan_figure=tmp_path / "d.png")
    expert = evaluate(ExpertPolicy("umaze"), ENV, 1, progress=False)
    with pytest.raises(ValueError, match="no plans"):
        plot_plans(expert, tmp_path / "e.png")
    with pytest.raises(ValueError, match="plan_figure_episodes"):
        evaluate(tiny_policy(), ENV, 1, progress=False, plan_figure=tmp_path / "f.png", plan_figure_episodes=7)


def test_cli_plan_figure_with_the_shipped_checkpoint(tmp_path, capsys):
    figure = tmp_path / "plans.png"
    assert main(["eval", "maze2d", "--env", ENV, "--episodes", "2", "--num-envs", "2", "--sampling-steps", "2",
                 "--mcg-samples", "1", "--max-horizon", "3", "--precision", "bf16", "--plan-figure", str(figure),
                 "--plan-figure-episodes", "2", "--no-progress"]) == 0
    red, blue = colour_fractions(figure)
    assert red > 1e-4 and blue > 1e-4
    assert "plans plotted to" in capsys.readouterr().out
