"""Render a dataset of maze-walking videos: one episode per (maze, start) with the discrete action per frame."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data.video_maze.agent import ACTION_NAMES, MazeExplorer
from data.video_maze.maze import carve_maze
from data.video_maze.renderer import MazeRenderer
from data.video_maze.store import EpisodeStoreWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoMazeConfig:
    num_episodes: int = 200
    frames: int = 300
    resolution: int = 64
    maze_size: int = 9
    wall_removal_fraction: float = 0.15
    steps_per_cell: int = 4
    steps_per_turn: int = 4
    fovy_degrees: float = 75.0
    seed: int = 0


def render_resolution(resolution: int) -> int:
    # Small videos are rendered at 64 px and area-averaged down: anti-aliased like a camera, not jagged.
    return max(resolution, 64)


def downsample(frames: np.ndarray, resolution: int) -> np.ndarray:
    if frames.shape[1] == resolution:
        return frames
    from df_agent.optional import require

    require("cv2", extra="video")
    import cv2

    return np.stack([cv2.resize(frame, (resolution, resolution), interpolation=cv2.INTER_AREA) for frame in frames])


def generate_episode(config: VideoMazeConfig, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One trajectory: {"video" uint8 [T,H,W,3], "action" uint8 [T], "pose" float32 [T,3]} and the maze walls.

    action[t] is the action taken after frame t was seen (so frame t+1 is its result).
    """
    walls = carve_maze(config.maze_size, rng, config.wall_removal_fraction)
    agent = MazeExplorer(walls, rng, config.steps_per_cell, config.steps_per_turn)
    frames, actions, poses = [], [], []
    with MazeRenderer(walls, render_resolution(config.resolution), config.fovy_degrees) as renderer:
        for _ in range(config.frames):
            pose = agent.pose()
            frames.append(renderer.render(pose))
            poses.append((pose.x, pose.y, pose.angle))
            actions.append(agent.step())
    video = downsample(np.stack(frames), config.resolution)
    episode = {
        "video": video,
        "action": np.asarray(actions, dtype=np.uint8),
        "pose": np.asarray(poses, dtype=np.float32),
    }
    return episode, walls


def generate_dataset(config: VideoMazeConfig, out: str | Path, overwrite: bool = False, progress: bool = True) -> dict:
    """Render `config.num_episodes` episodes into a zarr store at `out`; returns timing numbers."""
    if config.num_episodes < 1 or config.frames < 2:
        raise ValueError("need at least one episode of at least two frames")
    from tqdm import tqdm

    rng = np.random.default_rng(config.seed)
    writer = EpisodeStoreWriter(out, overwrite=overwrite)
    layouts = []
    start = time.perf_counter()
    try:
        for _ in tqdm(range(config.num_episodes), desc="episodes", disable=not progress):
            episode, walls = generate_episode(config, rng)
            writer.append(episode)
            layouts.append(walls)
        elapsed = time.perf_counter() - start
        attributes = {
            "generator": "df-agent data video-maze",
            "config": asdict(config),
            "action_names": list(ACTION_NAMES),
        }
        writer.commit(attributes, meta={"maze_walls": np.stack(layouts)})
    except BaseException:
        writer.abort()
        raise
    frames = config.num_episodes * config.frames
    stats = {"episodes": config.num_episodes, "frames": frames, "seconds": elapsed}
    stats["frames_per_second"] = frames / elapsed
    log.info("rendered %d frames in %.1f s (%.0f frames/s)", frames, elapsed, frames / elapsed)
    return stats


def convert_teco(directory: str | Path, out: str | Path, overwrite: bool = False, limit: int | None = None) -> int:
    """Copy TECO npz trajectories into an episode store; returns the number of episodes."""
    from data.video_maze.teco import iter_teco_directory

    writer = EpisodeStoreWriter(out, overwrite=overwrite)
    count = 0
    try:
        for episode in iter_teco_directory(directory):
            writer.append(episode)
            count += 1
            if limit is not None and count >= limit:
                break
        writer.commit({"generator": "TECO npz import", "source": str(directory)})
    except BaseException:
        writer.abort()
        raise
    return count
