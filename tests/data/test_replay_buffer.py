"""ReplayBuffer on real zarr 3 files: layout, invariants, per-episode access, splits and crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr

from data.replay_buffer import ReplayBuffer, ReplayBufferError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_episode(index: int, length: int | None = None, image_size: int = 8) -> dict[str, np.ndarray]:
    """Deterministic content per episode index, so a reader can check every value."""
    length = length or 3 + index % 4
    rng = np.random.default_rng(index)
    return {
        "image": rng.integers(0, 256, size=(length, image_size, image_size, 3), dtype=np.uint8),
        "action": rng.normal(size=(length, 7)).astype(np.float32),
        "step": np.arange(length, dtype=np.int64) + 1000 * index,
    }


def assert_episode_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_layout_and_per_episode_access(tmp_path) -> None:
    path = tmp_path / "demos.zarr"
    buffer = ReplayBuffer.create(path)
    episodes = [make_episode(i) for i in range(5)]
    for i, episode in enumerate(episodes):
        assert buffer.add_episode(episode) == i
    reopened = ReplayBuffer.open(path)
    assert reopened.n_episodes == 5
    lengths = [len(e["step"]) for e in episodes]
    np.testing.assert_array_equal(reopened.episode_ends, np.cumsum(lengths))
    np.testing.assert_array_equal(reopened.episode_lengths, lengths)
    assert reopened.n_steps == sum(lengths)
    for i, episode in enumerate(episodes):
        assert_episode_equal(reopened.get_episode(i), episode)
    assert_episode_equal(reopened.get_episode(-1), episodes[-1])
    # The on-disk layout is the diffusion-policy convention, readable with plain zarr.
    group = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(group["meta/episode_ends"][:], np.cumsum(lengths))
    assert group["data/image"].shape == (sum(lengths), 8, 8, 3)
    assert group["data/image"].compressors, "images must be compressed"
    assert group["data/image"].chunks[1:] == (8, 8, 3)
    with pytest.raises(IndexError, match="out of range"):
        reopened.get_episode(5)
    with pytest.raises(ReplayBufferError, match="read-only"):
        reopened.add_episode(make_episode(9))


def test_bad_episodes_rejected_with_clear_errors(tmp_path) -> None:
    buffer = ReplayBuffer.create(tmp_path / "b.zarr")
    buffer.add_episode(make_episode(0))
    with pytest.raises(ReplayBufferError, match="same length"):
        buffer.add_episode(
            {
                "image": np.zeros((3, 8, 8, 3), np.uint8),
                "action": np.zeros((4, 7), np.float32),
                "step": np.zeros(3, np.int64),
            }
        )
    with pytest.raises(ReplayBufferError, match="differ from the buffer's keys"):
        buffer.add_episode({"image": np.zeros((3, 8, 8, 3), np.uint8)})
    bad = make_episode(1)
    bad["image"] = bad["image"][:, :4]
    with pytest.raises(ReplayBufferError, match="per-step shape"):
        buffer.add_episode(bad)
    with pytest.raises(ReplayBufferError, match="empty"):
        buffer.add_episode({k: v[:0] for k, v in make_episode(2).items()})
    assert ReplayBuffer.open(tmp_path / "b.zarr").n_episodes == 1  # failed appends changed nothing
    with pytest.raises(FileExistsError):
        ReplayBuffer.create(tmp_path / "b.zarr")


def test_invariants_checked_on_open(tmp_path) -> None:
    path = tmp_path / "c.zarr"
    buffer = ReplayBuffer.create(path)
    for i in range(3):
        buffer.add_episode(make_episode(i))
    group = zarr.open_group(str(path), mode="r+")
    ends = group["meta/episode_ends"][:]
    group["meta/episode_ends"][1] = ends[0]  # not strictly increasing, and not the last entry
    with pytest.raises(ReplayBufferError, match=r"episode_ends\[1\]"):
        ReplayBuffer.open(path)
    group["meta/episode_ends"][1] = ends[1]
    group["data/action"].resize((int(ends[1]) - 1, 7))  # data shorter than committed episodes
    with pytest.raises(ReplayBufferError, match="data length"):
        ReplayBuffer.open(path)
    with pytest.raises(FileNotFoundError):
        ReplayBuffer.open(tmp_path / "missing.zarr")
    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    with pytest.raises(ReplayBufferError, match="missing group 'data'"):
        ReplayBuffer.open(tmp_path / "empty.zarr")


def test_train_val_split_by_episode(tmp_path) -> None:
    buffer = ReplayBuffer.create(tmp_path / "s.zarr")
    for i in range(10):
        buffer.add_episode(make_episode(i))
    train, val = buffer.train_val_split(val_fraction=0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(range(10))
    again = buffer.train_val_split(val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1], val)
    assert len(buffer.train_val_split(val_fraction=0.01)[1]) == 1  # never an empty validation set


# A child process appends episodes and is killed (SIGKILL, no cleanup) at a chosen point of one append.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import zarr
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    from data.replay_buffer import ReplayBuffer
    from test_replay_buffer import make_episode

    path, kill_episode, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    buffer = ReplayBuffer.open_or_create(path)
    state = {{"episode": 0}}
    original_setitem = zarr.Array.__setitem__
    original_commit = ReplayBuffer._commit
    original_resize = zarr.Array.resize

    def setitem(self, key, value):
        original_setitem(self, key, value)
        if phase == "mid_data" and state["episode"] == kill_episode and self.path.startswith("data/"):
            die()  # some data arrays written, others not

    def commit(self, end):
        if state["episode"] == kill_episode and phase == "data_written":
            die()
        original_commit(self, end)

    def resize(self, shape):
        original_resize(self, shape)
        if state["episode"] == kill_episode and self.path == "meta/episode_ends" and phase == "ends_resized":
            die()
        if state["episode"] == kill_episode and self.path.startswith("data/") and phase == "data_resized":
            die()

    zarr.Array.__setitem__ = setitem
    zarr.Array.resize = resize
    ReplayBuffer._commit = commit
    for i in range(1000):
        state["episode"] = i
        buffer.add_episode(make_episode(i, length=40 if phase == "random" else None, image_size=64))
        print("committed", i, flush=True)
    """
)


def _run_child(tmp_path, path, kill_episode: int, phase: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=REPO_ROOT, tests=os.path.dirname(os.path.abspath(__file__))))
    return subprocess.Popen(
        [sys.executable, str(script), str(path), str(kill_episode), phase],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_recovered(path, committed: int) -> None:
    buffer = ReplayBuffer.open(path)  # read-only open tolerates the leftovers
    assert buffer.n_episodes == committed
    for i in range(committed):
        assert_episode_equal(buffer.get_episode(i), make_episode(i, image_size=64))
    # Appending repairs the buffer and continues where the committed data ends.
    writer = ReplayBuffer.open(path, mode="a")
    writer.add_episode(make_episode(committed, image_size=64))
    reopened = ReplayBuffer.open(path)
    assert reopened.n_episodes == committed + 1
    assert_episode_equal(reopened.get_episode(committed), make_episode(committed, image_size=64))
    group = zarr.open_group(str(path), mode="r")
    assert all(group["data"][key].shape[0] == reopened.n_steps for key in reopened.keys)


@pytest.mark.parametrize(
    ("phase", "kill_episode"),
    [("data_resized", 0), ("data_resized", 2), ("mid_data", 2), ("data_written", 2), ("ends_resized", 2)],
)
def test_killed_mid_append_keeps_earlier_episodes(tmp_path, phase: str, kill_episode: int) -> None:
    path = tmp_path / "crash.zarr"
    child = _run_child(tmp_path, path, kill_episode, phase)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, stderr
    assert stdout.count("committed") == kill_episode
    _check_recovered(path, kill_episode)


def test_killed_at_a_random_moment(tmp_path) -> None:
    """SIGKILL from outside while the child appends large episodes as fast as it can."""
    rng = np.random.default_rng(int(time.time()))
    for attempt in range(2):
        path = tmp_path / f"random{attempt}.zarr"
        child = _run_child(tmp_path, path, -1, "random")
        assert child.stdout is not None
        for _ in range(2):  # let a couple of episodes commit first
            line = child.stdout.readline()
            assert line.startswith("committed"), child.stderr.read() if child.stderr else ""
        time.sleep(float(rng.uniform(0.0, 0.05)))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=60)
        committed = 2 + rest.count("committed")
        buffer = ReplayBuffer.open(path)
        # The kill may land after a commit but before its "committed" line was printed.
        assert buffer.n_episodes in (committed, committed + 1)
        for i in range(buffer.n_episodes):
            assert_episode_equal(buffer.get_episode(i), make_episode(i, length=40, image_size=64))
