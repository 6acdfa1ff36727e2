"""`df-agent eval video`: long rollouts of the video head and its baselines, scored within and far past the
training length; writes results JSON, a rollout strip (PNG) and a side-by-side animation (GIF/MP4).
The job itself is `df_agent.video.comparison.compare_video_methods`."""

from __future__ import annotations

import argparse
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="Diffusion Forcing video checkpoint directory")
    parser.add_argument("--teacher-forcing", metavar="DIR", help="checkpoint of the teacher-forcing baseline")
    parser.add_argument("--full-sequence", metavar="DIR", help="checkpoint of the causal full-sequence baseline")
    parser.add_argument("--data", help="video episode store (default: the one recorded in the checkpoint)")
    parser.add_argument("--out", required=True, help="results JSON file")
    parser.add_argument("--media-dir", help="where strips and animations go (default: next to --out)")
    parser.add_argument("--rollouts", type=int, default=4, help="held-out episodes to roll out from")
    parser.add_argument("--context-frames", type=int, default=8, help="ground-truth frames given to the model")
    parser.add_argument("--rollout-multiple", type=float, default=10.0, help="rollout length / training length")
    parser.add_argument("--sampling-steps", type=int, default=20, help="DDIM steps per token (paper: 100)")
    parser.add_argument("--stabilization-step", type=int, default=1,
                        help="DDIM step index whose noise level labels re-fed frames (0 = no stabilisation)")
    parser.add_argument("--reference-frames", type=int, default=3000, help="real frames defining the data statistics")
    parser.add_argument("--encoder-dir", help="feature-encoder checkpoint (trained and saved here if missing)")
    parser.add_argument("--encoder-steps", type=int, default=400,
                        help="training updates of the frame encoder behind the feature Fréchet distance")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rollouts' sampling noise")


def run(args: argparse.Namespace) -> int:
    from data.video_maze.store import VideoEpisodes
    from df_agent.video.comparison import ComparisonSettings, compare_video_methods, results_table

    out = Path(args.out)
    settings = ComparisonSettings(
        checkpoint=args.checkpoint, out=out, teacher_forcing=args.teacher_forcing, full_sequence=args.full_sequence,
        data=args.data, media_dir=Path(args.media_dir) if args.media_dir else None, rollouts=args.rollouts,
        context_frames=args.context_frames, rollout_multiple=args.rollout_multiple,
        sampling_steps=args.sampling_steps, stabilization_step=args.stabilization_step,
        reference_frames=args.reference_frames, encoder_dir=Path(args.encoder_dir) if args.encoder_dir else None,
        encoder_steps=args.encoder_steps, seed=args.seed)
    results = compare_video_methods(settings, VideoEpisodes)
    write_json_atomic(out, with_provenance(results, command_of(args)))
    print(results_table(results))
    print(f"results: {out}")
    return 0
