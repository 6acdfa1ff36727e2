"""`df-agent data teleop-demos --out-dir bags/ --num N`: scripted teleoperation of the simulated fruit swap,
one rosbag2 per demonstration (optionally imported straight into a replay buffer)."""

from __future__ import annotations

import argparse
import pathlib

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", required=True, help="directory for the bags (demo_0000, demo_0001, ...)")
    parser.add_argument("--num", type=int, required=True, help="number of demonstrations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first demo; demo i uses seed + i")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin")
    parser.add_argument("--image-size", type=int, default=64, help="camera resolution recorded in the bags")
    parser.add_argument("--camera-every", type=int, default=2, help="camera frame every N control periods")
    parser.add_argument("--keep-failed", action="store_true", help="keep bags of demos that did not succeed")
    parser.add_argument("--import-to", default=None, help="also import the successful bags into this zarr")
    parser.add_argument("--config", default=None, help="topics YAML for --import-to (default: the example)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import shutil

    from tqdm import tqdm

    from envs.franka_swap.env import FrankaFruitSwapEnv
    from envs.franka_swap.teleop import record_demonstration

    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = FrankaFruitSwapEnv(image_size=args.image_size)
    results = []
    for i in tqdm(range(args.num), desc="teleop demos", unit="demo", disable=args.no_progress):
        bag = out_dir / f"demo_{args.seed + i:04d}"
        result = record_demonstration(
            bag, seed=args.seed + i, storage=args.storage, camera_every=args.camera_every, env=env
        )
        if not result.success and not args.keep_failed:
            shutil.rmtree(bag)
        results.append(result)
    env.close()
    successes = [r for r in results if r.success]
    summary = {
        "demos": len(results),
        "successes": len(successes),
        "success_rate": len(successes) / len(results),
        "mean_duration_s": sum(r.duration_s for r in results) / len(results),
        "results": [r.__dict__ for r in results],
    }
    write_json_atomic(out_dir / "teleop_summary.json", with_provenance(summary, command_of(args)))
    print(f"demos {len(results)}  successful {len(successes)}  mean length {summary['mean_duration_s']:.1f} s")
    print(f"bags in {out_dir}")
    if args.import_to and successes:
        from data.rosbag_import import ImportConfig, import_bags
        from df_agent.cli.data_import_bags import DEFAULT_CONFIG

        config = ImportConfig.from_yaml(args.config or DEFAULT_CONFIG)
        reports = import_bags([r.path for r in successes], args.import_to, config, progress=not args.no_progress)
        episodes = sum(len(r.episodes) for r in reports)
        print(f"imported {episodes} episodes into {args.import_to}")
    return 0
