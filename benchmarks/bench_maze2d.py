"""maze2d planning speed: the DF planner vs the full-sequence baseline on the shipped umaze checkpoint.

Both planner presets of `planners/baselines.py` run on the same trained model, in this one process:
  * replan latency: one guided `plan` call (goal guidance; the `df` preset adds Monte Carlo Guidance with 4
    samples) over a mid horizon of 30 tokens (300 env steps) from real umaze start observations and goals,
    batch 1 and batch 32, seconds per call;
  * closed loop: `df-agent eval`'s runner (real MuJoCo physics, MPC replanning every token with the horizon
    shrinking to the rest of the episode), env steps per second over all environments.
Ratios are df / full-sequence for latency and full-sequence / df for env-steps/s (> 1: df is slower).

    python benchmarks/bench_maze2d.py                 # full settings (the presets' 20 DDIM steps)
    python benchmarks/bench_maze2d.py --quick         # smoke run: 5 DDIM steps, horizon 10, 2 short episodes
    python benchmarks/bench_maze2d.py --threads 1 --precision bf16 --json out.json
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import with_provenance

PLANNERS = ("df", "full-sequence")
ENV_ID = "maze2d-umaze-v0"


def start_states(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observations [B, 4] and goals [B, 2] of real umaze resets (episode seeds seed..seed+B-1)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the maze2d ids)

    env = gym.make(ENV_ID)
    try:
        resets = [env.reset(seed=seed + i) for i in range(batch)]
    finally:
        env.close()
    return np.stack([obs for obs, _ in resets]), np.stack([info["goal"] for _, info in resets])


def replan_latency(planner: Any, batch: int, horizon: int, repeats: int) -> float:
    observation, goal = start_states(batch)
    planner.plan(observation, goal, horizon)  # warm-up (allocations, autocast caches)
    started = time.perf_counter()
    for _ in range(repeats):
        planner.plan(observation, goal, horizon)
    return (time.perf_counter() - started) / repeats


def closed_loop(name: str, model: Any, episodes: int, num_envs: int, overrides: dict[str, Any]) -> dict[str, float]:
    from envs.evaluation import evaluate
    from policies.mpc import MPCPolicy

    policy = MPCPolicy.from_preset(name, model, **overrides)
    result = evaluate(policy, ENV_ID, episodes, seed=0, num_envs=num_envs, progress=False)
    steps = result.episodes * result.max_episode_steps
    return {"env_steps_per_s": steps / result.wall_time_s, "wall_s": result.wall_time_s,
            "score": result.normalized_score_mean, "success_rate": result.success_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer steps, shorter horizon and episodes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="planner sampling precision")
    parser.add_argument("--checkpoint", type=Path, default=None, help="DF checkpoint (default: shipped umaze)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)

    from df_agent.checkpoint import load_checkpoint
    from envs.maze2d.policies import default_checkpoint
    from planners.baselines import MAZE_SAMPLING, make_planner

    checkpoint = args.checkpoint or default_checkpoint(ENV_ID)
    model = load_checkpoint(checkpoint).eval()
    if args.quick:
        steps, horizon, repeats, episodes, loop_envs, loop_horizon = 5, 10, 1, 2, 2, 3
    else:
        steps, horizon, repeats, episodes, loop_envs, loop_horizon = MAZE_SAMPLING["sampling_steps"], 30, 3, 8, 8, None
    overrides = {"sampling_steps": steps, "precision": args.precision}
    settings = {"threads": args.threads, "precision": args.precision, "sampling_steps": steps,
                "latency_horizon_tokens": horizon, "latency_repeats": repeats, "closed_loop_episodes": episodes,
                "closed_loop_num_envs": loop_envs, "closed_loop_max_horizon": loop_horizon, "quick": args.quick,
                "checkpoint": str(checkpoint), "env_id": ENV_ID, "torch": torch.__version__,
                "machine": platform.processor() or platform.machine()}
    print(" ".join(f"{key}={value}" for key, value in settings.items()))

    results: dict[str, Any] = {"settings": settings, "latency_s": {}, "closed_loop": {}}
    for name in PLANNERS:
        planner = make_planner(name, model, **overrides)
        for batch in (1, 32):
            results["latency_s"][f"{name}_b{batch}"] = replan_latency(planner, batch, horizon, repeats)
        results["closed_loop"][name] = closed_loop(name, model, episodes, loop_envs,
                                                   {**overrides, "max_horizon": loop_horizon})
    latency, loop = results["latency_s"], results["closed_loop"]
    results["ratios"] = {
        **{f"latency_b{b}_df_over_full_sequence": latency[f"df_b{b}"] / latency[f"full-sequence_b{b}"]
           for b in (1, 32)},
        "env_steps_per_s_full_sequence_over_df": loop["full-sequence"]["env_steps_per_s"]
        / loop["df"]["env_steps_per_s"],
    }

    print(f"\nreplan latency, seconds per plan call ({horizon} tokens, {steps} DDIM steps, guided)")
    print(f"{'batch':>5} {'df':>9} {'full-seq':>9} {'df / full-seq':>14}")
    for batch in (1, 32):
        df, full = latency[f"df_b{batch}"], latency[f"full-sequence_b{batch}"]
        print(f"{batch:5d} {df:9.3f} {full:9.3f} {df / full:14.2f}")
    print(f"\nclosed loop on {ENV_ID}: {episodes} episodes, {loop_envs} envs in lockstep, replanning every token")
    print(f"{'planner':>14} {'env steps/s':>12} {'wall s':>8} {'score':>7} {'success':>8}")
    for name in PLANNERS:
        row = loop[name]
        print(f"{name:>14} {row['env_steps_per_s']:12.1f} {row['wall_s']:8.1f} {row['score']:7.1f} "
              f"{row['success_rate']:8.2f}")
    print(f"env-steps/s full-sequence / df: {results['ratios']['env_steps_per_s_full_sequence_over_df']:.2f}")
    if args.quick:
        print("(quick run: settings far from the defaults, the scores mean nothing)")
    if args.json:
        write_json_atomic(args.json, with_provenance(results))


if __name__ == "__main__":
    main()
