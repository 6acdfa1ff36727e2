"""Scoring a named maze2d policy (`envs.maze2d.policy_evaluation`): the planner record and the run label that go
into the result, and a short run of a built-in policy."""

from __future__ import annotations

import pytest

from envs.evaluation import ObservationCorruption
from envs.maze2d.policies import build_policy, default_checkpoint
from envs.maze2d.policy_evaluation import PolicyEvaluation, evaluate_policy, planner_record, run_label

ENV = "maze2d-umaze-v0"


def test_a_policy_without_a_planner_is_labelled_by_its_name():
    assert planner_record(build_policy("random", ENV, 0), {"planner": None}, None) is None
    assert run_label("expert", None, None) == "expert"
    corruption = ObservationCorruption(obs_noise_std=0.1, drop_prob=0.25, flag=False)
    assert run_label("random", None, corruption) == "random [noise 0.1, drop 0.25, unflagged]"


def test_the_label_names_the_preset_and_every_setting_given():
    info = {"preset": "df-ar", "guidance_scale": 0.5, "mcg_samples": None, "precision": "bf16", "max_horizon": 8,
            "context": "history", "repair_level": 100, "selection_samples": None}
    label = run_label("runs/ckpt", info, ObservationCorruption(drop_prob=0.5), ["guidance_scale", "repair_level",
                                                                                "selection_samples"])
    # Short prefixes first (in LABEL_PREFIXES order), then the other settings given, as key=value.
    assert label == "df-ar g0.5 bf16 H8 context history repair_level=100 @runs/ckpt [drop 0.5, flagged]"
    assert run_label("default", {"preset": "df"}, None) == "df"  # the shipped checkpoint needs no @


def test_the_planner_record_holds_the_options_config_and_execution():
    checkpoint = default_checkpoint(ENV)
    if not checkpoint.is_dir():
        pytest.skip(f"no shipped checkpoint at {checkpoint}")
    options = {"planner": None, "sampling_steps": 2, "max_horizon": None}
    policy = build_policy("default", ENV, 0, **options)
    record = planner_record(policy, options, checkpoint)
    assert record["preset"] == "df" and record["sampling_steps"] == 2 and record["max_horizon"] is None
    assert record["checkpoint"] == str(checkpoint) and record["config"]["sampling_steps"] == 2
    assert record["replan_every"] == policy.replan_every and record["execution"] == policy.execution
    assert "planner" not in record


def test_a_built_in_policy_runs_with_its_label(tmp_path):
    result = evaluate_policy(PolicyEvaluation(env=ENV, policy="random", episodes=2, num_envs=2, progress=False,
                                              trajectories_png=tmp_path / "t.png"))
    assert result.policy == "random" and result.label == "random" and result.planner is None
    assert result.episodes == 2 and (tmp_path / "t.png").exists()
