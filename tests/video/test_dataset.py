"""The generated zarr dataset and the TECO npz reader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data.video_maze.agent import FORWARD, Pose
from data.video_maze.generate import VideoMazeConfig, convert_teco, generate_dataset, render_resolution
from data.video_maze.renderer import MazeRenderer
from data.video_maze.store import VideoEpisodes
from data.video_maze.teco import read_teco_npz
from data.video_maze.windows import load_window_source

CONFIG = VideoMazeConfig(num_episodes=2, frames=24, resolution=32, maze_size=7, seed=5)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "maze.zarr"
    generate_dataset(CONFIG, path, progress=False)
    return path


def test_store_invariants(store_path) -> None:
    store = VideoEpisodes(store_path)
    assert store.num_episodes == 2 and store.resolution == 32
    np.testing.assert_array_equal(store.episode_ends, [24, 48])
    episode = store.episode(1, keys=("video", "action", "pose"))
    assert episode["video"].shape == (24, 32, 32, 3) and episode["video"].dtype == np.uint8
    assert set(np.unique(episode["action"])) <= {0, 1, 2}
    assert store.attrs["config"]["frames"] == 24 and store.attrs["action_names"][FORWARD] == "forward"
    walls = store.buffer._group["meta/maze_walls"][:]
    assert walls.shape == (2, 7, 7) and walls.dtype == bool
    # Frames are real renders: re-rendering the recorded pose reproduces the stored frame (64 px, then area-halved).
    import cv2

    x, y, angle = episode["pose"][5]
    with MazeRenderer(walls[1], render_resolution(32)) as renderer:
        frame = renderer.render(Pose(float(x), float(y), float(angle)))
    np.testing.assert_array_equal(cv2.resize(frame, (32, 32), interpolation=cv2.INTER_AREA), episode["video"][5])
    # Recorded actions explain the pose changes.
    for t in range(23):
        moved = math.hypot(*(episode["pose"][t + 1, :2] - episode["pose"][t, :2]))
        assert (moved > 0.1) == (episode["action"][t] == FORWARD)


def test_existing_store_is_protected_and_survives_a_failed_rewrite(store_path, monkeypatch) -> None:
    with pytest.raises(FileExistsError):
        generate_dataset(CONFIG, store_path, progress=False)
    before = VideoEpisodes(store_path).episode(0)["video"].copy()
    import data.video_maze.generate as generate

    calls = {"n": 0}
    original = generate.generate_episode

    def failing(config, rng):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("renderer crashed")
        return original(config, rng)

    monkeypatch.setattr(generate, "generate_episode", failing)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        generate_dataset(CONFIG, store_path, overwrite=True, progress=False)
    np.testing.assert_array_equal(VideoEpisodes(store_path).episode(0)["video"], before)
    assert not [p for p in store_path.parent.iterdir() if p.name.startswith(".")], "temporary store left behind"


def test_window_source_draws_windows_inside_episodes(store_path) -> None:
    import torch

    source = load_window_source(store_path, window_frames=8, test_episodes=1)
    assert source.describe()["test_episodes"] == [1]
    batch = source.sample_batch(5, torch.Generator().manual_seed(0))
    assert batch["video"].shape == (5, 8, 32, 32, 3) and batch["video"].dtype == torch.uint8
    assert len(source.window_starts) == 24 - 8 + 1  # only episode 0, never across an episode boundary
    with pytest.raises(ValueError, match="test_episodes"):
        load_window_source(store_path, window_frames=8, test_episodes=2)


def test_the_held_out_episodes_are_the_last_of_the_store(store_path) -> None:
    train_ids, test_ids = VideoEpisodes(store_path).split(1)
    assert train_ids.tolist() == [0] and test_ids.tolist() == [1]
    assert VideoEpisodes(store_path).split(0)[1].tolist() == []
    with pytest.raises(ValueError, match=r"test_episodes must be in 0\.\.1 for a store of 2 episodes, got 2"):
        VideoEpisodes(store_path).split(2)


def test_missing_store_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoEpisodes(tmp_path / "nope.zarr")


def test_teco_npz_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "teco"
    folder.mkdir()
    for i in range(2):
        np.savez(folder / f"{i:03d}.npz", video=rng.integers(0, 255, (10, 64, 64, 3), dtype=np.uint8),
                 actions=rng.integers(0, 6, (10,)))
    episode = read_teco_npz(folder / "001.npz")
    assert episode["video"].shape == (10, 64, 64, 3) and episode["action"].shape == (10,)
    assert convert_teco(folder, tmp_path / "teco.zarr") == 2
    store = VideoEpisodes(tmp_path / "teco.zarr")
    assert store.resolution == 64
    np.testing.assert_array_equal(store.episode(1)["video"], episode["video"])


def test_teco_reader_rejects_bad_files(tmp_path) -> None:
    np.savez(tmp_path / "float.npz", video=np.zeros((4, 64, 64, 3), np.float32), actions=np.zeros(4))
    np.savez(tmp_path / "short.npz", video=np.zeros((4, 64, 64, 3), np.uint8), actions=np.zeros(3))
    np.savez(tmp_path / "noact.npz", video=np.zeros((4, 64, 64, 3), np.uint8))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="uint8"):
        read_teco_npz(tmp_path / "float.npz")
    with pytest.raises(ValueError, match="3 steps"):
        read_teco_npz(tmp_path / "short.npz")
    with pytest.raises(ValueError, match="actions"):
        read_teco_npz(tmp_path / "noact.npz")
    with pytest.raises(ValueError, match=r"junk\.npz"):
        read_teco_npz(tmp_path / "junk.npz")
