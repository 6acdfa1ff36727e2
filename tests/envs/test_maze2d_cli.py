"""Smoke tests of the real `df-agent eval maze2d` entry point: the results.json contract."""

from __future__ import annotations

import json

from df_agent.cli.main import main

CONTRACT_KEYS = {
    "env_id",
    "episodes",
    "seed",
    "normalized_score_mean",
    "normalized_score_std",
    "success_rate",
    "mean_first_reach",
    "episode_returns",
}


def test_eval_maze2d_cli_expert(tmp_path, capsys) -> None:
    out = tmp_path / "results.json"
    code = main(
        [
            "eval",
            "maze2d",
            "--env",
            "maze2d-umaze-v0",
            "--policy",
            "expert",
            "--episodes",
            "2",
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert set(payload) >= CONTRACT_KEYS
    assert payload["env_id"] == "maze2d-umaze-v0" and payload["episodes"] == 2 and payload["seed"] == 3
    assert payload["success_rate"] == 1.0
    assert out.with_suffix(".png").exists()
    assert "normalized score" in capsys.readouterr().out


def test_eval_maze2d_cli_multi_goal_reports_both_normalisations(tmp_path, capsys) -> None:
    out = tmp_path / "multi.json"
    args = ["eval", "maze2d", "--env", "maze2d-umaze-multi-v0", "--policy", "random", "--episodes", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    payload = json.loads(out.read_text())
    assert set(payload) >= CONTRACT_KEYS | {
        "normalized_score_mean_single_goal_refs",
        "normalized_score_std_single_goal_refs",
    }
    assert payload["env_id"] == "maze2d-umaze-multi-v0" and len(payload["episode_returns"]) == 2
    assert payload["single_goal_ref_max_score"] != payload["ref_max_score"]
    assert "single-goal refs" in capsys.readouterr().out


def test_eval_maze2d_cli_errors(tmp_path, capsys) -> None:
    assert main(["eval", "maze2d", "--env", "maze2d-tiny-v0", "--policy", "random", "--episodes", "1"]) == 1
    assert "unknown maze2d env id" in capsys.readouterr().err
    (tmp_path / "ckpt").mkdir()
    assert main(["eval", "maze2d", "--env", "maze2d-umaze-v0", "--policy", str(tmp_path / "ckpt")]) == 1
    assert "config.json" in capsys.readouterr().err
    assert main(["eval", "maze2d", "--env", "maze2d-umaze-v0", "--policy", "nonsense"]) == 1
