"""The whole path from the CLI with a tiny configuration: scripted demo bag -> import -> train -> evaluate."""

from __future__ import annotations

import json

import numpy as np
from imitation_helpers import write_buffer

from df_agent.cli.main import main

TINY_MODEL = ["--image-size", "8", "--actions-per-token", "4", "--latent-dim", "32", "--hidden-dim", "32",
              "--conv-channels", "4", "--batch-size", "2", "--log-every", "2", "--checkpoint-every", "0",
              "--no-progress", "--warmup-steps", "1"]


def test_bags_to_import_to_train_to_eval(tmp_path):
    bags = tmp_path / "bags"
    assert main(["data", "teleop-demos", "--out-dir", str(bags), "--num", "1", "--seed", "3", "--image-size", "32",
                 "--no-progress"]) == 0
    assert main(["data", "import-bags", *map(str, sorted(bags.glob("demo_*"))), "--out", str(tmp_path / "d.zarr"),
                 "--no-progress"]) == 0
    run_dir = tmp_path / "run"
    assert main(["train", "teleop", "--data", str(tmp_path / "d.zarr"), "--run-dir", str(run_dir),
                 "--val-fraction", "0", "--steps", "4", *TINY_MODEL]) == 0
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["steps_completed"] == 4 and summary["train_episodes"] == 1
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert config["model_type"] == "df_imitation" and config["metadata"]["policy"] == {"memory": True}

    out = tmp_path / "results.json"
    assert main(["eval", "teleop", "--checkpoint", str(run_dir / "final"), "--episodes", "2", "--num-envs", "2",
                 "--max-steps", "9", "--sampling-steps", "2", "--corruption", "occlusion", "--treat-corrupted-as-clean",
                 "--out", str(out), "--no-progress", "--seed", "7"]) == 0
    result = json.loads(out.read_text())
    for key in ("success_rate", "episodes", "seed", "corruption", "flag_noisy", "per_episode",
                "mean_stages_completed", "lifted_a_fruit_rate"):
        assert key in result
    assert result["episodes"] == 2 and result["seed"] == 7 and result["corruption"] == "occlusion"
    assert result["flag_noisy"] is False and result["policy"]["flag_corrupted"] is False
    assert [r["seed"] for r in result["per_episode"]] == [7, 8]
    # 0.9 s cannot swap fruits (nor finish one move)
    assert all(r["steps"] == 9 and not r["success"] and r["stages_completed"] == 0 for r in result["per_episode"])


def test_memoryless_baseline_training_and_eval_flags(tmp_path):
    write_buffer(tmp_path / "d.zarr")
    run_dir = tmp_path / "run"
    assert main(["train", "teleop", "--data", str(tmp_path / "d.zarr"), "--run-dir", str(run_dir),
                 "--window-tokens", "2", "--steps", "2", *TINY_MODEL]) == 0
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert config["metadata"]["policy"] == {"memory": False}
    assert config["metadata"]["data"]["window_tokens"] == 2
    out = tmp_path / "results.json"
    assert main(["eval", "teleop", "--checkpoint", str(run_dir / "final"), "--episodes", "1", "--max-steps", "5",
                 "--sampling-steps", "2", "--memoryless", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["memoryless"] is True and result["flag_noisy"] is True and result["corruption"] == "none"

    offline = tmp_path / "offline.json"
    assert main(["eval", "teleop", "--checkpoint", str(run_dir / "final"), "--offline-data", str(tmp_path / "d.zarr"),
                 "--sampling-steps", "2", "--out", str(offline)]) == 0
    result = json.loads(offline.read_text())
    assert result["with_memory"]["tokens"] == result["memoryless"]["tokens"] > 0
    assert 0 <= result["with_memory"]["gripper_agreement"] <= 1 and result["with_memory"]["action_mse"] > 0


def test_bad_inputs_fail_clearly(tmp_path, capfd):
    code = main(["train", "teleop", "--data", str(tmp_path / "absent.zarr"), "--run-dir", str(tmp_path / "r")])
    assert code != 0 and "absent.zarr does not exist" in capfd.readouterr().err
    (tmp_path / "ckpt").mkdir()
    code = main(["eval", "teleop", "--checkpoint", str(tmp_path / "ckpt"), "--episodes", "1",
                 "--out", str(tmp_path / "o.json")])
    assert code != 0 and "model.safetensors" in capfd.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_swap_stage_counting():
    from envs.franka_swap.evaluation import stages_done as _stages_done

    initial = {"apple": "B", "orange": "A"}  # the orange (in A) moves first: A -> C, then the apple B -> A
    assert _stages_done(initial, {"apple": "B", "orange": "A"}) == 0
    assert _stages_done(initial, {"apple": "B", "orange": None}) == 0
    assert _stages_done(initial, {"apple": "B", "orange": "C"}) == 1
    assert _stages_done(initial, {"apple": "A", "orange": "C"}) == 2
    # the same intermediate layout from the other start is not progress: memory decides the next move
    assert _stages_done({"apple": "A", "orange": "B"}, {"apple": "B", "orange": "C"}) == 0


def test_eval_teleop_writes_an_h264_video_of_the_first_episode(tmp_path):
    import pytest

    pytest.importorskip("av")
    from imitation_helpers import fitted_model, tiny_config

    from df_agent.checkpoint import save_checkpoint
    from df_agent.media import probe_video, read_video

    checkpoint = save_checkpoint(tmp_path / "ckpt", fitted_model(tiny_config()))
    video, out = tmp_path / "episode.mp4", tmp_path / "results.json"
    assert main(["eval", "teleop", "--checkpoint", str(checkpoint), "--episodes", "2", "--num-envs", "2",
                 "--max-steps", "6", "--sampling-steps", "2", "--out", str(out), "--no-progress",
                 "--video", str(video), "--video-size", "64"]) == 0
    assert json.loads(out.read_text())["video"] == str(video)
    info = probe_video(video)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["fps"] == 10.0
    assert (info["width"], info["height"]) == (128, 64)  # front | wrist
    assert info["frames_decoded"] == 7  # the reset and 6 steps of episode 0
    frames = read_video(video)
    assert frames.std() > 5 and np.abs(frames[-1].astype(float) - frames[0]).mean() > 0.1  # a scene, moving
