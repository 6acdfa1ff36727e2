"""`df-agent train video`: train the video head (Diffusion Forcing or a baseline) on a video episode store."""

from __future__ import annotations

import argparse
import json

from df_agent.video.training import MODES, PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="video episode store (df-agent data video-maze)")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, final/)")
    parser.add_argument("--mode", default="diffusion_forcing", choices=MODES,
                        help="training objective: DF, or the teacher-forcing / causal full-sequence baselines")
    parser.add_argument("--preset", default="cpu32", choices=tuple(PRESETS),
                        help="model size: cpu32 (32x32, 0.95M params), gpu64 (paper-sized 64x64), tiny (smoke tests)")
    parser.add_argument("--head", default="latent+token", choices=("latent+token", "latent"),
                        help="what the observation head reads: z_t and the noisy token (default), or z_t alone "
                             "(the paper's B.2 head)")
    parser.add_argument("--parameterization", choices=("v", "x0", "eps"),
                        help="what the network predicts (default: the preset's: x0 for cpu32 and tiny, v for gpu64 "
                             "as in the paper's video model)")
    parser.add_argument("--clean-prefix-probability", type=float, default=0.0,
                        help="diffusion_forcing: fraction of windows trained with a clean prefix of random length "
                             "(0 = independent levels only, as in the paper)")
    parser.add_argument("--training-frames", type=int, help="frames per training window (default: preset's)")
    parser.add_argument("--steps", type=int, default=2000, help="optimizer updates")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per update")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak AdamW learning rate")
    parser.add_argument("--warmup-steps", type=int, default=100, help="linear learning-rate warm-up updates")
    parser.add_argument("--ema-decay", type=float, default=0.995, help="EMA of the weights (<= 0 disables)")
    parser.add_argument("--test-episodes", type=int, default=16, help="held-out episodes at the end of the store")
    parser.add_argument("--max-train-episodes", type=int, help="use at most this many training episodes")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="resumable checkpoint period in updates")
    parser.add_argument("--log-every", type=int, default=20, help="log period in updates")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="autocast precision (CUDA only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of all training randomness")
    parser.add_argument("--max-minutes", type=float,
                        help="stop after this much wall time, writing final/ and a resumable checkpoint")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from data.video_maze.windows import load_window_source
    from df_agent.video.training import VideoTrainSettings, train_video_model

    settings = VideoTrainSettings(
        data=args.data, out=args.out, mode=args.mode, preset=args.preset, head_sees_token=args.head == "latent+token",
        parameterization=args.parameterization, clean_prefix_probability=args.clean_prefix_probability,
        training_frames=args.training_frames, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, ema_decay=args.ema_decay, test_episodes=args.test_episodes,
        max_train_episodes=args.max_train_episodes, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        device=args.device, precision=args.precision, seed=args.seed, max_minutes=args.max_minutes,
        resume=args.resume, progress=not args.no_progress)
    print(json.dumps(train_video_model(settings, load_window_source)))
    return 0
