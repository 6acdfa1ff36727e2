"""Episode replay buffer on a zarr 3 group: ``data/<key>`` time-major arrays and ``meta/episode_ends``.

The layout is the diffusion-policy convention: every key's array holds all episodes back to back along
axis 0, and ``meta/episode_ends[i]`` is the exclusive end index of episode ``i``.

Crash safety. Appending an episode is ordered so that ``meta/episode_ends`` is the commit record:
  1. every ``data/<key>`` array is resized and the new steps written;
  2. ``meta/episode_ends`` is resized by one entry and the new end written.
zarr's local store replaces each file atomically (write to a temporary file, then rename), so a process
killed at any point leaves either (a) data arrays longer than the last committed end — the extra steps are
ignored on open and cut off when the buffer is next opened for appending — or (b) an ``episode_ends`` whose
last entry was never written (it reads as the fill value 0), which is recognised as an interrupted commit and
dropped the same way. Every earlier episode stays readable. Any other inconsistency is an error naming the
array and the values. One writer at a time.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT_NAME = "df_agent.replay_buffer"
FORMAT_VERSION = 1
TARGET_CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: large enough to compress well, small enough for random access
MAX_CHUNK_STEPS = 1024
EPISODE_ENDS_CHUNK = 1024


class ReplayBufferError(ValueError):
    """The zarr group is not a valid replay buffer, or data given to it is inconsistent."""


def _compressor():
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


def _chunk_steps(step_shape: tuple[int, ...], dtype: np.dtype) -> int:
    step_bytes = max(1, int(np.prod(step_shape, dtype=np.int64)) * np.dtype(dtype).itemsize)
    return int(max(1, min(MAX_CHUNK_STEPS, TARGET_CHUNK_BYTES // step_bytes)))


class ReplayBuffer:
    """Episodes of equal-keyed, time-major arrays stored in a zarr 3 group on disk.

    Use :meth:`create` for a new buffer and :meth:`open` for an existing one (``mode="r"`` read-only,
    ``mode="a"`` to append; appending first repairs what an interrupted append left behind).
    """

    def __init__(self, group: Any, path: pathlib.Path, writable: bool) -> None:
        self._group = group
        self.path = path
        self.writable = writable
        self._episode_ends = np.zeros(0, dtype=np.int64)
        self._validate_and_recover()

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike, overwrite: bool = False) -> ReplayBuffer:
        import zarr

        path = pathlib.Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)")
        group = zarr.open_group(store=str(path), mode="w", zarr_format=3)
        group.attrs.update({"format": FORMAT_NAME, "version": FORMAT_VERSION})
        group.create_group("data")
        meta = group.create_group("meta")
        meta.create_array(
            "episode_ends", shape=(0,), dtype="int64", chunks=(EPISODE_ENDS_CHUNK,), fill_value=0, compressors=None
        )
        return cls(group, path, writable=True)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> ReplayBuffer:
        import zarr

        path = pathlib.Path(path)
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        if not path.exists():
            raise FileNotFoundError(f"replay buffer {path} does not exist")
        try:
            group = zarr.open_group(store=str(path), mode="r" if mode == "r" else "r+", zarr_format=3)
        except Exception as error:  # zarr raises several types for a non-group path
            raise ReplayBufferError(f"{path}: not a zarr 3 group ({type(error).__name__}: {error})") from error
        return cls(group, path, writable=mode == "a")

    @classmethod
    def open_or_create(cls, path: str | os.PathLike) -> ReplayBuffer:
        path = pathlib.Path(path)
        return cls.open(path, mode="a") if path.exists() else cls.create(path)

    # ------------------------------------------------------------- invariants
    def _validate_and_recover(self) -> None:
        where = str(self.path)
        for name in ("data", "meta"):
            if name not in self._group:
                raise ReplayBufferError(f"{where}: missing group '{name}'")
        if "episode_ends" not in self._group["meta"]:
            raise ReplayBufferError(f"{where}: missing array 'meta/episode_ends'")
        ends_array = self._group["meta/episode_ends"]
        if ends_array.ndim != 1 or not np.issubdtype(ends_array.dtype, np.integer):
            raise ReplayBufferError(
                f"{where}: meta/episode_ends must be a 1-D integer array, got shape {ends_array.shape} "
                f"dtype {ends_array.dtype}"
            )
        ends = np.asarray(ends_array[:], dtype=np.int64)
        lengths = {key: self._group["data"][key].shape[0] for key in self._data_keys_on_disk()}
        for key, array in self._data_arrays_on_disk().items():
            if array.ndim < 1:
                raise ReplayBufferError(f"{where}: data/{key} must have a time axis, got shape {array.shape}")
        shortest = min(lengths.values(), default=0)
        committed = len(ends)
        if committed and not self._end_is_valid(ends, committed - 1, shortest):
            # Only the last entry may be half-written (an interrupted commit); anything earlier is corruption.
            log.warning(
                "%s: ignoring episode %d, its append was interrupted (episode_ends[-1] = %d)",
                where,
                committed - 1,
                ends[-1],
            )
            committed -= 1
        prev = 0
        for i in range(committed):
            if not self._end_is_valid(ends, i, shortest):
                raise ReplayBufferError(
                    f"{where}: meta/episode_ends[{i}] = {ends[i]} is invalid (previous end {prev}, data length "
                    f"{shortest}); episode ends must increase strictly and not exceed every data/<key> length "
                    f"({lengths})"
                )
            prev = ends[i]
        if committed and not lengths:
            raise ReplayBufferError(f"{where}: {committed} episodes recorded but no data/<key> arrays")
        self._episode_ends = ends[:committed].copy()
        if self.writable:
            self._repair(len(ends))

    @staticmethod
    def _end_is_valid(ends: np.ndarray, i: int, data_length: int) -> bool:
        prev = ends[i - 1] if i > 0 else 0
        return bool(prev < ends[i] <= data_length)

    def _repair(self, stored_entries: int) -> None:
        """Cut off whatever an interrupted append left beyond the last committed episode."""
        n_steps = self.n_steps
        ends_array = self._group["meta/episode_ends"]
        if stored_entries > self.n_episodes:
            # Zero the dropped entries before shrinking, so stale values never reappear when the array grows.
            ends_array[self.n_episodes : stored_entries] = 0
            ends_array.resize((self.n_episodes,))
            log.warning("%s: removed %d uncommitted episode end(s)", self.path, stored_entries - self.n_episodes)
        for key, array in self._data_arrays_on_disk().items():
            if array.shape[0] > n_steps:
                log.warning("%s: cutting data/%s from %d to %d steps", self.path, key, array.shape[0], n_steps)
                array.resize((n_steps, *array.shape[1:]))

    # ------------------------------------------------------------- read side
    def _data_keys_on_disk(self) -> list[str]:
        return sorted(self._group["data"].array_keys())

    def _data_arrays_on_disk(self) -> dict[str, Any]:
        return {key: self._group["data"][key] for key in self._data_keys_on_disk()}

    @property
    def keys(self) -> list[str]:
        return self._data_keys_on_disk()

    @property
    def episode_ends(self) -> np.ndarray:
        return self._episode_ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._episode_ends, prepend=0)

    @property
    def n_episodes(self) -> int:
        return len(self._episode_ends)

    @property
    def n_steps(self) -> int:
        return int(self._episode_ends[-1]) if len(self._episode_ends) else 0

    @property
    def attrs(self) -> Any:
        """The group's attributes (JSON), e.g. to record what produced the data."""
        return self._group.attrs

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        return f"ReplayBuffer({self.path}, episodes={self.n_episodes}, steps={self.n_steps}, keys={self.keys})"

    def array(self, key: str) -> Any:
        """The zarr array of ``key`` (read lazily). Only rows ``[:n_steps]`` belong to committed episodes."""
        if key not in self.keys:
            raise KeyError(f"{self.path}: no data key {key!r}; keys are {self.keys}")
        return self._group["data"][key]

    def episode_slice(self, index: int) -> slice:
        if not -self.n_episodes <= index < self.n_episodes:
            raise IndexError(f"{self.path}: episode {index} out of range ({self.n_episodes} episodes)")
        index %= self.n_episodes
        start = int(self._episode_ends[index - 1]) if index > 0 else 0
        return slice(start, int(self._episode_ends[index]))

    def get_episode(self, index: int, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        window = self.episode_slice(index)
        return {key: np.asarray(self.array(key)[window]) for key in (list(keys) if keys is not None else self.keys)}

    def train_val_split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Episode indices for training and validation (split by episode, never inside one).

        At least one episode goes to validation when ``val_fraction > 0`` and there are two or more episodes.
        """
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        order = np.random.default_rng(seed).permutation(self.n_episodes)
        n_val = round(val_fraction * self.n_episodes)
        if val_fraction > 0 and self.n_episodes >= 2:
            n_val = min(max(n_val, 1), self.n_episodes - 1)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    # ------------------------------------------------------------ write side
    def add_episode(self, episode: Mapping[str, np.ndarray]) -> int:
        """Append one episode atomically; returns its index.

        ``episode`` maps every key to an array ``[T, ...]`` with the same ``T >= 1``. The first episode fixes the
        keys, dtypes and per-step shapes; later episodes must match them exactly.
        """
        if not self.writable:
            raise ReplayBufferError(f"{self.path}: opened read-only; use ReplayBuffer.open(path, mode='a')")
        if self.n_episodes == 0:
            # Arrays left by an interrupted first append hold no committed steps: start afresh.
            for key in self._data_keys_on_disk():
                del self._group["data"][key]
        steps = self._check_episode(episode)
        arrays = self._data_arrays_on_disk()
        if not arrays:
            arrays = {key: self._create_data_array(key, np.asarray(value)) for key, value in episode.items()}
        start = self.n_steps
        stop = start + steps
        for array in arrays.values():
            array.resize((stop, *array.shape[1:]))
        for key, array in arrays.items():
            array[start:stop] = np.asarray(episode[key])
        self._commit(stop)
        return self.n_episodes - 1

    def _commit(self, end: int) -> None:
        ends_array = self._group["meta/episode_ends"]
        index = self.n_episodes
        ends_array.resize((index + 1,))
        ends_array[index] = end
        self._episode_ends = np.append(self._episode_ends, np.int64(end))

    def _check_episode(self, episode: Mapping[str, np.ndarray]) -> int:
        if not episode:
            raise ReplayBufferError("episode has no keys")
        lengths = {}
        for key, value in episode.items():
            if not key or "/" in key:
                raise ReplayBufferError(f"data key {key!r} must be a non-empty name without '/'")
            value = np.asarray(value)
            if value.ndim < 1:
                raise ReplayBufferError(f"episode[{key!r}] must be time-major [T, ...], got a scalar")
            if value.dtype == object:
                raise ReplayBufferError(f"episode[{key!r}] has dtype object; only numeric arrays can be stored")
            lengths[key] = value.shape[0]
        if len(set(lengths.values())) != 1:
            raise ReplayBufferError(f"all keys of an episode must have the same length, got {lengths}")
        steps = next(iter(lengths.values()))
        if steps < 1:
            raise ReplayBufferError("episode is empty (0 steps)")
        existing = self._data_arrays_on_disk()
        if existing:
            if set(existing) != set(episode):
                raise ReplayBufferError(
                    f"{self.path}: episode keys {sorted(episode)} differ from the buffer's keys {sorted(existing)}"
                )
            for key, array in existing.items():
                value = np.asarray(episode[key])
                if value.shape[1:] != array.shape[1:] or value.dtype != array.dtype:
                    raise ReplayBufferError(
                        f"{self.path}: episode[{key!r}] has per-step shape {value.shape[1:]} dtype {value.dtype}, "
                        f"the buffer stores {array.shape[1:]} {array.dtype}"
                    )
        return steps

    def _create_data_array(self, key: str, value: np.ndarray) -> Any:
        step_shape = tuple(value.shape[1:])
        return self._group["data"].create_array(
            key,
            shape=(0, *step_shape),
            dtype=value.dtype,
            chunks=(_chunk_steps(step_shape, value.dtype), *step_shape),
            compressors=_compressor(),
            fill_value=0,
        )

    def extend(self, episodes: Sequence[Mapping[str, np.ndarray]]) -> list[int]:
        return [self.add_episode(episode) for episode in episodes]
