"""`df-agent data maze2d`: generate the D4RL-style expert dataset of one maze as a local Minari dataset."""

from __future__ import annotations

import argparse

MAZES = ("umaze", "medium", "large")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--maze", required=True, choices=MAZES, help="which maze")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: 1M umaze, 2M medium, 4M large)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.add_argument("--action-noise", type=float, default=0.5, help="std of the Gaussian action noise")
    parser.add_argument("--hold-steps", type=int, default=0,
                        help="after reaching a target, keep holding it for U{0..N} more steps (0: D4RL's expert, "
                             "which never rests)")
    parser.add_argument("--hold-action-noise", type=float, default=None,
                        help="std of the action noise while holding (default: --action-noise)")
    parser.add_argument("--segment-steps", type=int, default=10_000, help="steps per Minari episode")
    parser.add_argument("--dataset-id", default=None, help="Minari id (default: df-agent/maze2d-<maze>-v0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that id")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import logging
    import time

    from minari.storage import get_dataset_path

    from data.maze2d.generate import generate_maze2d_dataset

    if args.hold_steps < 0:
        raise ValueError(f"--hold-steps must be >= 0, got {args.hold_steps}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    started = time.perf_counter()
    try:
        dataset_id, stream, path = generate_maze2d_dataset(
            args.maze,
            steps=args.steps,
            seed=args.seed,
            action_noise=args.action_noise,
            segment_steps=args.segment_steps,
            dataset_id=args.dataset_id,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            hold_steps=args.hold_steps,
            hold_action_noise=args.hold_action_noise,
        )
    except FileExistsError as error:
        logging.getLogger(__name__).error("%s", error)
        return 1
    total = time.perf_counter() - started
    print(f"dataset      {dataset_id}")
    print(f"path         {path}")
    print(f"steps        {len(stream.actions)}  (targets reached {stream.targets_reached}, timeouts {stream.timeouts})")
    print(f"time         {stream.seconds:.1f} s simulation, {total:.1f} s total")
    print(f"minari root  {get_dataset_path()}")
    return 0
