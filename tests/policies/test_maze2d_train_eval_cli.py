"""Smoke test of the real entry points: generate a tiny maze2d dataset, `df-agent train maze2d` for a few steps,
then `df-agent eval maze2d --policy <checkpoint>` runs the DF MPC policy on MuJoCo and writes the results JSON."""

from __future__ import annotations

import json

from df_agent.cli.main import main


def test_train_then_eval_maze2d_checkpoint(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    assert main(["data", "maze2d", "--maze", "umaze", "--steps", "600", "--segment-steps", "300",
                 "--no-progress"]) == 0
    run_dir, export = tmp_path / "run", tmp_path / "export"
    train_args = ["train", "maze2d", "--maze", "umaze", "--frame-stack", "10", "--window-tokens", "2",
                  "--latent-dim", "16", "--hidden-dim", "32", "--mlp-layers", "2", "--steps", "4", "--batch-size",
                  "8", "--warmup-steps", "1", "--checkpoint-every", "0", "--device", "cpu", "--no-progress",
                  "--run-dir", str(run_dir), "--export", str(export)]
    assert main(train_args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["checkpoint"] == str(run_dir / "final")
    config = json.loads((run_dir / "final" / "config.json").read_text())
    metadata = config["metadata"]
    assert metadata["maze"] == "umaze" and metadata["frame_stack"] == 10
    assert metadata["dataset_id"] == "df-agent/maze2d-umaze-v0"
    assert metadata["compute"]["steps"] == 4 and metadata["compute"]["wall_time_s"] > 0
    assert config["model_config"]["backbone"] == "fast" and config["model_config"]["token_dim"] == 60
    assert json.loads((export / "config.json").read_text())["metadata"]["maze"] == "umaze"
    # Resuming for more steps records the compute of both invocations, not just the last one.
    state = run_dir / "checkpoints" / "step_00000004" / "training_state" / "state.json"
    first_seconds = json.loads(state.read_text())["info"]["train_seconds"]
    assert first_seconds > 0
    assert main([*train_args[:train_args.index("--steps") + 1], "6", *train_args[train_args.index("--steps") + 2:],
                 "--resume"]) == 0
    capsys.readouterr()
    compute = json.loads((run_dir / "final" / "config.json").read_text())["metadata"]["compute"]
    assert compute["steps"] == 6 and compute["resumed_from_step"] == 4
    assert compute["wall_time_s"] > first_seconds

    out = tmp_path / "r.json"
    eval_args = ["eval", "maze2d", "--env", "maze2d-umaze-v0", "--policy", str(run_dir / "final"), "--episodes",
                 "2", "--num-envs", "2", "--seed", "0", "--sampling-steps", "3", "--mcg-samples", "2",
                 "--out", str(out), "--no-progress"]
    assert main(eval_args) == 0
    result = json.loads(out.read_text())
    assert result["env_id"] == "maze2d-umaze-v0" and result["episodes"] == 2
    assert len(result["episode_returns"]) == 2 and result["max_episode_steps"] == 300
    assert "normalized score" in capsys.readouterr().out
    # A umaze model is refused on another maze, with a message rather than a traceback.
    assert main([*eval_args[:3], "maze2d-medium-v0", *eval_args[4:]]) == 1
    assert "trained on maze 'umaze'" in capsys.readouterr().err
