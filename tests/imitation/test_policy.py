"""The DF imitation policy: memory across chunks, open-loop chunks, noisy-frame levels, ROS loader hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from imitation_helpers import fitted_model

# policies.df_imitation is imported inside the tests, not at collection: importing it registers its ROS 2
# loader, which conftest undoes after each test (collection-time imports could not be undone).


def observation(num_envs: int, seed: int, corrupted=None, size: int = 32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = {
        "front": rng.integers(0, 256, (num_envs, size, size, 3), dtype=np.uint8),
        "wrist": rng.integers(0, 256, (num_envs, size, size, 3), dtype=np.uint8),
        "proprio": rng.normal(0.5, 0.1, (num_envs, 8)).astype(np.float32),
    }
    if corrupted is not None:
        obs["corrupted"] = np.asarray(corrupted, dtype=np.int8).reshape(num_envs, 2)
    return obs


def make_policy(**settings):
    from policies.df_imitation import DFImitationPolicy, DFImitationPolicyConfig

    settings.setdefault("sampling_steps", 3)
    return DFImitationPolicy(fitted_model(), DFImitationPolicyConfig(**settings))


def run_chunks(policy, observations: list[dict]) -> list[torch.Tensor]:
    """One act per step; a new observation each step; returns the latent after each chunk boundary."""
    latents = []
    horizon = policy.horizon
    for chunk, obs in enumerate(observations):
        for _ in range(horizon):
            policy.act(obs)
        assert policy.replans == chunk + 1
        latents.append(policy.latent.clone())
    return latents


def test_actions_shape_bounds_and_open_loop_chunks():
    policy = make_policy()
    policy.reset(num_envs=2)
    obs = observation(2, 0)
    actions = [policy.act(obs) for _ in range(policy.horizon)]
    assert policy.replans == 1  # one sample per chunk, executed open loop
    stacked = np.stack(actions, axis=1)
    assert stacked.shape == (2, policy.horizon, 7) and stacked.dtype == np.float32
    assert np.all(stacked[..., :6] >= -1) and np.all(stacked[..., :6] <= 1)
    assert np.all(stacked[..., 6] >= 0) and np.all(stacked[..., 6] <= 1)
    np.testing.assert_allclose(stacked, policy.queue.numpy())
    policy.act(obs)
    assert policy.replans == 2
    np.testing.assert_allclose(policy.executed.numpy(), stacked)  # the executed chunk is fed back


def test_memory_keeps_the_latent_and_memoryless_restarts_it():
    history_a = [observation(1, 1), observation(1, 2), observation(1, 3)]
    history_b = [observation(1, 4), observation(1, 5), observation(1, 3)]  # same last observation

    with_memory = make_policy()
    with_memory.reset(num_envs=1, seed=0)
    latents_a = run_chunks(with_memory, history_a)
    with_memory.reset(num_envs=1, seed=0)
    latents_b = run_chunks(with_memory, history_b)
    assert not torch.allclose(latents_a[-1], latents_b[-1], atol=1e-4)  # the past shapes the latent

    memoryless = make_policy(memory=False)
    memoryless.reset(num_envs=1, seed=0)
    run_chunks(memoryless, history_a)
    memoryless.reset(num_envs=1, seed=0)
    run_chunks(memoryless, history_b)
    # Only the current token (the last executed chunk + the current frame) shapes a memoryless latent: a fresh
    # policy given just that chunk and frame reaches the same latent.
    rebuilt = make_policy(memory=False)
    rebuilt.reset(num_envs=1, seed=0)
    rebuilt.executed = memoryless.executed
    rebuilt.queue = memoryless.executed
    rebuilt.step_in_chunk = rebuilt.horizon
    rebuilt.act(history_b[-1])
    torch.testing.assert_close(rebuilt.latent, memoryless.latent)
    # ... which is not true with memory on
    rebuilt_with_memory = make_policy()
    rebuilt_with_memory.reset(num_envs=1, seed=0)
    rebuilt_with_memory.executed = rebuilt_with_memory.queue = with_memory.executed
    rebuilt_with_memory.step_in_chunk = rebuilt_with_memory.horizon
    rebuilt_with_memory.act(history_b[-1])
    assert not torch.allclose(rebuilt_with_memory.latent, with_memory.latent, atol=1e-4)


def test_first_chunk_starts_from_the_initial_latent():
    policy = make_policy()
    policy.reset(num_envs=1)
    policy.act(observation(1, 0))
    model = policy.model
    assert policy.executed is None
    z0 = model.init_latent(batch_size=1)
    assert not torch.allclose(policy.latent, z0)


def test_corrupted_frames_are_fed_noisy_unless_treated_as_clean():
    obs = observation(3, 0, corrupted=[[0, 0], [1, 0], [0, 1]])
    flagged = make_policy(corrupted_level=40)
    flagged.reset(num_envs=3)
    flagged.act(obs)
    assert flagged.last_levels.tolist() == [0, 40, 40]

    clean = make_policy(flag_corrupted=False, corrupted_level=40)
    clean.reset(num_envs=3)
    clean.act(obs)
    assert clean.last_levels.tolist() == [0, 0, 0]
    # same seed, same inputs: the env flagged as clean gets the same latent either way, the others differ
    torch.testing.assert_close(flagged.latent[0], clean.latent[0])
    assert not torch.allclose(flagged.latent[1], clean.latent[1])


def test_caller_noise_levels_per_env_and_per_camera():
    policy = make_policy()
    policy.reset(num_envs=2)
    policy.act(observation(2, 0), noise_level=np.array([0, 70]))
    assert policy.last_levels.tolist() == [0, 70]
    policy.reset(num_envs=1)
    # the ROS 2 bridge passes a dict per observation key; the token takes its noisiest camera
    policy.act(observation(1, 0), noise_level={"front": np.array([0]), "wrist": np.array([100]),
                                               "proprio": np.array([0])})
    assert policy.last_levels.tolist() == [100]
    with pytest.raises(ValueError, match="noise levels must be in"):
        policy.reset(num_envs=1)
        policy.act(observation(1, 0), noise_level=101)


def test_bad_observations_are_named():
    policy = make_policy()
    policy.reset(num_envs=2)
    with pytest.raises(KeyError, match="wrist"):
        policy.act({"front": np.zeros((2, 32, 32, 3), np.uint8), "proprio": np.zeros((2, 8))})
    with pytest.raises(ValueError, match="reset for 2 envs"):
        policy.act(observation(3, 0))


def test_pyramid_schedule_over_several_tokens():
    policy = make_policy(schedule="pyramid", horizon_tokens=3)
    policy.reset(num_envs=2)
    policy.act(observation(2, 0))
    assert policy.last_plan["actions"].shape == (2, 3, policy.horizon, 7)


def test_loader_needs_no_registration(tmp_path):
    from df_agent.checkpoint import save_checkpoint
    from policies.df_imitation import DFImitationPolicy, load_df_imitation_policy
    from policies.loading import known_policy_kinds, load_policy

    save_checkpoint(tmp_path / "ckpt", fitted_model(), metadata={"policy": {"sampling_steps": 2, "memory": False}})
    policy = load_df_imitation_policy(tmp_path / "ckpt")
    assert policy.config.sampling_steps == 2 and policy.config.memory is False
    assert "df_imitation" in known_policy_kinds()
    bridged = load_policy(tmp_path / "ckpt")
    assert isinstance(bridged, DFImitationPolicy)
    bridged.reset(num_envs=1)
    actions = bridged.act(observation(1, 0, size=64), noise_level={"front": np.array([0]), "wrist": np.array([0])})
    assert actions.shape == (1, 7)
    with pytest.raises(ValueError, match="unknown DF imitation policy settings"):
        load_df_imitation_policy(tmp_path / "ckpt", horizon=3)


def test_sample_chunk_returns_every_sampled_token_and_feeds_back_what_was_executed():
    policy = make_policy(horizon_tokens=2)
    policy.reset(num_envs=1)
    h = policy.horizon
    assert policy.replan_every == h
    chunk = policy.sample_chunk(observation(1, 0))
    assert chunk.shape == (1, 2 * h, 7) and chunk.dtype == np.float32
    assert np.all(chunk[..., :6] >= -1) and np.all(chunk[..., :6] <= 1)
    assert policy.executed is None  # the first token has no actions
    # The robot ran something else than planned (a late chunk's tail, holds): the next token is built from it.
    executed = np.zeros((h - 1, 7), dtype=np.float32)
    executed[:, 0] = 0.5
    executed[:, 6] = 1.0
    policy.sample_chunk(observation(1, 1), executed=executed)
    fed = policy.executed.numpy()[0]
    assert fed.shape == (h, 7)
    assert fed[0].tolist() == [0, 0, 0, 0, 0, 0, 1], "fewer than H executed: padded in front with a hold"
    np.testing.assert_allclose(fed[1:], executed)
    assert policy.replans == 2


def test_the_real_time_path_samples_at_least_realtime_tokens_while_act_samples_horizon_tokens():
    policy = make_policy()  # horizon_tokens 1, realtime_tokens 2 (the defaults)
    policy.reset(num_envs=1)
    h = policy.horizon
    assert policy.sample_chunk(observation(1, 0)).shape == (1, 2 * h, 7)  # the 2nd token covers the next latency
    assert policy.last_plan["actions"].shape[1] == 2
    policy.reset(num_envs=1)
    policy.act(observation(1, 0))
    assert policy.last_plan["actions"].shape[1] == 1  # the env evaluation samples only the token it executes
    single = make_policy(realtime_tokens=1)
    single.reset(num_envs=1)
    assert single.sample_chunk(observation(1, 0)).shape == (1, h, 7)
    with pytest.raises(ValueError, match="realtime_tokens"):
        make_policy(realtime_tokens=0)
