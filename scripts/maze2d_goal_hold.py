"""Goal holding of a maze2d checkpoint: from starts near the goal, the fraction of steps kept within its radius.

`envs/maze2d/goal_hold.py`: a few minutes per setting on one CPU thread, against 10-25 minutes for a 50-episode
closed-loop evaluation, and it isolates the phase after the goal is reached (where the medium maze loses most
of its score). Each `--set` group is one row:

    python scripts/maze2d_goal_hold.py df_agent/checkpoints/maze2d-medium \\
        --set goal_reward=geodesic --set goal_reward=geodesic sampling_steps=50 --starts 24
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_settings(items: list[str]) -> dict:
    """NAME=VALUE strings -> {name: value}; a value that parses as JSON is read as JSON, else kept as a string."""
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set takes NAME=VALUE, got {item!r}")
        try:
            settings[name] = json.loads(value)
        except json.JSONDecodeError:
            settings[name] = value  # a plain string, e.g. goal_reward=geodesic
    return settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--maze", default=None, help="umaze, medium or large (default: the checkpoint's maze)")
    parser.add_argument("--set", nargs="*", action="append", default=None, metavar="NAME=VALUE",
                        help="planner settings of one row (repeat --set for more rows; none: the checkpoint's "
                             "defaults)")
    parser.add_argument("--execution", choices=("actions", "pd"), default="actions",
                        help="execute the plan's actions (DF) or track its states with Diffuser's PD controller")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--starts", type=int, default=24)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--replan-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the reports as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from df_agent.checkpoint import read_checkpoint_config
    from envs.maze2d.goal_hold import goal_hold_report
    from policies.loading import load_policy

    if not (args.checkpoint / "config.json").exists():
        raise SystemExit(f"{args.checkpoint} is not a checkpoint directory (no config.json)")
    maze = args.maze or read_checkpoint_config(args.checkpoint).get("metadata", {}).get("maze")
    if maze is None:
        raise SystemExit(f"{args.checkpoint}/config.json names no maze (metadata.maze); pass --maze")
    rows = []
    print("| settings | inside fraction | inside at the end | mean distance, first / last replan | seconds |")
    print("|---|---|---|---|---|")
    for group in args.set or [[]]:
        settings = parse_settings(group)
        try:
            policy = load_policy(args.checkpoint, kind="df_lowdim", maze=maze, seed=args.seed,
                                 precision=args.precision, **settings)
        except (TypeError, ValueError) as error:
            raise SystemExit(f"--set {' '.join(group)}: {error}") from error
        report = goal_hold_report(policy.planner, maze, starts=args.starts, steps=args.steps,
                                  replan_every=args.replan_every, seed=args.seed, execution=args.execution)
        rows.append({"settings": settings, **report.to_dict()})
        distances = report.mean_distance_per_replan
        print(f"| {json.dumps(settings)} | {report.inside_fraction:.3f} | {report.final_inside_fraction:.3f} | "
              f"{distances[0]:.2f} / {distances[-1]:.2f} | {report.seconds:.0f} |", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "maze": maze,
                                        "execution": args.execution, "precision": args.precision,
                                        "reports": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
