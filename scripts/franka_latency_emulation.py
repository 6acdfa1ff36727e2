"""What one tick of control latency costs the fruit-swap policy, measured in the env without ROS 2.

The env evaluation (`df-agent eval teleop`) executes a token's first action on the tick of the observation it
was sampled from. On a robot that is impossible: sampling takes about a tick (87 ms at 25 steps on one core),
so the bridge's scheduler (hardware/action_scheduler.py) runs action i of a chunk observed at tick n at tick
n + 1 + i, and tick n runs the previous chunk's action for it (its second token, `horizon_tokens >= 2`). This
script runs the env in lock-step with that timing, so the cost of the delay alone is measured, apart from DDS,
the simulator's own lag and the machine's load:

- `--delay 0`: the env evaluation's timing (chunk action i at tick n + i);
- `--delay 1`: the bridge's timing (tick n: previous chunk's action for it; chunk action i at tick n + 1 + i);
- `--delay 1 --catch-up-ticks N`: the bridge's trimming and catch-up (hardware/control_loop.py): the chunk's
  first action is dropped, and the gap between what tick n executed and the chunk's own first action is spread
  over ticks n + 1 .. n + N (each gets 1/N of it on top of the chunk's action), so the arm is back on the
  chunk's timeline after N ticks. N = 1 is the old one-step jump; 5 is the bridge's default; 0 drops the first
  action and never rejoins. `--catch-up` is N = 1.

    python scripts/franka_latency_emulation.py --checkpoint franka-swap --episodes 30 --seed 10000 --delay 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def run(checkpoint: str, episodes: int, seed: int, delay: int, catch_up_ticks: int | None, num_envs: int) -> dict:
    """`catch_up_ticks` None: with a delay, tick n + i runs the chunk's action i - 1 (no trimming)."""
    from df_agent.checkpoint import resolve_checkpoint
    from envs.franka_swap.env import FrankaFruitSwapEnv
    from envs.franka_swap.evaluation import SwapTask
    from policies.loading import load_policy

    policy = load_policy(resolve_checkpoint(checkpoint), kind="df_imitation", seed=seed, horizon_tokens=2)
    horizon = policy.replan_every
    records = []
    for first in range(seed, seed + episodes, num_envs):
        seeds = list(range(first, min(first + num_envs, seed + episodes)))
        envs = [FrankaFruitSwapEnv(image_size=32) for _ in seeds]
        observations = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
        policy.reset(num_envs=len(envs), seed=first)
        done = np.zeros(len(envs), dtype=bool)
        stages = [SwapTask.for_seed(s) for s in seeds]
        hold = np.zeros((len(envs), 7), dtype=np.float32)
        hold[:, -1] = 1.0
        previous, chunk, executed, now_action, gap = None, None, None, hold, None
        for step in range(500):
            k = step % horizon
            if k == 0:
                batch = {key: np.stack([o[key] for o in observations]) for key in ("front", "wrist", "proprio")}
                chunk = policy.sample_chunk(batch, 0, executed=None if executed is None else np.stack(executed, 1))
                executed = []
            if delay == 0:
                action = chunk[:, k]
            elif k == 0:  # the new chunk is not ready at its own observation tick
                action = now_action = previous[:, horizon] if previous is not None else hold
            elif catch_up_ticks is None:
                action = chunk[:, k - 1]
            else:
                action = chunk[:, k].copy()
                if k == 1:  # what the chunk planned for its own observation tick, less what that tick ran
                    gap = chunk[:, 0, :6] - now_action[:, :6]
                if 0 < k <= catch_up_ticks:
                    action[:, :6] += gap / catch_up_ticks
            executed.append(action)
            if k == horizon - 1:
                previous = chunk
            for i, env in enumerate(envs):
                if not done[i]:
                    observations[i], _, done[i], _, _ = env.step(np.clip(action[i], env.action_space.low,
                                                                         env.action_space.high))
                    stages[i].watch(env.scene, (step + 1) * env.dt)
        for s, env, task, success in zip(seeds, envs, stages, done):
            outcome = task.outcome(env.scene)
            records.append({"seed": s, "success": bool(success), "stages_completed": outcome["stages_completed"]})
    successes = sum(r["success"] for r in records)
    return {"checkpoint": checkpoint, "delay": delay, "catch_up_ticks": catch_up_ticks, "episodes": len(records),
            "successes": successes, "success_rate": successes / len(records),
            "mean_stages": float(np.mean([r["stages_completed"] for r in records])), "per_episode": records}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="franka-swap", help="checkpoint directory or shipped name")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=10000, help="first episode seed")
    parser.add_argument("--delay", type=int, choices=(0, 1), default=1, help="ticks of control latency")
    parser.add_argument("--catch-up-ticks", type=int, default=None,
                        help="with --delay 1: trim the chunk's first action and rejoin its timeline over N ticks")
    parser.add_argument("--catch-up", action="store_true", help="as --catch-up-ticks 1 (the one-step jump)")
    parser.add_argument("--num-envs", type=int, default=10, help="envs in lock-step")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    if args.catch_up and args.catch_up_ticks is not None:
        parser.error("give either --catch-up or --catch-up-ticks, not both")
    catch_up_ticks = 1 if args.catch_up else args.catch_up_ticks
    if catch_up_ticks is not None and args.delay == 0:
        parser.error("--catch-up / --catch-up-ticks need --delay 1")
    if catch_up_ticks is not None and catch_up_ticks < 0:
        parser.error(f"--catch-up-ticks must be >= 0, got {catch_up_ticks}")
    torch.set_num_threads(1)
    result = run(args.checkpoint, args.episodes, args.seed, args.delay, catch_up_ticks, args.num_envs)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_episode"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
