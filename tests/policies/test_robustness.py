"""Robustness evaluation: corrupted observations, noise flags reaching the planner, stale observations when
unflagged, the plan's prediction standing in for a missing observation, and clear errors for bad settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from df_agent.cli.main import main
from envs.evaluation import ObservationCorruption, evaluate
from envs.maze2d.expert import ExpertPolicy
from planners.df_planner import DFPlanner, DFPlannerConfig
from policies.corruption import noise_level_for_std
from policies.mpc import MPCPolicy
from tests.planners.tiny_models import trained_model

ENV = "maze2d-umaze-v0"


class RecordingPlanner(DFPlanner):
    """The real DF planner, remembering what each `plan` call was given."""

    def __init__(self, **config):
        super().__init__(trained_model(), DFPlannerConfig().with_overrides(
            **{"sampling_steps": 2, "mcg_samples": 1, "guidance_scale": 0.05, **config}))
        self.calls: list[dict] = []

    def plan(self, observation, goal=None, horizon=None, history=None, noise_level=0):
        plan = super().plan(observation, goal, horizon, history, noise_level)
        self.calls.append({"observation": np.array(observation), "noise_level": np.array(noise_level),
                           "context_levels": plan.diagnostics["context_levels"].copy(), "plan": plan})
        return plan


class RecordingMPC(MPCPolicy):
    """The real MPC policy, remembering what the runner passed to `act`."""

    def __init__(self, planner, **kwargs):
        super().__init__(planner, **kwargs)
        self.seen: list[tuple[np.ndarray, np.ndarray | None]] = []

    def act(self, observation, noise_level=None):
        self.seen.append((np.array(observation), None if noise_level is None else np.array(noise_level)))
        return super().act(observation, 0 if noise_level is None else noise_level)


class RecordingExpert(ExpertPolicy):
    def __init__(self):
        super().__init__("umaze")
        self.seen: list[np.ndarray] = []
        self.levels: list = []

    def act(self, observation, noise_level=0):
        self.seen.append(np.array(observation))
        self.levels.append(noise_level)
        return super().act(observation, noise_level)


def test_noise_level_matches_alpha_bar_of_the_noise():
    model = trained_model()
    alpha_bar = model.schedule.alphas_cumprod.double().numpy()
    scale = model.context_normalizer.scale[:2].double().numpy()
    assert noise_level_for_std(0.0, scale, alpha_bar) == 0
    levels = [noise_level_for_std(std, scale, alpha_bar) for std in (0.01, 0.1, 0.3, 1.0, 100.0)]
    assert levels == sorted(levels) and levels[0] >= 1 and levels[-1] >= 0.9 * model.num_levels
    # The chosen level's alpha_bar is the one nearest to 1 / (1 + s^2), s the noise std in normalised units.
    s2 = np.mean((0.3 / scale) ** 2)
    k = levels[2]
    distances = np.abs(alpha_bar[1:-1] - 1 / (1 + s2))
    assert distances[k - 1] == distances.min()
    with pytest.raises(ValueError, match="std"):
        noise_level_for_std(-0.1, scale, alpha_bar)
    policy = MPCPolicy(RecordingPlanner())
    assert policy.noise_level_for_std(0.3) == k and policy.num_levels == model.num_levels


def test_flagged_corruption_reaches_the_planner_as_context_levels():
    planner = RecordingPlanner()
    policy = RecordingMPC(planner, replan_every=2, max_horizon=2, predicted_obs_level=7)
    corruption = ObservationCorruption(obs_noise_std=0.3, drop_prob=0.3, flag=True, seed=5)
    result = evaluate(policy, ENV, episodes=2, seed=0, num_envs=2, progress=False, corruption=corruption)
    K = planner.num_levels
    noisy = policy.noise_level_for_std(0.3)
    assert 0 < noisy < K
    # The runner: 0 never (all observations noisy), noisy level or K per env; the first observation is delivered.
    levels = np.stack([lv for _, lv in policy.seen])
    assert set(np.unique(levels)) == {noisy, K}
    assert (levels[0] == noisy).all()
    assert 0.2 < (levels == K).mean() < 0.4
    # The planner: flagged-noisy observations at their level, missing ones replaced by the plan's prediction.
    context = np.stack([c["context_levels"] for c in planner.calls])
    assert set(np.unique(context)) == {noisy, 7}
    substituted = 0
    for previous, call in zip(planner.calls, planner.calls[1:]):
        for env in np.flatnonzero(call["noise_level"] == 7):
            np.testing.assert_allclose(call["observation"][env], previous["plan"].observations[env, 1])
            substituted += 1
    assert substituted > 10
    assert result.flag_corruption and result.corruption_noise_level == noisy
    assert result.obs_noise_std == 0.3 and result.drop_prob == 0.3 and 0.2 < result.dropped_fraction < 0.4
    payload = result.to_dict()
    assert payload["corruption_seed"] == 5 and "plans" not in payload and "trajectories" not in payload


def test_unflagged_drops_pass_stale_observations_and_no_levels():
    policy = RecordingExpert()
    corruption = ObservationCorruption(drop_prob=0.5, flag=False, seed=1)
    result = evaluate(policy, ENV, episodes=1, seed=3, num_envs=1, progress=False, corruption=corruption)
    assert all(np.all(np.asarray(level) == 0) for level in policy.levels)  # told nothing
    positions = result.trajectories[0]
    seen = np.stack(policy.seen)[:, 0]
    stale = 0
    for t in range(len(seen)):
        if np.allclose(seen[t, :2], positions[t]):
            continue
        stale += 1
        assert t > 0 and np.array_equal(seen[t], seen[t - 1])  # the last observation received, unchanged
    assert 0.35 < stale / len(seen) < 0.65
    assert not result.flag_corruption and result.corruption_noise_level is None


def test_corruption_is_seeded_and_independent_of_batching():
    def run(seed: int, num_envs: int) -> np.ndarray:
        """What the policy saw, [episode, step, 4]."""
        corruption = ObservationCorruption(obs_noise_std=0.05, drop_prob=0.2, flag=False, seed=seed)
        policy = RecordingExpert()
        evaluate(policy, ENV, 2, seed=0, num_envs=num_envs, progress=False, corruption=corruption)
        seen = np.concatenate(policy.seen, axis=0) if num_envs == 1 else np.stack(policy.seen, axis=1)
        return seen.reshape(2, -1, 4)

    first = run(0, 2)
    np.testing.assert_array_equal(run(0, 1), first)  # per-episode draws: the batch size does not matter
    assert not np.allclose(run(1, 2), first)
    clean = RecordingExpert()
    result = evaluate(clean, ENV, 2, seed=0, num_envs=2, progress=False)
    assert not np.allclose(np.stack(clean.seen, axis=1), first)
    assert result.obs_noise_std == 0 and result.dropped_fraction == 0 and result.corruption_seed is None


def test_bad_corruption_settings_are_refused(capsys):
    with pytest.raises(ValueError, match="obs_noise_std"):
        ObservationCorruption(obs_noise_std=-0.1)
    with pytest.raises(ValueError, match="drop_prob"):
        ObservationCorruption(drop_prob=1.0)
    with pytest.raises(ValueError, match="cannot be told"):
        evaluate(ExpertPolicy("umaze"), ENV, 1, progress=False, corruption=ObservationCorruption(0.1, flag=True))
    base = ["eval", "maze2d", "--env", ENV, "--policy", "expert", "--episodes", "1", "--no-progress"]
    for flags, message in ((["--obs-noise", "-0.5"], "--obs-noise"), (["--drop-prob", "1.5"], "--drop-prob"),
                           (["--drop-prob", "1"], "--drop-prob"), (["--no-flag-corruption"], "need --obs-noise"),
                           (["--obs-noise", "0.1"], "--no-flag-corruption"), (["--max-horizon", "0"], "--max-horizon"),
                           (["--predicted-obs-level", "0"], "--predicted-obs-level")):
        assert main([*base, *flags]) == 1
        assert message in capsys.readouterr().err


def test_from_preset_passes_max_horizon_and_precision():
    policy = MPCPolicy.from_preset("df", trained_model(), max_horizon=3, precision="bf16", sampling_steps=2,
                                   predicted_obs_level=5)
    assert policy.max_horizon == 3 and policy.predicted_obs_level == 5
    assert policy.planner.config.precision == "bf16" and policy.planner.config.sampling_steps == 2
    policy.reset(num_envs=1, goals=np.zeros((1, 2)), max_episode_steps=100)
    policy.act(np.zeros((1, 4)))
    assert policy.current_plan.num_steps == 3 * policy.frame_stack
    with pytest.raises(ValueError, match="predicted_obs_level"):
        MPCPolicy(RecordingPlanner(), predicted_obs_level=0)


def test_cli_robustness_run_records_corruption_and_planner(tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["eval", "maze2d", "--env", ENV, "--episodes", "1", "--num-envs", "1", "--seed", "2", "--sampling-steps",
            "2", "--mcg-samples", "1", "--max-horizon", "2", "--obs-noise", "0.2", "--drop-prob", "0.1",
            "--no-progress", "--out", str(out)]
    assert main(args) == 0
    payload = json.loads(out.read_text())
    assert payload["obs_noise_std"] == 0.2 and payload["drop_prob"] == 0.1 and payload["flag_corruption"] is True
    assert payload["corruption_noise_level"] > 0
    assert payload["planner"]["preset"] == "df" and payload["planner"]["config"]["sampling_steps"] == 2
    assert payload["label"] == "df mcg1 steps2 H2 [noise 0.2, drop 0.1, flagged]"
    assert "corruption" in capsys.readouterr().out
