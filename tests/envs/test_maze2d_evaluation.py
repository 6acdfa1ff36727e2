"""The evaluation runner: results contract, seeding, batching independence, expert vs random, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.evaluation import evaluate
from envs.maze2d.expert import ExpertPolicy
from envs.maze2d.maps import ENV_IDS, env_id_for
from envs.maze2d.reference_scores import (
    load_reference_scores,
    normalized_score,
    reference_scores,
    reference_scores_for_env,
    single_goal_reference_scores,
)
from policies.random_policy import RandomPolicy

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


def test_expert_reaches_the_goal_and_beats_random(tmp_path) -> None:
    expert = evaluate(
        ExpertPolicy("umaze"),
        "maze2d-umaze-v0",
        6,
        seed=0,
        num_envs=3,
        progress=False,
        trajectories_png=tmp_path / "traj.png",
    )
    random = evaluate(RandomPolicy(seed=0), "maze2d-umaze-v0", 6, seed=0, progress=False)
    assert expert.success_rate == 1.0
    assert expert.return_mean > random.return_mean + 50
    assert all(r.first_reach is not None and r.first_reach <= 300 for r in expert.records)
    assert (tmp_path / "traj.png").stat().st_size > 1000
    ref_min, ref_max = reference_scores("umaze")
    np.testing.assert_allclose(
        [r.normalized_score for r in expert.records], normalized_score(expert.episode_returns, ref_min, ref_max)
    )


def test_results_json_contract_and_batch_independence(tmp_path) -> None:
    a = evaluate(RandomPolicy(seed=1), "maze2d-umaze-multi-v0", 4, seed=10, num_envs=4, progress=False)
    b = evaluate(RandomPolicy(seed=1), "maze2d-umaze-multi-v0", 4, seed=10, num_envs=3, progress=False)
    assert a.episode_returns == b.episode_returns
    assert [r.seed for r in a.records] == [10, 11, 12, 13]
    path = a.save_json(tmp_path / "out" / "results.json")
    payload = json.loads(path.read_text())
    assert set(payload) >= CONTRACT_KEYS
    assert payload["episodes"] == 4 and len(payload["episode_returns"]) == 4
    assert all(0 <= r <= 300 for r in payload["episode_returns"])
    assert payload["mean_first_reach"] <= 300
    # Multi-goal ids also carry the score against the single-goal maze's references (the paper's Table 1 protocol).
    ref_min, ref_max = reference_scores_for_env("maze2d-umaze-multi-v0")
    single_min, single_max = single_goal_reference_scores("maze2d-umaze-multi-v0")
    assert (payload["ref_min_score"], payload["ref_max_score"]) == (ref_min, ref_max)
    assert (payload["single_goal_ref_min_score"], payload["single_goal_ref_max_score"]) == (single_min, single_max)
    returns = np.array(payload["episode_returns"])
    np.testing.assert_allclose(payload["normalized_score_mean"], normalized_score(returns, ref_min, ref_max).mean())
    single = normalized_score(returns, single_min, single_max)
    np.testing.assert_allclose(payload["normalized_score_mean_single_goal_refs"], single.mean())
    np.testing.assert_allclose(payload["normalized_score_std_single_goal_refs"], single.std())
    assert payload["normalized_score_mean_single_goal_refs"] != payload["normalized_score_mean"]
    assert "single-goal refs" in a.table()


@pytest.mark.parametrize("maze", ["umaze", "medium", "large"])
def test_every_env_id_has_its_own_measured_references(maze: str) -> None:
    stored = load_reference_scores()
    assert set(stored) == set(ENV_IDS)
    single_id, multi_id = env_id_for(maze), env_id_for(maze, multi_goal=True)
    for env_id, multi in ((single_id, False), (multi_id, True)):
        entry = stored[env_id]
        assert entry["env_id"] == env_id and entry["maze"] == maze and entry["multi_goal"] is multi
        assert entry["episodes"] == 100 and entry["seed"] == 0
        assert 0 < entry["ref_min_score"] < entry["ref_max_score"] <= entry["ref_max_score_replanning"]
    # A multi-goal id is normalised with its own run, not the single-goal maze's.
    assert reference_scores_for_env(multi_id) != reference_scores_for_env(single_id)
    assert single_goal_reference_scores(multi_id) == reference_scores_for_env(single_id) == reference_scores(maze)
    assert single_goal_reference_scores(single_id) == reference_scores_for_env(single_id)
    # D4RL's controller re-plans when the goal changes, which on a multi-goal env is every episode: the "d4rl"
    # reference run is then the re-planning run.
    assert stored[multi_id]["ref_max_score"] == stored[multi_id]["ref_max_score_replanning"]
    assert reference_scores_for_env(multi_id, "d4rl") == reference_scores_for_env(multi_id, "replanning")


def test_single_goal_result_scores_agree() -> None:
    result = evaluate(RandomPolicy(seed=0), "maze2d-umaze-v0", 2, seed=0, progress=False)
    assert result.normalized_score_mean_single_goal_refs == result.normalized_score_mean
    assert result.normalized_score_std_single_goal_refs == result.normalized_score_std
    assert (result.single_goal_ref_min_score, result.single_goal_ref_max_score) == reference_scores("umaze")
    assert "single-goal refs" not in result.table()


class _BadPolicy:
    def reset(self, num_envs=None, **kwargs):
        self.n = num_envs

    def act(self, observation, noise_level=0):
        return np.zeros((self.n, 3))


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown maze2d env id"):
        evaluate(RandomPolicy(), "maze2d-tiny-v0", 1, progress=False)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        evaluate(_BadPolicy(), "maze2d-umaze-v0", 2, progress=False)
    with pytest.raises(ValueError, match="goals"):
        ExpertPolicy("umaze").reset(num_envs=2)
    with pytest.raises(ValueError, match="unknown maze2d env id"):
        reference_scores_for_env("maze2d-tiny-v0")
    with pytest.raises(ValueError, match="reference protocol"):
        reference_scores_for_env("maze2d-umaze-multi-v0", "paper")


def test_video_is_written(tmp_path) -> None:
    pytest.importorskip("cv2")
    result = evaluate(RandomPolicy(), "maze2d-umaze-v0", 1, progress=False, video_path=tmp_path / "ep.mp4",
                      video_size=(64, 64))
    assert result.episodes == 1
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "ep.mp4"))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert ok and frame.shape == (64, 64, 3)
    assert frames == 151  # 301 rendered frames (reset + 300 steps), every second one kept


def test_expert_replan_modes() -> None:
    goals = np.array([[-1.0, 1.0], [1.0, -1.0]])
    obs = np.array([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]])
    d4rl = ExpertPolicy("umaze", replan="goal_change")
    d4rl.reset(num_envs=2, goals=goals)
    d4rl.act(obs)
    kept = list(d4rl.controllers)
    d4rl.reset(num_envs=2, goals=np.array([goals[0], [1.0, 1.0]]))
    assert d4rl.controllers[0] is kept[0]  # same goal: D4RL's controller does not re-plan
    assert d4rl.controllers[1] is not kept[1]
    fresh = ExpertPolicy("umaze")
    fresh.reset(num_envs=2, goals=goals)
    fresh.act(obs)
    first = list(fresh.controllers)
    fresh.reset(num_envs=2, goals=goals)
    assert all(a is not b for a, b in zip(first, fresh.controllers))
    with pytest.raises(ValueError, match="replan"):
        ExpertPolicy("umaze", replan="never")
