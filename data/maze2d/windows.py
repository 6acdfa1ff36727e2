"""The training view of maze2d data: random windows of tokens for Diffusion Forcing.

Frame t of an episode is [o_{t+1} (x, y, vx, vy), a_t (ax, ay)] (FACTS.md): the action and the observation
it led to. A token packs `frame_stack` consecutive frames, so it has D = frame_stack * 6 numbers, ordered
frame by frame. A window starting at step s holds tokens j = 0..N-1 made of frames s + j*fs .. s + (j+1)*fs - 1,
and its `context` is o_s, the observation before the window's first action (what the model's initial latent
starts from). Every step s of an episode may start a window (stride 1).

Episode boundaries: windows never cross them (Minari episodes from our generator are 10k-step cuts of one
continuing stream, so this loses little). By default a window must lie wholly inside its episode
(`min_tokens = window_tokens`); with a smaller `min_tokens` windows may run past the episode end, the missing
tokens are zeros and `mask` is False for them (True = real token).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from data.maze2d.dataset import Maze2DEpisodes, load_maze2d_episodes, validate_episodes
from planners.maze2d_tokens import FRAME_DIM, OBS_DIM


class Maze2DWindows:
    def __init__(
        self,
        observations: Sequence[np.ndarray],
        actions: Sequence[np.ndarray],
        window_tokens: int,
        frame_stack: int,
        min_tokens: int | None = None,
        source: str = "episodes",
    ) -> None:
        if window_tokens < 1 or frame_stack < 1:
            raise ValueError(f"window_tokens and frame_stack must be >= 1, got {window_tokens} and {frame_stack}")
        min_tokens = window_tokens if min_tokens is None else min_tokens
        if not 1 <= min_tokens <= window_tokens:
            raise ValueError(f"min_tokens must be in [1, window_tokens={window_tokens}], got {min_tokens}")
        observations = [np.asarray(o, dtype=np.float32) for o in observations]
        actions = [np.asarray(a, dtype=np.float32) for a in actions]
        validate_episodes(observations, actions, source=source)
        self.window_tokens, self.frame_stack, self.min_tokens = window_tokens, frame_stack, min_tokens
        self.token_dim = frame_stack * FRAME_DIM
        self.context_dim = OBS_DIM

        # Flat frame table over all episodes; `_episode_end[i]` = flat index one past frame i's episode.
        self.frames = np.concatenate([np.concatenate([o[1:], a], axis=1) for o, a in zip(observations, actions)])
        self.contexts = np.concatenate([o[:-1] for o in observations])
        lengths = np.array([len(a) for a in actions])
        ends = np.cumsum(lengths)
        begins = ends - lengths
        starts, start_ends = [], []
        need = min_tokens * frame_stack
        for begin, end in zip(begins, ends):
            if end - begin >= need:
                starts.append(np.arange(begin, end - need + 1))
                start_ends.append(np.full(end - need + 1 - begin, end))
        if not starts:
            raise ValueError(
                f"{source}: no episode has the {need} steps one window needs (min_tokens={min_tokens} x "
                f"frame_stack={frame_stack}); longest episode has {lengths.max()} steps. Lower min_tokens to allow "
                "padded windows."
            )
        self.starts = np.concatenate(starts)
        self.start_episode_end = np.concatenate(start_ends)
        # A zero tail lets every start slice a full window out of one strided view (no per-frame index arrays).
        span = window_tokens * frame_stack
        padded = np.concatenate([self.frames, np.zeros((span, FRAME_DIM), dtype=np.float32)])
        self.frames = padded[: len(self.frames)]  # a view: keep one copy of the frame table in memory
        self._window_view = np.lib.stride_tricks.sliding_window_view(padded, (span, FRAME_DIM))[:, 0]

    @classmethod
    def from_episodes(cls, episodes: Maze2DEpisodes, window_tokens: int, frame_stack: int, **kwargs) -> Maze2DWindows:
        return cls(
            episodes.observations, episodes.actions, window_tokens, frame_stack, source=episodes.dataset_id, **kwargs
        )

    @classmethod
    def from_minari(cls, dataset_id: str, window_tokens: int, frame_stack: int, **kwargs) -> Maze2DWindows:
        return cls.from_episodes(load_maze2d_episodes(dataset_id), window_tokens, frame_stack, **kwargs)

    def __len__(self) -> int:
        return len(self.starts)

    def _gather(self, window_index: np.ndarray) -> dict[str, torch.Tensor]:
        start = self.starts[window_index]
        end = self.start_episode_end[window_index]
        frames = self._window_view[start]  # [B, N*fs, 6] copy; frames past the episode end are zeroed below
        tokens = frames.reshape(len(start), self.window_tokens, self.token_dim)
        token_last = start[:, None] + (np.arange(self.window_tokens)[None, :] + 1) * self.frame_stack
        mask = token_last <= end[:, None]
        if not mask.all():
            tokens[~mask] = 0.0
        return {
            "tokens": torch.from_numpy(tokens),
            "context": torch.from_numpy(self.contexts[start]),
            "mask": torch.from_numpy(mask),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window index {index} out of range for {len(self)} windows")
        batch = self._gather(np.array([index % len(self)]))
        return {key: value[0] for key, value in batch.items()}

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Uniform random windows: tokens float32 [B, N, D], context float32 [B, 4], mask bool [B, N] (raw)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        window_index = torch.randint(len(self), (batch_size,), generator=generator).numpy()
        return self._gather(window_index)

    def frame_normalizer_stats(self, mode: str = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, scale) per frame dimension [6], fitted on every frame of the data."""
        from df_agent.normalizer import Normalizer

        normalizer = Normalizer(FRAME_DIM, mode=mode).fit(torch.from_numpy(self.frames))
        return normalizer.shift.clone(), normalizer.scale.clone()

    def token_normalizer(self, mode: str = "gaussian"):
        """A fitted `Normalizer(D)`: the frame statistics repeated for each of the frame_stack frames."""
        from df_agent.normalizer import Normalizer

        shift, scale = self.frame_normalizer_stats(mode)
        return Normalizer(self.token_dim, mode=mode).set_stats(
            shift.repeat(self.frame_stack), scale.repeat(self.frame_stack)
        )

    def context_normalizer(self, mode: str = "gaussian"):
        """A fitted `Normalizer(4)` over every observation that can start a window."""
        from df_agent.normalizer import Normalizer

        return Normalizer(self.context_dim, mode=mode).fit(torch.from_numpy(self.contexts))
