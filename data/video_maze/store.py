"""Video episodes on disk: a `data.replay_buffer.ReplayBuffer` zarr group (`data/<key>` time-major arrays,
`meta/episode_ends`) holding at least `data/video` uint8 [N, H, H, 3] and `data/action` [N].

`EpisodeStoreWriter` builds a whole dataset inside a temporary directory and moves it into place at the end,
so an interrupted generation never leaves a half-written dataset behind and never damages an existing one
(each episode append is itself atomic in the replay buffer). `VideoEpisodes` opens a store read-only and checks
the video-specific invariants on top of the replay buffer's own.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from data.replay_buffer import ReplayBuffer

REQUIRED_KEYS = ("video", "action")


class EpisodeStoreWriter:
    """Append whole episodes (dicts of equally long time-major arrays), then `commit()` (or `abort()`)."""

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} already exists; pass overwrite=True (--overwrite) to replace it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.parent / f".{self.path.name}.tmp-{uuid.uuid4().hex[:8]}"
        self._buffer = ReplayBuffer.create(self._tmp)
        self._committed = False

    @property
    def num_episodes(self) -> int:
        return self._buffer.n_episodes

    def append(self, episode: dict[str, np.ndarray]) -> None:
        if self._committed:
            raise RuntimeError("the store was already committed")
        video = np.asarray(episode.get("video"))
        if video.ndim != 4 or video.shape[-1] != 3 or video.shape[1] != video.shape[2] or video.dtype != np.uint8:
            raise ValueError(f"episode 'video' must be uint8 [T, H, H, 3], got {video.shape} {video.dtype}")
        self._buffer.add_episode(episode)

    def commit(self, attributes: dict[str, Any] | None = None, meta: dict[str, np.ndarray] | None = None) -> Path:
        """Record attributes and optional per-episode `meta/<key>` arrays, then move the store into place."""
        if self._buffer.n_episodes == 0:
            raise ValueError("no episodes were appended")
        self._buffer.attrs.update(json.loads(json.dumps(attributes or {})))
        group = self._buffer._group["meta"]
        for key, value in (meta or {}).items():
            value = np.asarray(value)
            if len(value) != self._buffer.n_episodes:
                raise ValueError(f"meta/{key} has {len(value)} entries for {self._buffer.n_episodes} episodes")
            group.create_array(key, shape=value.shape, dtype=value.dtype, chunks=value.shape)[:] = value
        self._committed = True
        if self.path.exists():
            backup = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.path, backup)
            os.replace(self._tmp, self.path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


class VideoEpisodes:
    """Read-only view of a video episode store with its invariants checked on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"video store {self.path} does not exist (create it: df-agent data video-maze)")
        self.buffer = ReplayBuffer.open(self.path, mode="r")
        missing = [key for key in REQUIRED_KEYS if key not in self.buffer.keys]
        if missing:
            raise ValueError(f"{self.path}: data/ lacks {missing} (has {self.buffer.keys})")
        if self.buffer.n_episodes == 0:
            raise ValueError(f"{self.path}: the store holds no episodes")
        video = self.buffer.array("video")
        if video.ndim != 4 or video.shape[-1] != 3 or video.shape[1] != video.shape[2] or video.dtype != np.uint8:
            raise ValueError(f"{self.path}: data/video must be uint8 [N, H, H, 3], got {video.shape} {video.dtype}")
        self.resolution = int(video.shape[1])
        self.attrs = dict(self.buffer.attrs)

    @property
    def num_episodes(self) -> int:
        return self.buffer.n_episodes

    @property
    def episode_ends(self) -> np.ndarray:
        return self.buffer.episode_ends

    def split(self, test_episodes: int) -> tuple[np.ndarray, np.ndarray]:
        """(training, held-out test) episode indices: the test episodes are the last `test_episodes`."""
        count = self.num_episodes
        if not 0 <= test_episodes < count:
            raise ValueError(f"test_episodes must be in 0..{count - 1} for a store of {count} episodes, "
                             f"got {test_episodes}")
        indices = np.arange(count)
        return indices[: count - test_episodes], indices[count - test_episodes :]

    def lengths(self) -> np.ndarray:
        return self.buffer.episode_lengths

    def episode(self, index: int, keys: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, np.ndarray]:
        return self.buffer.get_episode(index, keys)

    def load(self, key: str, episodes: np.ndarray | list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate `key` of the chosen episodes into memory; returns (array, episode_ends within it)."""
        indices = range(self.num_episodes) if episodes is None else episodes
        parts, ends, total = [], [], 0
        for index in indices:
            part = self.episode(int(index), keys=(key,))[key]
            parts.append(part)
            total += len(part)
            ends.append(total)
        if not parts:
            raise ValueError("no episodes selected")
        return np.concatenate(parts), np.asarray(ends, dtype=np.int64)
