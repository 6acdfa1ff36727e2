"""Checkpoint -> policy loading (what the ROS 2 bridge runs): known types load, unknown ones are a clear error;
the scripted policies."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from policies.loading import known_policy_kinds, load_policy, write_reach_target_checkpoint
from policies.scripted import ReachTargetPolicy, ReplayActionsPolicy


def test_reach_target_checkpoint_round_trip(tmp_path):
    write_reach_target_checkpoint(tmp_path / "ckpt", [0.6, 0.1, 0.3], gain=0.25)
    policy = load_policy(tmp_path / "ckpt")
    assert isinstance(policy, ReachTargetPolicy) and policy.gain == 0.25
    actions = policy.act({"ee_pose": np.array([[0.5, 0.1, 0.3, 0, 1, 0, 0]])})
    assert actions.shape == (1, 7) and actions[0, :3] == pytest.approx([0.025, 0, 0])


def test_unknown_checkpoint_type_names_what_can_be_loaded(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no_such_policy", "token_dim": 10}))
    with pytest.raises(ValueError, match="no policy loader for checkpoint type 'no_such_policy'") as error:
        load_policy(tmp_path)
    assert "reach_target" in str(error.value) and "reach_target" in known_policy_kinds()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config.json is missing"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{}", "no 'policy_type'"),
        ('{"policy_type": "reach_target"}', "bad reach_target policy config"),
    ],
)
def test_broken_checkpoints(tmp_path, content, message):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_policy(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy(tmp_path / "absent")


def test_reach_policy_turns_towards_the_target_orientation_and_limits_its_step():
    target_quat = [np.cos(0.05), 0, 0, np.sin(0.05)]  # 0.1 rad about z
    policy = ReachTargetPolicy([1.0, 0, 0], target_quaternion=target_quat, gain=1.0, max_step=0.05)
    action = policy.act({"ee_pose": np.array([[0.0, 0, 0, 1, 0, 0, 0]])})[0]
    assert action[:3] == pytest.approx([0.05, 0, 0])
    assert action[3:6] == pytest.approx([0, 0, 0.1])


def test_replay_policy_repeats_its_last_action():
    policy = ReplayActionsPolicy([[0.1] * 7, [0.2] * 7])
    observation = {"ee_pose": np.zeros((2, 7))}
    assert [policy.act(observation)[0, 0] for _ in range(3)] == [0.1, 0.2, 0.2]
    policy.reset()
    assert policy.act(observation).shape == (2, 7)


def test_shipped_names_resolve_and_directories_win(tmp_path, monkeypatch):
    from df_agent.checkpoint import resolve_checkpoint, shipped_checkpoint

    assert resolve_checkpoint("maze2d-umaze") == shipped_checkpoint("maze2d-umaze")
    local = tmp_path / "maze2d-umaze"
    local.mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("maze2d-umaze") == Path("maze2d-umaze")  # a directory of that name wins
    with pytest.raises(FileNotFoundError, match=r"shipped: .*maze2d-umaze"):
        resolve_checkpoint("no-such-policy")
    with pytest.raises(FileNotFoundError, match="neither a directory"):
        resolve_checkpoint(tmp_path / "missing" / "maze2d-umaze")


def test_df_imitation_action_units_are_the_fruit_swap_envs():
    from envs.franka_swap.env import FrankaFruitSwapEnv
    from policies.df_imitation import FRANKA_ACTION_UNITS, DFImitationPolicyConfig

    defaults = inspect.signature(FrankaFruitSwapEnv).parameters
    assert (defaults["pos_scale"].default, defaults["rot_scale"].default) == FRANKA_ACTION_UNITS
    with pytest.raises(ValueError, match="action_units"):
        DFImitationPolicyConfig(action_units=(0.07, 0.0))


def test_deploy_takes_the_bridge_scale_from_the_policy_unless_given():
    from df_agent.cli.deploy_ros2 import _with_policy_units

    class Policy:
        action_units = (0.07, 0.2)

    assert _with_policy_units(Policy(), ["safety.enabled=true"]) == [
        "safety.enabled=true", "bridge.action_scale=[0.07, 0.2]"]
    given = ["bridge.action_scale=[0.01, 0.1]"]
    assert _with_policy_units(Policy(), given) == given
    assert _with_policy_units(object(), given[:0]) == []


def test_deploy_policy_params_reach_the_policy_and_unknown_ones_are_refused(tmp_path):
    from df_agent.checkpoint import save_checkpoint
    from df_agent.cli.deploy_ros2 import _parse_policy_params
    from tests.imitation.imitation_helpers import fitted_model, tiny_config

    checkpoint = save_checkpoint(tmp_path / "df_policy", fitted_model(tiny_config(image_size=16)))
    overrides = _parse_policy_params(["sampling_steps=7", "schedule=pyramid", "action_units=[0.05, 0.1]"])
    policy = load_policy(checkpoint, **overrides)
    assert (policy.config.sampling_steps, policy.config.schedule, policy.action_units) == (7, "pyramid", (0.05, 0.1))
    with pytest.raises(ValueError, match="unknown DF imitation policy settings"):
        load_policy(checkpoint, **_parse_policy_params(["samplng_steps=7"]))
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _parse_policy_params(["sampling_steps"])
