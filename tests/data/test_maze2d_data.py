"""maze2d expert data: generator invariants, Minari round trip, training windows, normalisers, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from data.maze2d.dataset import load_maze2d_episodes
from data.maze2d.generate import generate_expert_stream, generate_maze2d_dataset
from data.maze2d.windows import FRAME_DIM, Maze2DWindows
from envs.maze2d.reference_scores import reference_scores


@pytest.fixture
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture
def umaze_dataset(minari_root) -> str:
    dataset_id, _, _ = generate_maze2d_dataset("umaze", steps=2500, segment_steps=1000, seed=3, progress=False)
    return dataset_id


def test_expert_stream_is_seeded_and_consistent() -> None:
    a = generate_expert_stream("medium", 3000, seed=1, progress=False)
    b = generate_expert_stream("medium", 3000, seed=1, progress=False)
    c = generate_expert_stream("medium", 3000, seed=2, progress=False)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert not np.array_equal(a.observations, c.observations)
    assert a.observations.shape == (3001, 4) and a.actions.shape == (3000, 2) and a.goals.shape == (3001, 2)
    assert np.abs(a.actions).max() <= 1.0
    assert a.targets_reached >= 3  # the controller really reaches targets despite the action noise
    # reward = within 0.5 of the target that was in force when the action was taken
    dist = np.linalg.norm(a.observations[1:, :2] - a.goals[:-1], axis=1)
    np.testing.assert_array_equal(a.rewards, (dist <= 0.5).astype(float))


def test_expert_stream_replays_in_the_env() -> None:
    stream = generate_expert_stream("umaze", 400, seed=0, progress=False)
    env = gym.make("maze2d-umaze-multi-v0").unwrapped
    env.reset(seed=0)
    env.point_env.set_state(stream.observations[0, :2], stream.observations[0, 2:])
    for t, action in enumerate(stream.actions):
        obs, *_ = env.step(action.astype(np.float64))
        np.testing.assert_allclose(obs, stream.observations[t + 1], rtol=0, atol=1e-6)  # float32 actions


def test_minari_dataset_invariants(umaze_dataset: str) -> None:
    episodes = load_maze2d_episodes(umaze_dataset)
    assert [len(a) for a in episodes.actions] == [1000, 1000, 500]
    assert episodes.num_steps == 2500
    for obs, act in zip(episodes.observations, episodes.actions):
        assert obs.shape == (len(act) + 1, 4) and obs.dtype == np.float32
    # segments are cuts of one continuing stream
    for left, right in zip(episodes.observations, episodes.observations[1:]):
        np.testing.assert_array_equal(left[-1], right[0])
    assert (episodes.ref_min_score, episodes.ref_max_score) == reference_scores("umaze")
    assert episodes.eval_env_id == "maze2d-umaze-v0"
    import minari

    dataset = minari.load_dataset(umaze_dataset)
    last = list(dataset.iterate_episodes())[-1]
    assert last.truncations[-1] and not last.truncations[:-1].any() and not last.terminations.any()
    assert last.infos["goal"].shape == (501, 2)
    env = dataset.recover_environment()
    assert env.spec.id == "maze2d-umaze-v0" and env.spec.max_episode_steps == 300


def test_existing_dataset_is_kept_without_overwrite(umaze_dataset: str) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_maze2d_dataset("umaze", steps=100, progress=False)
    assert load_maze2d_episodes(umaze_dataset).num_steps == 2500
    generate_maze2d_dataset("umaze", steps=300, segment_steps=100, progress=False, overwrite=True)
    assert load_maze2d_episodes(umaze_dataset).num_steps == 300


def test_windows_token_layout_and_context(umaze_dataset: str) -> None:
    episodes = load_maze2d_episodes(umaze_dataset)
    windows = Maze2DWindows.from_episodes(episodes, window_tokens=4, frame_stack=5)
    assert windows.token_dim == 5 * FRAME_DIM
    assert len(windows) == 3 * 0 + (1000 - 20 + 1) * 2 + (500 - 20 + 1)
    item = windows[1500]  # a window in the second episode
    start = 1500 - (1000 - 20 + 1)
    obs, act = episodes.observations[1], episodes.actions[1]
    np.testing.assert_array_equal(item["context"].numpy(), obs[start])
    expected = np.concatenate([obs[start + 1 : start + 21], act[start : start + 20]], axis=1).reshape(4, 30)
    np.testing.assert_array_equal(item["tokens"].numpy(), expected)
    assert item["mask"].all()

    batch = windows.sample_batch(16, torch.Generator().manual_seed(0))
    assert batch["tokens"].shape == (16, 4, 30) and batch["tokens"].dtype == torch.float32
    assert batch["context"].shape == (16, 4) and batch["context"].dtype == torch.float32
    assert batch["mask"].shape == (16, 4) and batch["mask"].dtype == torch.bool
    again = windows.sample_batch(16, torch.Generator().manual_seed(0))
    assert torch.equal(batch["tokens"], again["tokens"])


def test_windows_respect_episode_boundaries_with_padding() -> None:
    rng = np.random.default_rng(0)
    obs = [rng.normal(size=(13, 4)), rng.normal(size=(31, 4))]
    act = [rng.uniform(-1, 1, size=(12, 2)), rng.uniform(-1, 1, size=(30, 2))]
    full = Maze2DWindows(obs, act, window_tokens=3, frame_stack=4)
    assert len(full) == (12 - 12 + 1) + (30 - 12 + 1)
    padded = Maze2DWindows(obs, act, window_tokens=3, frame_stack=4, min_tokens=1)
    assert len(padded) == (12 - 4 + 1) + (30 - 4 + 1)
    last = padded[len(padded) - 1]  # starts 4 steps before the end of episode 2: one real token
    assert last["mask"].tolist() == [True, False, False]
    assert torch.all(last["tokens"][1:] == 0)
    np.testing.assert_allclose(last["tokens"][0].numpy().reshape(4, 6)[:, :4], obs[1][27:31], rtol=1e-6)
    batch = padded.sample_batch(256, torch.Generator().manual_seed(1))
    assert batch["mask"][:, 0].all()
    # a token is real exactly when all its frames come from the window's own episode
    assert not (batch["mask"][:, 1:] & ~batch["mask"][:, :-1]).any()


def test_normalisers_round_trip(umaze_dataset: str) -> None:
    windows = Maze2DWindows.from_minari(umaze_dataset, window_tokens=3, frame_stack=10)
    token_norm, context_norm = windows.token_normalizer(), windows.context_normalizer()
    batch = windows.sample_batch(64, torch.Generator().manual_seed(2))
    torch.testing.assert_close(token_norm.unnormalize(token_norm.normalize(batch["tokens"])), batch["tokens"])
    torch.testing.assert_close(context_norm.unnormalize(context_norm.normalize(batch["context"])), batch["context"])
    frames = torch.from_numpy(windows.frames)
    normed = (frames - token_norm.shift[:6]) / token_norm.scale[:6]
    torch.testing.assert_close(normed.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(normed.std(0, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)
    assert torch.equal(token_norm.shift.view(10, 6), token_norm.shift[:6].repeat(10, 1))
    minmax = windows.token_normalizer(mode="minmax").normalize(batch["tokens"])
    assert minmax.abs().max() <= 1 + 1e-5


def test_missing_dataset_is_a_clear_error(minari_root) -> None:
    with pytest.raises(FileNotFoundError, match="df-agent data maze2d --maze large"):
        load_maze2d_episodes("df-agent/maze2d-large-v0")
    with pytest.raises(FileNotFoundError, match="D4RL/pointmaze/umaze-v2"):
        load_maze2d_episodes("D4RL/pointmaze/umaze-v2")


def _write_minari(dataset_id: str, observation_space, observations, actions) -> None:
    import minari
    from minari.data_collector import EpisodeBuffer

    steps = len(actions)
    buffer = EpisodeBuffer(observations=observations, actions=actions, rewards=np.zeros(steps),
                           terminations=np.zeros(steps, bool), truncations=np.eye(1, steps, steps - 1, dtype=bool)[0])
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers(dataset_id, [buffer], observation_space=observation_space,
                                           action_space=gym.spaces.Box(-1, 1, (2,), np.float32))


def test_wrong_shaped_dataset_is_a_clear_error(minari_root) -> None:
    rng = np.random.default_rng(0)
    _write_minari("test/maze2d-bad-v0", gym.spaces.Box(-np.inf, np.inf, (3,)), rng.normal(size=(11, 3)),
                  rng.uniform(-1, 1, (10, 2)).astype(np.float32))
    with pytest.raises(ValueError, match=r"episode 0 observations have shape \(11, 3\)"):
        load_maze2d_episodes("test/maze2d-bad-v0")
    with pytest.raises(ValueError, match=r"actions have shape \(10, 3\)"):
        Maze2DWindows([np.zeros((11, 4))], [np.zeros((10, 3))], window_tokens=2, frame_stack=2)
    with pytest.raises(ValueError, match="no episode has the 40 steps"):
        Maze2DWindows([np.zeros((11, 4))], [np.zeros((10, 2))], window_tokens=4, frame_stack=10)


def test_official_pointmaze_layout_loads(minari_root) -> None:
    """D4RL/pointmaze/*-v2 datasets have dict observations; their `observation` entry is (x, y, vx, vy)."""
    rng = np.random.default_rng(0)
    space = gym.spaces.Dict({
        "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (2,)),
        "desired_goal": gym.spaces.Box(-np.inf, np.inf, (2,)),
        "observation": gym.spaces.Box(-np.inf, np.inf, (4,)),
    })
    obs = rng.normal(size=(21, 4))
    observations = {"achieved_goal": obs[:, :2], "desired_goal": np.zeros((21, 2)), "observation": obs}
    _write_minari("D4RL/pointmaze/umaze-v2", space, observations, rng.uniform(-1, 1, (20, 2)).astype(np.float32))
    episodes = load_maze2d_episodes("D4RL/pointmaze/umaze-v2")
    np.testing.assert_allclose(episodes.observations[0], obs.astype(np.float32))
    assert len(Maze2DWindows.from_episodes(episodes, window_tokens=2, frame_stack=5)) == 20 - 10 + 1


def test_hold_steps_keep_the_ball_at_reached_targets() -> None:
    plain = generate_expert_stream("medium", 20_000, seed=1, progress=False)
    held = generate_expert_stream("medium", 20_000, seed=1, progress=False, hold_steps=100)
    # Without holds the generator is unchanged; with them the stream diverges only after the first hold.
    np.testing.assert_array_equal(plain.observations, generate_expert_stream("medium", 20_000, seed=1,
                                                                             progress=False).observations)
    assert held.targets_reached >= 3
    speed = lambda s: np.linalg.norm(s.observations[:, 2:], axis=1)  # noqa: E731
    # Holding a reached target means many more slow steps near a target than the expert that never rests.
    slow_at_goal = lambda s: np.mean((speed(s)[1:] < 0.5) & (s.rewards > 0))  # noqa: E731
    assert slow_at_goal(held) > 2 * slow_at_goal(plain)
    # The rewards stay those of the target in force.
    dist = np.linalg.norm(held.observations[1:, :2] - held.goals[:-1], axis=1)
    np.testing.assert_array_equal(held.rewards, (dist <= 0.5).astype(float))
    # Quieter holds: the same stream up to the first hold, then a slower ball at the reached targets.
    quiet = generate_expert_stream("medium", 20_000, seed=1, progress=False, hold_steps=100, hold_action_noise=0.1)
    first_hold = int(np.argmax(held.observations[:, 0] != plain.observations[:, 0]))
    np.testing.assert_array_equal(quiet.observations[:first_hold], held.observations[:first_hold])
    assert np.median(speed(quiet)[1:][quiet.rewards > 0]) < np.median(speed(held)[1:][held.rewards > 0])
    with pytest.raises(ValueError, match="hold_steps must be >= 0"):
        generate_expert_stream("umaze", 10, hold_steps=-1, progress=False)
    with pytest.raises(ValueError, match="hold_action_noise must be >= 0"):
        generate_expert_stream("umaze", 10, hold_steps=5, hold_action_noise=-0.1, progress=False)
