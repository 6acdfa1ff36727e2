"""End-to-end smoke run of the real entry points on a tiny budget: data -> train (3 modes) -> eval."""

from __future__ import annotations

import json
from pathlib import Path

from df_agent.cli.main import main


def test_data_train_eval_pipeline(tmp_path) -> None:
    store = tmp_path / "maze.zarr"
    assert main(["-q", "data", "video-maze", "--out", str(store), "--episodes", "3", "--frames", "24",
                 "--resolution", "32", "--maze-size", "7", "--no-progress"]) == 0
    checkpoints = {}
    for mode in ("diffusion_forcing", "teacher_forcing", "full_sequence"):
        run_dir = tmp_path / mode
        assert main(["-q", "train", "video", "--data", str(store), "--out", str(run_dir), "--mode", mode,
                     "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--test-episodes", "1",
                     "--warmup-steps", "1", "--no-progress"]) == 0
        checkpoints[mode] = run_dir / "final"
        assert (checkpoints[mode] / "model.safetensors").exists()
    out = tmp_path / "eval" / "results.json"
    assert main(["-q", "eval", "video", "--checkpoint", str(checkpoints["diffusion_forcing"]),
                 "--teacher-forcing", str(checkpoints["teacher_forcing"]),
                 "--full-sequence", str(checkpoints["full_sequence"]), "--out", str(out), "--rollouts", "1",
                 "--context-frames", "4", "--rollout-multiple", "2", "--sampling-steps", "2",
                 "--reference-frames", "40", "--encoder-steps", "3"]) == 0
    results = json.loads(out.read_text())
    methods = {"diffusion_forcing", "diffusion_forcing_unstabilized", "teacher_forcing", "full_sequence"}
    assert results["training_length"] == 8 and results["rollout_length"] == 16
    assert set(results["psnr_within_horizon"]) == methods and set(results["ssim_within_horizon"]) == methods
    for method in methods:
        assert {"stat_drift_far", "stat_frechet_far", "feature_frechet_far"} <= set(results["stability"][method])
    assert results["settings"]["stabilization_level"] == 500  # step 1 of 2 DDIM steps over K = 1000
    assert any(path.endswith("rollout_strip.png") for path in results["media"])


def _two_episode_store(tmp_path) -> Path:
    store = tmp_path / "maze.zarr"
    assert main(["-q", "data", "video-maze", "--out", str(store), "--episodes", "2", "--frames", "12",
                 "--resolution", "32", "--maze-size", "5", "--no-progress"]) == 0
    return store


def _train_tiny(store: Path, run_dir: Path, *extra: str) -> None:
    assert main(["-q", "train", "video", "--data", str(store), "--out", str(run_dir), "--preset", "tiny",
                 "--batch-size", "1", "--test-episodes", "1", "--warmup-steps", "1", "--no-progress", *extra]) == 0


def test_eval_refuses_a_mismatched_baseline(tmp_path, capfd) -> None:
    run_dir = tmp_path / "df"
    _train_tiny(_two_episode_store(tmp_path), run_dir, "--steps", "1")
    code = main(["-q", "eval", "video", "--checkpoint", str(run_dir / "final"), "--teacher-forcing",
                 str(run_dir / "final"), "--out", str(tmp_path / "r.json")])
    assert code == 1 and "not 'teacher_forcing'" in capfd.readouterr().err


def test_wall_time_budget_ends_with_a_final_model(tmp_path) -> None:
    run_dir = tmp_path / "df"
    # A budget of ~0 s: the loop stops at its first logged step, as a run out of time on a real budget would.
    _train_tiny(_two_episode_store(tmp_path), run_dir, "--steps", "1000", "--log-every", "1", "--max-minutes", "1e-6")
    final = json.loads((run_dir / "final" / "config.json").read_text())
    assert final["metadata"]["step"] == 1
    assert [path.name for path in (run_dir / "checkpoints").iterdir()] == ["step_00000001"]
