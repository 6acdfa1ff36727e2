"""Training windows of video episodes for `df_agent.training.train` (a `BatchSource`).

Episodes are split by index into training and held-out test episodes (the last `test_episodes` of the store,
`VideoEpisodes.split`), so evaluation always conditions on mazes the model has never seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from data.video_maze.store import VideoEpisodes


class VideoWindowSource:
    """Uniformly drawn windows of `window_frames` consecutive frames from in-memory uint8 video."""

    def __init__(self, video: np.ndarray, episode_ends: np.ndarray, window_frames: int,
                 description: dict[str, Any] | None = None) -> None:
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
            raise ValueError(f"video must be uint8 [N, H, W, 3], got {video.shape} {video.dtype}")
        self.video = torch.from_numpy(np.ascontiguousarray(video))
        ends = np.asarray(episode_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        # Every start index whose window stays inside one episode.
        valid = [np.arange(s, e - window_frames + 1) for s, e in zip(starts, ends) if e - s >= window_frames]
        if not valid:
            raise ValueError(f"no episode is long enough for windows of {window_frames} frames")
        self.window_starts = torch.from_numpy(np.concatenate(valid))
        self.window_frames = window_frames
        self.description = dict(description or {})

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        choice = torch.randint(len(self.window_starts), (batch_size,), generator=generator)
        offsets = self.window_starts[choice][:, None] + torch.arange(self.window_frames)[None]
        return {"video": self.video[offsets]}

    def describe(self) -> dict[str, Any]:
        return {"source": type(self).__name__, "frames": int(self.video.shape[0]),
                "windows": len(self.window_starts), "window_frames": self.window_frames, **self.description}


def load_window_source(path: str | Path, window_frames: int, test_episodes: int,
                       max_train_episodes: int | None = None) -> VideoWindowSource:
    store = VideoEpisodes(path)
    train_ids, test_ids = store.split(test_episodes)
    if max_train_episodes is not None:
        train_ids = train_ids[:max_train_episodes]
    video, ends = store.load("video", train_ids)
    description = {"dataset": str(Path(path).resolve()), "train_episodes": len(train_ids),
                   "test_episodes": [int(i) for i in test_ids], "resolution": store.resolution}
    return VideoWindowSource(video, ends, window_frames, description)
