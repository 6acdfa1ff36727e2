"""A/B of sampler settings on open-loop plan feasibility (envs/maze2d/feasibility.py), one checkpoint.

Each variant is a JSON object of `DFPlannerConfig` / `SamplerConfig` overrides applied on top of the planner
preset, e.g.

    python scripts/maze2d_sampler_ab.py df_agent/checkpoints/maze2d-medium --horizon 60 \\
        --guidance-scale 0.2 --variants '{}' '{"repair_level": 300, "repair_steps": 10}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

COLUMNS = ("wall_frame_fraction", "plans_through_wall", "reach_fraction", "mean_min_distance", "seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--guidance-scale", type=float, default=0.2)
    parser.add_argument("--planner", default="df")
    parser.add_argument("--planner-overrides", default="{}", help="JSON of DFPlannerConfig overrides")
    parser.add_argument("--variants", nargs="+", default=["{}"])
    parser.add_argument("--starts", type=int, default=96)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--goal", choices=("fixed", "random"), default="fixed")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config
    from envs.maze2d.feasibility import plan_feasibility
    from planners.baselines import make_planner

    maze = read_checkpoint_config(args.checkpoint)["metadata"]["maze"]
    model = load_checkpoint(args.checkpoint)
    rows = []
    print("| variant | " + " | ".join(COLUMNS) + " |", flush=True)
    for text in args.variants:
        overrides = json.loads(text)
        planner = make_planner(args.planner, model, guidance_scale=args.guidance_scale, precision=args.precision,
                               **{**json.loads(args.planner_overrides), **overrides})
        report = plan_feasibility(planner, maze, args.horizon, starts=args.starts, seed=args.seed, goal=args.goal,
                                  guided=args.guidance_scale > 0).to_dict()
        rows.append({"variant": overrides, **report})
        print(f"| {text} | " + " | ".join(f"{report[c]:.3f}" for c in COLUMNS) + " |", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "guidance_scale": args.guidance_scale,
                                        "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
