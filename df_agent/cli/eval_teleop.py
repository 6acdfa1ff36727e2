"""`df-agent eval teleop [--checkpoint DIR] --episodes N`: success rate of the DF imitation policy (by default the
shipped `franka-swap` checkpoint) on the simulated Franka fruit swap (FrankaFruitSwap-v0), clean or with
corrupted camera frames (paper 4.4).

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

DEFAULT_CHECKPOINT = "franka-swap"  # df_agent/checkpoints/franka-swap (MODEL_CARD.md)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                        help=f"df_imitation checkpoint: a directory or a shipped name (default: the shipped "
                             f"{DEFAULT_CHECKPOINT!r} policy)")
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
    parser.add_argument("--video", type=Path, default=None, metavar="PATH",
                        help="H.264 MP4 of the first episode (front | wrist camera, 10 fps; a GIF beside PATH "
                             "where no H.264 encoder is installed)")
    parser.add_argument("--video-size", type=int, default=240, help="pixels per camera in --video (8-480)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from df_agent.checkpoint import resolve_checkpoint
    from envs.franka_swap.evaluation import FrankaSwapRunner, VideoRecorder, summarize
    from policies.loading import load_policy

    args.checkpoint = resolve_checkpoint(args.checkpoint)
    if args.episodes < 1 or args.num_envs < 1 or args.max_steps < 1:
        raise ValueError("--episodes, --num-envs and --max-steps must be >= 1")
    if not 8 <= args.video_size <= 480:
        raise ValueError(f"--video-size must be in 8..480, got {args.video_size}")
    if args.offline_data is not None:
        return _run_offline(args)
    policy = load_policy(args.checkpoint, kind="df_imitation", memory=not args.memoryless,
                         flag_corrupted=args.flag_noisy, schedule=args.schedule, horizon_tokens=args.horizon_tokens,
                         sampling_steps=args.sampling_steps, seed=args.seed, corrupted_level=args.corrupted_level)
    started = time.monotonic()
    video = VideoRecorder(args.video, size=args.video_size) if args.video is not None else None
    runner = FrankaSwapRunner(corruption=args.corruption, num_envs=args.num_envs, max_steps=args.max_steps,
                              progress=not args.no_progress, recorders=(video,) if video else ())
    records = runner.run(policy, args.episodes, args.seed)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        **summarize(records),
        "seed": args.seed,
        "corruption": args.corruption,
        "flag_noisy": bool(args.flag_noisy),
        "memoryless": bool(args.memoryless),
        "policy": policy.describe(),
        "max_steps": args.max_steps,
        "wall_seconds": round(elapsed, 1),
        "torch_threads": __import__("torch").get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "video": str(video.path) if video is not None else None,
        "per_episode": records,
    }
    write_json_atomic(args.out, with_provenance(result, command_of(args)))
    print(f"success rate {result['success_rate']:.3f} ({result['successes']}/{len(records)})  "
          f"corruption={args.corruption} "
          f"flag_noisy={args.flag_noisy} memoryless={args.memoryless}  "
          f"mean stages {result['mean_stages_completed']:.2f}"
          f"  lifted {result['lifted_a_fruit_rate']:.2f}  {elapsed:.0f} s  -> {args.out}")
    if video is not None:
        print(f"video of episode 0 (seed {args.seed}) written to {video.path}")
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
