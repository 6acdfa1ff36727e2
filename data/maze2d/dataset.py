"""Load maze2d episodes from a local Minari dataset into memory.

Works for our `df-agent/maze2d-<maze>-v0` datasets (Box(4) observations) and for the official
`D4RL/pointmaze/<maze>-v2` datasets (dict observations; their `observation` entry has the same
(x, y, vx, vy) layout and the same Gymnasium-Robotics coordinates). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planners.maze2d_tokens import ACTION_DIM, OBS_DIM


@dataclass
class Maze2DEpisodes:
    dataset_id: str
    observations: list[np.ndarray]  # per episode [L + 1, 4] float32
    actions: list[np.ndarray]  # per episode [L, 2] float32
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    eval_env_id: str | None = None
    metadata: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        validate_episodes(self.observations, self.actions, source=self.dataset_id)

    @property
    def num_steps(self) -> int:
        return sum(len(a) for a in self.actions)


def validate_episodes(observations: list[np.ndarray], actions: list[np.ndarray], source: str = "episodes") -> None:
    """Shapes and finiteness of every episode, with errors that name the episode and the shape."""
    if len(observations) != len(actions):
        raise ValueError(f"{source}: {len(observations)} observation arrays but {len(actions)} action arrays")
    if not observations:
        raise ValueError(f"{source}: no episodes")
    for index, (obs, act) in enumerate(zip(observations, actions)):
        if obs.ndim != 2 or obs.shape[1] != OBS_DIM:
            raise ValueError(
                f"{source}: episode {index} observations have shape {obs.shape}, expected [L+1, {OBS_DIM}]"
            )
        if act.ndim != 2 or act.shape[1] != ACTION_DIM:
            raise ValueError(f"{source}: episode {index} actions have shape {act.shape}, expected [L, {ACTION_DIM}]")
        if obs.shape[0] != act.shape[0] + 1:
            raise ValueError(
                f"{source}: episode {index} has {obs.shape[0]} observations and {act.shape[0]} actions; "
                "expected one more observation than actions"
            )
        if act.shape[0] < 1:
            raise ValueError(f"{source}: episode {index} is empty")
        if not (np.isfinite(obs).all() and np.isfinite(act).all()):
            raise ValueError(f"{source}: episode {index} contains NaN or inf")


def _observation_array(observations, dataset_id: str, episode_id: int) -> np.ndarray:
    if isinstance(observations, dict):
        if "observation" not in observations:
            raise ValueError(
                f"{dataset_id}: episode {episode_id} has dict observations without an 'observation' key "
                f"(keys: {sorted(observations)})"
            )
        observations = observations["observation"]
    return np.asarray(observations, dtype=np.float32)


def load_maze2d_episodes(dataset_id: str) -> Maze2DEpisodes:
    """All episodes of a local Minari dataset, as float32 arrays in memory."""
    from df_agent.optional import require

    require("h5py", extra="maze2d-data")  # Minari's HDF5 storage
    import minari
    from minari.storage import get_dataset_path

    path = Path(get_dataset_path(dataset_id))
    if not (path / "data").exists():
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        hint = ""
        if dataset_id.startswith("df-agent/maze2d-"):
            maze = dataset_id.removeprefix("df-agent/maze2d-").split("-v")[0]
            hint = f" Create it with `df-agent data maze2d --maze {maze}`."
        raise FileNotFoundError(
            f"Minari dataset {dataset_id!r} not found locally (looked in {path}, root {root}).{hint}"
        )
    dataset = minari.load_dataset(dataset_id)
    observations, actions = [], []
    for episode in dataset.iterate_episodes():
        observations.append(_observation_array(episode.observations, dataset_id, episode.id))
        actions.append(np.asarray(episode.actions, dtype=np.float32))
    metadata = dict(dataset.storage.metadata)
    eval_env_id = None
    if isinstance(metadata.get("eval_env_spec"), str):
        eval_env_id = json.loads(metadata["eval_env_spec"]).get("id")
    return Maze2DEpisodes(
        dataset_id=dataset_id,
        observations=observations,
        actions=actions,
        ref_min_score=metadata.get("ref_min_score"),
        ref_max_score=metadata.get("ref_max_score"),
        eval_env_id=eval_env_id,
        metadata=metadata,
    )
