"""`df-agent train video`: train the video head (Diffusion Forcing or a baseline) on a video episode store."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="video episode store (df-agent data video-maze)")
    parser.add_argument("--out", required=True, help="run directory (checkpoints, metrics.jsonl, final/)")
    parser.add_argument("--mode", default="diffusion_forcing",
                        choices=("diffusion_forcing", "teacher_forcing", "full_sequence"),
                        help="training objective: DF, or the teacher-forcing / causal full-sequence baselines")
    parser.add_argument("--preset", default="cpu32", choices=("cpu32", "gpu64", "tiny"),
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
    from df_agent.training import TrainConfig, train
    from df_agent.video.config import VideoModelConfig, gpu_64_config, tiny_config
    from df_agent.video.model import VideoDFModel

    overrides = {"training_mode": args.mode, "head_sees_token": args.head == "latent+token",
                 "clean_prefix_probability": args.clean_prefix_probability}
    if args.parameterization:
        overrides["parameterization"] = args.parameterization
    if args.training_frames:
        overrides["training_frames"] = args.training_frames
    builder = {"cpu32": VideoModelConfig, "gpu64": gpu_64_config, "tiny": tiny_config}[args.preset]
    config = builder(**overrides)
    source = load_window_source(args.data, config.training_frames, args.test_episodes, args.max_train_episodes)
    if source.description["resolution"] != config.resolution:
        raise ValueError(f"{args.data} holds {source.description['resolution']}px video but preset {args.preset!r} "
                         f"expects {config.resolution}px")
    model = VideoDFModel(config)
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
        ema_decay=args.ema_decay if args.ema_decay > 0 else None, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, device=args.device, precision=args.precision, seed=args.seed,
        progress=not args.no_progress, extra={"video_preset": args.preset},
        # A wall-time budget ends like a finished run: final/ plus a resumable checkpoint (checked at logged steps).
        time_limit_s=60 * args.max_minutes if args.max_minutes else None,
    )
    result = train(model, source, train_config, args.out, resume="auto" if args.resume else None,
                   metadata={"data": source.describe()})
    checkpoint = result.final_checkpoint or result.last_checkpoint
    if result.stopped_early:
        # final/ is written for a time limit only; an interrupted run leaves its resumable checkpoint.
        reason = "by --max-minutes" if result.final_checkpoint else "early (interrupted)"
        log.warning("stopped %s after %d of %d steps; model in %s", reason, result.steps_completed, args.steps,
                    checkpoint)
    summary = {"checkpoint": str(checkpoint), "steps": result.steps_completed, "stopped_early": result.stopped_early,
               "parameters": sum(p.numel() for p in model.parameters()),
               "last_loss": result.losses[-1] if result.losses else None}
    print(json.dumps(summary))
    return 0
