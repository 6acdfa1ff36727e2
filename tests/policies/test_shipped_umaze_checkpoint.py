"""Closed loop on umaze with the checkpoint the package ships: most seeded episodes must reach the goal."""

from __future__ import annotations

import torch

from df_agent.checkpoint import load_checkpoint
from df_agent.cli.eval_maze2d import build_policy, shipped_checkpoint_dir
from envs.evaluation import evaluate


def test_shipped_umaze_checkpoint_is_a_loadable_df_model():
    checkpoint = shipped_checkpoint_dir("maze2d-umaze-v0")
    model = load_checkpoint(checkpoint)
    assert model.model_type == "df_lowdim"
    assert model.config.token_dim == 60 and model.config.context_dim == 4
    assert bool(model.token_normalizer.fitted) and bool(model.context_normalizer.fitted)
    assert (checkpoint / "MODEL_CARD.md").is_file()


def test_shipped_umaze_checkpoint_reaches_the_goal_in_closed_loop():
    torch.set_num_threads(1)
    policy = build_policy("default", "maze2d-umaze-v0", seed=0)
    result = evaluate(policy, "maze2d-umaze-v0", episodes=4, seed=0, num_envs=4, progress=False)
    reached = sum(record.first_reach is not None for record in result.records)
    assert reached >= 3, [record.first_reach for record in result.records]
    assert result.normalized_score_mean > 0.0
