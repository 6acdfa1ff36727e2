"""The evaluation runner: results contract, seeding, batching independence, expert vs random, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.evaluation import evaluate
from envs.maze2d.expert import ExpertPolicy
from envs.maze2d.reference_scores import normalized_score, reference_scores
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
