"""Closed loop on umaze with the checkpoint the package ships: most seeded episodes must reach the goal."""

from __future__ import annotations

import pytest
import torch

from df_agent.checkpoint import load_checkpoint, read_checkpoint_config
from envs.evaluation import evaluate
from envs.maze2d.policies import build_policy, default_checkpoint


def test_shipped_umaze_checkpoint_is_a_loadable_df_model():
    checkpoint = default_checkpoint("maze2d-umaze-v0")
    model = load_checkpoint(checkpoint)
    assert model.model_type == "df_lowdim"
    assert model.config.token_dim == 60 and model.config.context_dim == 4
    assert bool(model.token_normalizer.fitted) and bool(model.context_normalizer.fitted)
    assert (checkpoint / "MODEL_CARD.md").is_file()


@pytest.mark.parametrize("env_id", ["maze2d-umaze-v0", "maze2d-medium-multi-v0", "maze2d-large-v0"])
def test_every_maze_ships_a_checkpoint_trained_on_it_with_a_model_card(env_id):
    from envs.maze2d.maps import parse_env_id

    checkpoint = default_checkpoint(env_id)
    config = read_checkpoint_config(checkpoint)
    assert config["metadata"]["maze"] == parse_env_id(env_id)[0].name
    assert config["metadata"]["weights"] == "ema"
    assert (checkpoint / "model.safetensors").stat().st_size < 8_000_000  # a few MB, fit to ship in the package
    card = (checkpoint / "MODEL_CARD.md").read_text()
    assert "Scores" in card and parse_env_id(env_id)[0].name in card


def test_shipped_umaze_checkpoint_reaches_the_goal_in_closed_loop():
    torch.set_num_threads(1)
    policy = build_policy("default", "maze2d-umaze-v0", seed=0)
    result = evaluate(policy, "maze2d-umaze-v0", episodes=4, seed=0, num_envs=4, progress=False)
    reached = sum(record.first_reach is not None for record in result.records)
    assert reached >= 3, [record.first_reach for record in result.records]
    assert result.normalized_score_mean > 0.0


def test_checkpoint_planner_defaults_replace_the_preset_and_options_replace_them(tmp_path):
    import json
    import shutil

    from policies.loading import load_policy

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(default_checkpoint("maze2d-umaze-v0"), checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["metadata"]["planner_defaults"] = {"guidance_scale": 0.07}
    (checkpoint / "config.json").write_text(json.dumps(config))
    tuned = load_policy(checkpoint, maze="umaze", seed=0, planner="df-no-mcg")
    assert tuned.planner.config.sampler.guidance_scale == 0.07 and tuned.planner.config.sampler.mcg_samples == 1
    explicit = load_policy(checkpoint, maze="umaze", seed=0, planner="df", guidance_scale=0.3)
    assert explicit.planner.config.sampler.guidance_scale == 0.3
    config["metadata"]["planner_defaults"] = [0.07]
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="planner_defaults"):
        load_policy(checkpoint, maze="umaze", seed=0, planner="df")
