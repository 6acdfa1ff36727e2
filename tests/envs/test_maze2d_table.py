"""scripts/maze2d_table.py: groups result JSONs (written by the real EvaluationResult.save_json) by env and run
label, and prints mean ± std over seeds of the Table-1 comparable score beside the paper's DF column."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.evaluation import EvaluationResult

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "maze2d_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("maze2d_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def result(env_id: str, seed: int, score: float, success: float, reach: float, episodes: int = 50,
           label: str | None = None, preset: str | None = None) -> EvaluationResult:
    return EvaluationResult(
        env_id=env_id, policy="default", episodes=episodes, seed=seed, normalized_score_mean=score - 5,
        normalized_score_std=1.0, normalized_score_mean_single_goal_refs=score,
        normalized_score_std_single_goal_refs=1.0, return_mean=100.0, return_std=1.0, success_rate=success,
        mean_first_reach=reach, first_reach_success_mean=reach, ref_min_score=0.0, ref_max_score=1.0,
        single_goal_ref_min_score=0.0, single_goal_ref_max_score=1.0, reference_protocol="d4rl",
        max_episode_steps=300, episode_returns=[100.0] * episodes, label=label,
        planner=None if preset is None else {"preset": preset, "guidance_scale": None},
    )


def test_table_groups_by_env_and_label_with_mean_and_std_over_seeds(tmp_path, capsys):
    table = load_script()
    folder = tmp_path / "results"
    scores = [110.0, 120.0, 115.0]
    for seed, score in zip((0, 1000, 2000), scores):
        result("maze2d-umaze-v0", seed, score, 1.0, 100.0 + seed / 1000, label="df", preset="df").save_json(
            folder / f"umaze-df-{seed}.json")
    result("maze2d-umaze-v0", 0, 10.0, 0.2, 280.0, episodes=20, label="full-sequence",
           preset="full-sequence").save_json(folder / "nested" / "umaze-fs-0.json")
    result("maze2d-umaze-v0", 1000, 20.0, 0.4, 260.0, episodes=30, label="full-sequence",
           preset="full-sequence").save_json(folder / "umaze-fs-1000.json")
    result("maze2d-large-multi-v0", 0, 150.0, 0.9, 200.0, label="df [noise 0.1, flagged]",
           preset="df").save_json(folder / "large-multi.json")
    (folder / "bench.json").write_text('{"latency_s": {}}')  # not an eval result: skipped, with a note

    assert table.main([str(folder), "--out", str(tmp_path / "table.md")]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "bench.json" in captured.err
    rows = [line for line in captured.out.splitlines() if line.startswith("| maze2d")]
    assert (tmp_path / "table.md").read_text().strip() == captured.out.strip()
    # Ordered: single-goal envs first, df before full-sequence.
    assert [row.split(" | ")[:2] for row in rows] == [["| maze2d-umaze-v0", "df"],
                                                      ["| maze2d-umaze-v0", "full-sequence"],
                                                      ["| maze2d-large-multi-v0", "df [noise 0.1, flagged]"]]
    df_cells = rows[0].split(" | ")
    assert df_cells[2] == f"{np.mean(scores):.1f} ± {np.std(scores):.1f}"  # 115.0 ± 4.1
    assert df_cells[3] == "3 × 50" and df_cells[4] == "1.00" and df_cells[5] == "101.0"
    assert df_cells[6] == "116.7±2.0"
    fs_cells = rows[1].split(" | ")
    assert fs_cells[2] == "15.0 ± 5.0" and fs_cells[3] == "2 seeds, 50 episodes"
    assert fs_cells[4] == f"{(0.2 * 20 + 0.4 * 30) / 50:.2f}"  # success and first reach weighted by episodes
    assert fs_cells[5] == f"{(280 * 20 + 260 * 30) / 50:.1f}"
    assert "6.3±2.1 (Diffuser (actions))" in rows[1]
    assert rows[2].split(" | ")[6] == "167.1±2.7"


def test_table_refuses_duplicate_seeds_and_empty_folders(tmp_path, capsys):
    table = load_script()
    result("maze2d-umaze-v0", 0, 100.0, 1.0, 100.0, label="df").save_json(tmp_path / "a.json")
    result("maze2d-umaze-v0", 0, 90.0, 1.0, 100.0, label="df").save_json(tmp_path / "b.json")
    with pytest.raises(ValueError, match="both seed 0"):
        table.load_groups(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert table.main([str(empty)]) == 1
    assert "no eval maze2d result" in capsys.readouterr().err
    assert table.main([str(tmp_path / "missing")]) == 1
