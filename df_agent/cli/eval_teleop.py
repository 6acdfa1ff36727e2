"""`df-agent eval teleop --checkpoint DIR --episodes N`: success rate of the DF imitation policy on the simulated
Franka fruit swap (FrankaFruitSwap-v0), clean or with corrupted camera frames (paper 4.4).

Episode i starts from `reset(seed=seed + i)` (the initial layout and fruit jitter follow from it) and runs until
the swap succeeds or `--max-steps` env steps (500 = the registered limit, 50 s) pass. Environments run in
lock-step batches of `--num-envs` so the policy samples for several at once.

Variants on one checkpoint: corrupted frames flagged as noisy (k > 0, the default and `--flag-noisy`) or
treated as clean (`--treat-corrupted-as-clean`), and `--memoryless` (the latent restarts every chunk).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="df_imitation checkpoint directory")
    parser.add_argument("--episodes", type=int, default=50, help="number of seeded episodes")
    parser.add_argument("--seed", type=int, default=10_000, help="episode i uses reset(seed=seed + i)")
    parser.add_argument("--corruption", choices=("none", "distractor", "occlusion"), default="none",
                        help="visual corruption of the camera frames in random windows: distractor = a drifting box, "
                        "occlusion = three quarters of one camera covered")
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument("--flag-noisy", dest="flag_noisy", action="store_true", default=True,
                       help="tell the policy which frames are corrupted (fed at level k > 0; the default)")
    flags.add_argument("--treat-corrupted-as-clean", dest="flag_noisy", action="store_false",
                       help="baseline: feed corrupted frames as clean (level 0)")
    parser.add_argument("--corrupted-level", type=int, default=None, help="level of a flagged frame (default K/2)")
    parser.add_argument("--memoryless", action="store_true", help="baseline: restart the latent every chunk")
    parser.add_argument("--schedule", choices=("autoregressive", "pyramid"), default="autoregressive",
                        help="scheduling matrix over the planned action chunk")
    parser.add_argument("--horizon-tokens", type=int, default=1, help="tokens sampled per chunk boundary")
    parser.add_argument("--sampling-steps", type=int, default=25, help="DDIM steps per token")
    parser.add_argument("--num-envs", type=int, default=5, help="environments stepped in lock-step")
    parser.add_argument("--max-steps", type=int, default=500, help="env steps per episode (10 Hz)")
    parser.add_argument("--offline-data", type=Path, default=None, metavar="ZARR",
                        help="instead of rollouts: next-chunk prediction error on the checkpoint's validation "
                             "episodes of this replay buffer, with and without memory")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from policies.loading import load_policy

    if args.episodes < 1 or args.num_envs < 1 or args.max_steps < 1:
        raise ValueError("--episodes, --num-envs and --max-steps must be >= 1")
    if args.offline_data is not None:
        return _run_offline(args)
    policy = load_policy(args.checkpoint, kind="df_imitation", memory=not args.memoryless,
                         flag_corrupted=args.flag_noisy, schedule=args.schedule, horizon_tokens=args.horizon_tokens,
                         sampling_steps=args.sampling_steps, seed=args.seed, corrupted_level=args.corrupted_level)
    started = time.monotonic()
    records = evaluate(policy, args.episodes, args.seed, args.corruption, args.num_envs, args.max_steps,
                       progress=not args.no_progress)
    elapsed = time.monotonic() - started
    successes = sum(r["success"] for r in records)
    result: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "success_rate": successes / len(records),
        "successes": successes,
        "mean_stages_completed": sum(r["stages_completed"] for r in records) / len(records),
        "lifted_a_fruit_rate": sum(r["lifted_a_fruit"] for r in records) / len(records),
        "episodes": len(records),
        "seed": args.seed,
        "corruption": args.corruption,
        "flag_noisy": bool(args.flag_noisy),
        "memoryless": bool(args.memoryless),
        "policy": policy.describe(),
        "max_steps": args.max_steps,
        "wall_seconds": round(elapsed, 1),
        "torch_threads": __import__("torch").get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "per_episode": records,
    }
    write_json_atomic(args.out, with_provenance(result, command_of(args)))
    print(f"success rate {result['success_rate']:.3f} ({successes}/{len(records)})  corruption={args.corruption} "
          f"flag_noisy={args.flag_noisy} memoryless={args.memoryless}  "
          f"mean stages {result['mean_stages_completed']:.2f}"
          f"  lifted {result['lifted_a_fruit_rate']:.2f}  {elapsed:.0f} s  -> {args.out}")
    return 0


def _run_offline(args: argparse.Namespace) -> int:
    from data.imitation_episodes import load_replay_buffer_episodes
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config
    from df_agent.imitation.offline import chunk_prediction_error

    checkpoint_config = read_checkpoint_config(args.checkpoint)
    if checkpoint_config["model_type"] != "df_imitation":
        raise ValueError(f"{args.checkpoint}: model_type is {checkpoint_config['model_type']!r}, "
                         "expected 'df_imitation'")
    model = load_checkpoint(args.checkpoint, config=checkpoint_config)
    data = checkpoint_config.get("metadata", {}).get("data", {})
    episode_ids = data.get("val_episode_ids")
    if not episode_ids:
        raise ValueError(f"{args.checkpoint}: its metadata names no validation episodes (data.val_episode_ids)")
    episodes, _, _ = load_replay_buffer_episodes(args.offline_data, model.config, episodes=episode_ids)
    result = {"checkpoint": str(args.checkpoint), "data": str(args.offline_data), "episode_ids": episode_ids,
              "with_memory": chunk_prediction_error(model, episodes, memory=True, sampling_steps=args.sampling_steps,
                                                    seed=args.seed),
              "memoryless": chunk_prediction_error(model, episodes, memory=False,
                                                   sampling_steps=args.sampling_steps, seed=args.seed)}
    write_json_atomic(args.out, with_provenance(result, command_of(args)))
    for name in ("with_memory", "memoryless"):
        row = result[name]
        print(f"{name:12s} next-chunk action MSE (normalised) {row['action_mse']:.4f}  "
              f"gripper agreement {row['gripper_agreement']:.3f}  over {row['tokens']} tokens")
    return 0


def evaluate(policy, episodes: int, seed: int, corruption: str, num_envs: int, max_steps: int,
             progress: bool = False) -> list[dict[str, Any]]:
    """Run `episodes` seeded episodes of FrankaFruitSwap-v0 with `policy`; one record per episode."""
    import numpy as np
    from tqdm import tqdm

    from envs.franka_swap.env import FrankaFruitSwapEnv

    envs = [FrankaFruitSwapEnv(image_size=32, corruption=corruption) for _ in range(min(num_envs, episodes))]
    records: list[dict[str, Any]] = []
    bar = tqdm(total=episodes, desc="episodes", unit="ep", disable=not progress)
    try:
        for first in range(0, episodes, len(envs)):
            seeds = [seed + i for i in range(first, min(episodes, first + len(envs)))]
            active = envs[: len(seeds)]
            observations = [env.reset(seed=s)[0] for env, s in zip(active, seeds)]
            layouts = [dict(env.initial_layout) for env in active]
            policy.reset(num_envs=len(seeds), seed=seeds[0])
            done = [False] * len(seeds)
            stages = [0] * len(seeds)
            lifted = [False] * len(seeds)
            success = [False] * len(seeds)
            steps = [0] * len(seeds)
            corrupted = [0] * len(seeds)
            for _ in range(max_steps):
                batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
                actions = policy.act(batch)
                for i, env in enumerate(active):
                    if done[i]:
                        continue
                    corrupted[i] += int(np.asarray(observations[i]["corrupted"]).any())
                    observations[i], _, terminated, truncated, info = env.step(actions[i])
                    steps[i] += 1
                    stages[i] = max(stages[i], _stages_done(layouts[i], env.current_layout()))
                    lifted[i] = lifted[i] or _fruit_lifted(env)
                    if terminated or truncated:
                        done[i], success[i] = True, bool(info["is_success"])
                if all(done):
                    break
            for i, env in enumerate(active):
                records.append({"seed": seeds[i], "success": success[i], "steps": steps[i],
                                "initial_layout": layouts[i], "final_layout": env.current_layout(),
                                "stages_completed": 3 if success[i] else stages[i], "lifted_a_fruit": lifted[i],
                                "corrupted_frames": corrupted[i]})
            bar.update(len(seeds))
            bar.set_postfix(success=f"{sum(r['success'] for r in records)}/{len(records)}")
    finally:
        bar.close()
        for env in envs:
            env.close()
    return records


def _stages_done(initial: dict[str, str], layout: dict[str, str | None]) -> int:
    """Moves of the swap through C done so far (0-2; 3 = success): partial progress, and a memory probe,
    since after move 1 the right next move depends on the initial layout."""
    from envs.franka_swap.teleop import swap_moves

    (first, _, _), (second, _, _), _ = swap_moves(initial)
    if layout[first] == "C" and layout[second] == "A":
        return 2
    if layout[first] == "C" and layout[second] == initial[second]:
        return 1
    return 0


def _fruit_lifted(env) -> bool:
    from envs.franka_swap.scene import FRUIT_NAMES, FRUIT_RADIUS

    return any(env.scene.fruit_position(f)[2] > FRUIT_RADIUS[f] + 0.03 for f in FRUIT_NAMES)
