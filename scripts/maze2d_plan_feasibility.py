"""Open-loop plan feasibility of a maze2d checkpoint over guidance scales (seconds, not minutes per setting).

For each guidance scale, plans once from the same random starts and reports how many predicted frames lie in
walls, how many plans cross a wall, how many reach the goal and the longest single-frame jump
(`envs/maze2d/feasibility.py`). Scale 0 is the unguided model: its wall fraction measures how well the model
has learnt the maze, a cheap training-progress signal; the guided rows show which scales keep plans physical.

    python scripts/maze2d_plan_feasibility.py df_agent/checkpoints/maze2d-large --horizon 80 \\
        --guidance-scales 0 0.05 0.1 0.2 --precision bf16 --out feasibility.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

COLUMNS = ("guidance", "goal_reward", "free_space_weight", "wall_frame_fraction", "plans_through_wall",
           "paths_through_wall", "reach_fraction", "mean_min_distance", "max_frame_step", "seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--maze", default=None, help="umaze, medium or large (default: the checkpoint's maze)")
    parser.add_argument("--horizon", type=int, required=True, help="planned tokens")
    parser.add_argument("--guidance-scales", type=float, nargs="+", default=[0.0, 0.1, 0.2])
    parser.add_argument("--free-space-weights", type=float, nargs="+", default=[0.0],
                        help="free-space guidance weights to measure at every scale (needs the checkpoint's "
                             "free-space head, or --free-space)")
    parser.add_argument("--free-space", type=Path, default=None,
                        help="directory of a free-space head (default: the checkpoint's own, if it has one)")
    parser.add_argument("--goal-rewards", nargs="+", default=["sum"], choices=("sum", "softmin", "geodesic"),
                        help="guidance rewards to compare (geodesic needs the free-space head)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="other planner settings for every row, e.g. guidance_grad_clip=1 mcg_samples=4")
    parser.add_argument("--planner", default="df", help="planner preset of planners/baselines.py")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--starts", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--goal", choices=("fixed", "random"), default="fixed")
    parser.add_argument("--out", type=Path, default=None, help="write the reports as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config
    from envs.maze2d.feasibility import plan_feasibility
    from planners.baselines import make_planner
    from planners.free_space import has_free_space, load_free_space

    for scale in args.guidance_scales:
        if not math.isfinite(scale) or scale < 0:
            raise SystemExit(f"--guidance-scales must be finite and >= 0, got {scale}")
    if not (args.checkpoint / "config.json").exists():
        raise SystemExit(f"{args.checkpoint} is not a checkpoint directory (no config.json)")
    maze = args.maze or read_checkpoint_config(args.checkpoint).get("metadata", {}).get("maze")
    if maze is None:
        raise SystemExit(f"{args.checkpoint}/config.json names no maze (metadata.maze); pass --maze")
    model = load_checkpoint(args.checkpoint)
    head_dir = args.free_space or args.checkpoint
    free_space = load_free_space(head_dir) if has_free_space(head_dir) else None
    if args.free_space is not None and free_space is None:
        raise SystemExit(f"--free-space {args.free_space}: no free-space head there")
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes NAME=VALUE, got {item!r}")
        settings[name] = json.loads(value) if value[:1] in "-0123456789[{tn" else value
    reports = []
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for scale in args.guidance_scales:
        for goal_reward in args.goal_rewards:
            for weight in args.free_space_weights:
                planner = make_planner(args.planner, model, free_space=free_space, guidance_scale=scale,
                                       precision=args.precision, free_space_weight=weight, goal_reward=goal_reward,
                                       **settings)
                report = plan_feasibility(planner, maze, args.horizon, starts=args.starts, seed=args.seed,
                                          goal=args.goal, guided=scale > 0)
                row = {"guidance": scale, "goal_reward": goal_reward, "free_space_weight": weight,
                       **settings, **report.to_dict()}
                reports.append(row)
                print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c])
                                        for c in COLUMNS) + " |", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "planner": args.planner,
                                        "precision": args.precision, "reports": reports}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
