"""Fit the free-space head of a maze2d checkpoint from its training dataset (seconds).

Reads every position of the checkpoint's Minari dataset (metadata.data.dataset_id, or --dataset-id), fits the
log density ratio map of planners/free_space.py and writes free_space.safetensors + free_space.json into the
checkpoint directory (or --out). The planner uses it when free_space_weight > 0. Only the dataset is read:
no map, no simulator.

    python scripts/maze2d_free_space.py df_agent/checkpoints/maze2d-medium
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="maze2d checkpoint directory")
    parser.add_argument("--dataset-id", default=None, help="Minari dataset (default: the checkpoint's own)")
    parser.add_argument("--out", type=Path, default=None, help="write the head here (default: the checkpoint)")
    parser.add_argument("--resolution", type=float, default=0.05, help="grid spacing, env units")
    parser.add_argument("--bandwidth", type=float, default=0.1, help="Gaussian kernel std, env units")
    parser.add_argument("--floor", type=float, default=1e-12, help="floor of the density ratio")
    parser.add_argument("--padding", type=float, default=0.5, help="margin around the data's box, env units")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np

    from data.maze2d.dataset import load_maze2d_episodes
    from df_agent.checkpoint import read_checkpoint_config
    from planners.free_space import fit_free_space, save_free_space

    metadata = read_checkpoint_config(args.checkpoint).get("metadata", {})
    dataset_id = args.dataset_id or metadata.get("data", {}).get("dataset_id")
    if dataset_id is None:
        raise SystemExit(f"{args.checkpoint}/config.json names no dataset (metadata.data.dataset_id); "
                         "pass --dataset-id")
    episodes = load_maze2d_episodes(dataset_id)
    positions = np.concatenate([observations[:, :2] for observations in episodes.observations])
    model, report = fit_free_space(positions, args.resolution, args.bandwidth, args.padding, args.floor)
    out = args.out or args.checkpoint
    save_free_space(model, out, {"dataset_id": dataset_id, "positions": report.positions,
                                 "resolution": args.resolution, "bandwidth": args.bandwidth,
                                 "padding": args.padding, "floor": args.floor, "maze": metadata.get("maze")})
    print(f"free-space head of {dataset_id}: {report.positions} positions, grid {model.config.shape}, "
          f"{report.visited_fraction:.1%} of nodes visited more than uniform, {report.seconds:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
