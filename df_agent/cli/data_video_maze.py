"""`df-agent data video-maze`: render first-person maze-walking videos (or import TECO npz files) into zarr."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output zarr store (a directory)")
    parser.add_argument("--episodes", type=int, default=200, help="number of trajectories (one maze each)")
    parser.add_argument("--frames", type=int, default=300, help="frames per trajectory")
    parser.add_argument("--resolution", type=int, default=64, choices=(32, 64), help="frame size in pixels")
    parser.add_argument("--maze-size", type=int, default=9, help="maze blocks per side, border included (odd)")
    parser.add_argument("--wall-removal", type=float, default=0.15, help="fraction of interior walls knocked out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (episode i uses SEED + i)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument("--from-teco", metavar="DIR", help="import TECO npz trajectories from DIR instead of rendering")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from data.video_maze.generate import VideoMazeConfig, convert_teco, generate_dataset

    if args.from_teco:
        count = convert_teco(args.from_teco, args.out, overwrite=args.overwrite)
        print(json.dumps({"episodes": count, "out": args.out}))
        return 0
    config = VideoMazeConfig(
        num_episodes=args.episodes,
        frames=args.frames,
        resolution=args.resolution,
        maze_size=args.maze_size,
        wall_removal_fraction=args.wall_removal,
        seed=args.seed,
    )
    stats = generate_dataset(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(json.dumps({**stats, "out": args.out}))
    return 0
