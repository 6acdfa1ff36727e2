"""The fruit-swap policy the package ships: loads by name, is the default of `eval teleop`, and acts in the env."""

from __future__ import annotations

import torch

from df_agent.checkpoint import read_checkpoint_config, resolve_checkpoint, shipped_checkpoint
from df_agent.cli.eval_teleop import DEFAULT_CHECKPOINT
from policies.df_imitation import DFImitationPolicy
from policies.loading import load_policy


def test_shipped_franka_swap_checkpoint_loads_by_name_with_a_model_card():
    checkpoint = resolve_checkpoint(DEFAULT_CHECKPOINT)
    assert checkpoint == shipped_checkpoint("franka-swap")
    config = read_checkpoint_config(checkpoint)
    assert config["model_type"] == "df_imitation" and config["metadata"]["weights"] == "ema"
    assert (checkpoint / "model.safetensors").stat().st_size < 8_000_000  # a few MB, fit to ship in the package
    card = (checkpoint / "MODEL_CARD.md").read_text()
    assert "success" in card.lower() and "df-agent train teleop" in card
    policy = load_policy(checkpoint, kind="df_imitation")
    assert isinstance(policy, DFImitationPolicy) and policy.config.memory
    assert policy.action_units == (0.07, 0.2)
    assert policy.chunk_starts_at_observation  # on a robot its chunks run on their own timeline (docs/ros2.md)


def test_shipped_policy_picks_up_fruit_in_the_simulated_swap():
    # Not a success-rate test (docs/imitation.md measures that over 100 episodes): the trained policy must drive
    # the arm to a fruit and lift it within 20 s in most episodes (95 of 100 measured 50 s episodes lift one).
    from envs.franka_swap.evaluation import FrankaSwapRunner

    torch.set_num_threads(1)
    policy = load_policy(resolve_checkpoint(DEFAULT_CHECKPOINT), kind="df_imitation", seed=0)
    records = FrankaSwapRunner(num_envs=3, max_steps=200).run(policy, episodes=3, seed=10_000)
    assert sum(r["lifted_a_fruit"] for r in records) >= 2, records
