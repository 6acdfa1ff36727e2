"""`df-agent eval video`: long rollouts of the video head and its baselines, scored within and far past the
training length; writes results JSON, a rollout strip (PNG) and a side-by-side animation (GIF/MP4)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


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


def _load_video_model(path: str):
    import df_agent.video.model  # noqa: F401  (registers the model type)
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config

    config = read_checkpoint_config(path)
    if config["model_type"] != "video_df":
        raise ValueError(f"{path} holds a {config['model_type']!r} model, not a video model (video_df)")
    return load_checkpoint(path, config=config), config.get("metadata", {})


def run(args: argparse.Namespace) -> int:
    from df_agent.optional import require

    require("cv2", "imageio", extra="video")  # rollout strips and animations
    import numpy as np
    import torch

    from data.video_maze.store import VideoEpisodes
    from data.video_maze.windows import split_episodes
    from df_agent.video.encoder import encode_frames, load_or_train_encoder
    from df_agent.video.evaluate import (
        METHODS,
        EvalSettings,
        real_data_floor,
        rollout,
        score_rollouts,
        settings_record,
    )
    from df_agent.video.visualize import save_animation, save_strip

    torch.manual_seed(args.seed)
    model, metadata = _load_video_model(args.checkpoint)
    models = {model.config.training_mode: model}
    for mode, path in (("teacher_forcing", args.teacher_forcing), ("full_sequence", args.full_sequence)):
        if path:
            other, _ = _load_video_model(path)
            if other.config.training_mode != mode:
                raise ValueError(f"{path} was trained as {other.config.training_mode!r}, not {mode!r}")
            models[mode] = other
    data_info = metadata.get("data", {})
    data_path = args.data or data_info.get("dataset")
    if not data_path:
        raise ValueError("no --data given and the checkpoint records no dataset")
    store = VideoEpisodes(data_path)
    if store.resolution != model.config.resolution:
        raise ValueError(f"{data_path} holds {store.resolution}px video, the model expects {model.config.resolution}px")
    test_ids = data_info.get("test_episodes") or split_episodes(store.num_episodes, 16)[1].tolist()
    train_ids = [i for i in range(store.num_episodes) if i not in set(test_ids)]
    if len(test_ids) < args.rollouts:
        raise ValueError(f"only {len(test_ids)} held-out episodes for {args.rollouts} rollouts")

    training_frames = model.config.training_frames
    settings = EvalSettings(context_frames=args.context_frames, rollout_multiple=args.rollout_multiple,
                            sampling_steps=args.sampling_steps, stabilization_step=args.stabilization_step,
                            seed=args.seed)
    total_frames = settings.rollout_frames(training_frames, model.config.frame_stack)
    episodes = [store.episode(int(i), keys=("video",))["video"] for i in test_ids[: args.rollouts]]
    shortest = min(len(e) for e in episodes)
    if shortest < training_frames:
        raise ValueError(f"held-out episodes have {shortest} frames, fewer than the training length {training_frames}")
    ground_truth = np.stack([e[:shortest] for e in episodes])
    context = torch.from_numpy(ground_truth[:, : args.context_frames].copy())

    rng = np.random.default_rng(args.seed)
    train_video, _ = store.load("video", train_ids[: max(1, args.reference_frames // 100)])
    reference = train_video[rng.choice(len(train_video), min(args.reference_frames, len(train_video)), replace=False)]
    test_video, _ = store.load("video", test_ids)
    # As many real held-out frames as a method contributes far frames, so the floor has the same sample-size bias.
    far_count = args.rollouts * (total_frames - total_frames // 2)
    test_frames = test_video[rng.choice(len(test_video), min(far_count, len(test_video)), replace=False)]
    out = Path(args.out)
    encoder_dir = Path(args.encoder_dir) if args.encoder_dir else out.parent / "video_feature_encoder"
    encoder = load_or_train_encoder(encoder_dir, reference, steps=args.encoder_steps)

    def features(frames: np.ndarray) -> np.ndarray:
        return encode_frames(encoder, frames)

    rollouts, timings = {}, {}
    for method, (mode, _) in METHODS.items():
        if mode not in models:
            log.info("skipping %s: no %s checkpoint given", method, mode)
            continue
        start = time.perf_counter()
        rollouts[method] = rollout(method, models[mode], context, total_frames, settings)
        timings[method] = time.perf_counter() - start
        log.info("%s: %d frames x %d rollouts in %.1f s", method, total_frames, len(context), timings[method])
    scores = score_rollouts(rollouts, ground_truth, reference, training_frames, args.context_frames, features)
    results = {
        "training_length": training_frames,
        "rollout_length": total_frames,
        "context_frames": args.context_frames,
        "rollouts": args.rollouts,
        "settings": settings_record(settings, model.num_levels),
        "psnr_within_horizon": {m: s["psnr_within_horizon"] for m, s in scores.items()},
        "ssim_within_horizon": {m: s["ssim_within_horizon"] for m, s in scores.items()},
        "stability": {m: {k: v for k, v in s.items() if k not in ("psnr_within_horizon", "ssim_within_horizon")}
                      for m, s in scores.items()},
        "real_data_floor": real_data_floor(test_frames, reference, features),
        "rollout_seconds": timings,
        "checkpoints": {"diffusion_forcing": args.checkpoint, "teacher_forcing": args.teacher_forcing,
                        "full_sequence": args.full_sequence},
        "data": str(data_path),
        "test_episodes": [int(i) for i in test_ids[: args.rollouts]],
    }
    media = Path(args.media_dir) if args.media_dir else out.parent / f"{out.stem}_media"
    rows = {"ground truth": ground_truth[0], **{m: v[0] for m, v in rollouts.items()}}
    marks = sorted({*range(0, training_frames + 1, max(1, training_frames // 4)),
                    *np.linspace(training_frames, total_frames - 1, 9).astype(int).tolist()})
    results["media"] = [str(save_strip(media / "rollout_strip.png", rows, marks, args.context_frames))]
    results["media"] += [str(p) for p in save_animation(media / "rollouts", rows, every=2)]
    write_json_atomic(out, with_provenance(results, command_of(args)))
    table = ["method                          psnr   ssim   drift  statFD  featFD"]
    for method, entry in scores.items():
        table.append(f"{method:30s} {entry['psnr_within_horizon']:6.2f} {entry['ssim_within_horizon']:6.3f} "
                     f"{entry['stat_drift_far']:6.2f} {entry['stat_frechet_far']:7.3f} "
                     f"{entry.get('feature_frechet_far', float('nan')):7.2f}")
    floor = results["real_data_floor"]
    table.append(f"{'real held-out frames':30s} {'':6s} {'':6s} {floor['stat_drift_far']:6.2f} "
                 f"{floor['stat_frechet_far']:7.3f} {floor.get('feature_frechet_far', float('nan')):7.2f}")
    print("\n".join(table))
    print(f"results: {out}")
    return 0
