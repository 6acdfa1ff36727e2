"""`df-agent train maze2d --maze umaze`: train one Diffusion Forcing model per maze on its Minari dataset.

The model is the paper's maze2d model (FACTS.md: tokens of frame_stack 10 frames [o_{t+1}, a_t], latent started
from the current observation, K = 1000 linear schedule, x0-prediction, unweighted MSE) with a CPU-friendly
default recipe: the fused "fast" backbone and a narrower MLP. Normalisers are fitted on the dataset and saved in
the checkpoint. The final checkpoint (`RUN_DIR/final`, optionally copied to `--export`) records the maze, frame
stack, dataset id and the training compute in its config.json metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAZES = ("umaze", "medium", "large")


def _default_train_config():
    from df_agent.training import TrainConfig

    return TrainConfig(steps=20_000, batch_size=256, lr=5e-4, warmup_steps=100, lr_schedule="cosine",
                       min_lr_ratio=0.1, ema_decay=0.999, checkpoint_every=1000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from df_agent.training.cli_args import add_train_arguments

    parser.add_argument("--maze", required=True, choices=MAZES, help="which maze's dataset to train on")
    parser.add_argument("--dataset-id", default=None, help="Minari id (default: df-agent/maze2d-<maze>-v0)")
    model = parser.add_argument_group("model recipe")
    model.add_argument("--frame-stack", type=int, default=10, help="env steps per token (paper: 10)")
    model.add_argument("--window-tokens", type=int, default=30, help="tokens per training window")
    model.add_argument("--backbone", choices=("fast", "paper"), default="fast", help="RNN unit (fast: fused GRU)")
    model.add_argument("--latent-dim", type=int, default=128, help="latent size (paper: 128)")
    model.add_argument("--hidden-dim", type=int, default=256, help="MLP width (paper: 512, large: 1024)")
    model.add_argument("--mlp-layers", type=int, default=4, help="MLP layers (paper: 4)")
    model.add_argument("--context-noise-prob", type=float, default=0.1,
                       help="fraction of windows whose start observation is trained as noisy/missing (k > 0), so "
                            "noise flags at planning time mean something")
    model.add_argument("--position-encoding", choices=("none", "fourier"), default="none",
                       help="fourier: append Fourier features of every frame's (x, y) to the model's inputs, "
                            "so the wall map is learnt faster (see df_agent/backbones/encodings.py)")
    model.add_argument("--export", type=Path, default=None,
                       help="also write the final checkpoint here (e.g. df_agent/checkpoints/maze2d-umaze)")
    add_train_arguments(parser, _default_train_config())


class _WindowSource:
    """Maze2DWindows as a training BatchSource that describes itself in the checkpoint metadata."""

    def __init__(self, windows: Any, dataset_id: str, num_steps: int) -> None:
        self.windows, self.dataset_id, self.num_steps = windows, dataset_id, num_steps

    def sample_batch(self, batch_size: int, generator):
        return self.windows.sample_batch(batch_size, generator)

    def describe(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "dataset_steps": self.num_steps, "windows": len(self.windows),
                "window_tokens": self.windows.window_tokens, "frame_stack": self.windows.frame_stack}


def build_model(windows: Any, args: argparse.Namespace):
    """A DFModel for maze2d tokens with normalisers fitted on `windows`."""
    from df_agent.model import DFModel, DFModelConfig
    from planners.maze2d_tokens import token_spec

    config = DFModelConfig(
        token_dim=windows.token_dim, context_dim=windows.context_dim, latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim, mlp_layers=args.mlp_layers, backbone=args.backbone,
        context_noise_prob=args.context_noise_prob, position_encoding=args.position_encoding,
        token_spec=token_spec(args.frame_stack),
    )
    model = DFModel(config)
    token_norm, context_norm = windows.token_normalizer(), windows.context_normalizer()
    model.token_normalizer.set_stats(token_norm.shift, token_norm.scale)
    model.context_normalizer.set_stats(context_norm.shift, context_norm.scale)
    return model


def run(args: argparse.Namespace) -> int:
    from data.maze2d.dataset import load_maze2d_episodes
    from data.maze2d.windows import Maze2DWindows
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
    from df_agent.training import train
    from df_agent.training.cli_args import train_config_from_args

    if args.frame_stack < 1 or args.window_tokens < 1:
        raise ValueError(f"--frame-stack and --window-tokens must be >= 1, got {args.frame_stack}, "
                         f"{args.window_tokens}")
    dataset_id = args.dataset_id or f"df-agent/maze2d-{args.maze}-v0"
    episodes = load_maze2d_episodes(dataset_id)
    windows = Maze2DWindows.from_episodes(episodes, args.window_tokens, args.frame_stack)
    source = _WindowSource(windows, dataset_id, episodes.num_steps)
    model = build_model(windows, args)
    train_config = train_config_from_args(args, _default_train_config())
    parameters = sum(p.numel() for p in model.parameters())
    metadata = {"task": "maze2d", "maze": args.maze, "frame_stack": args.frame_stack, "dataset_id": dataset_id,
                "window_tokens": args.window_tokens}
    log.info("training a %d-parameter DF model on %s (%d windows)", parameters, dataset_id, len(windows))
    started = time.perf_counter()
    result = train(model, source, train_config, args.run_dir, resume=args.resume, metadata=metadata)
    wall = time.perf_counter() - started
    final = result.final_checkpoint
    if final is None:  # stopped by a signal: only a resumable checkpoint exists; leave it untouched
        log.warning("training stopped after %d steps without a final checkpoint; resume with --resume (latest: %s)",
                    result.steps_completed, result.last_checkpoint)
        print(json.dumps({"checkpoint": None, "resumable": str(result.last_checkpoint),
                          "steps": result.steps_completed}))
        return 1
    import torch

    # wall_time_s covers every invocation of a resumed run; this_invocation_s only this one.
    compute = {"wall_time_s": round(result.train_seconds, 3), "this_invocation_s": round(wall, 3),
               "resumed_from_step": result.start_step, "steps": result.steps_completed,
               "batch_size": train_config.batch_size,
               "device": train_config.device if train_config.device != "auto" else
               ("cuda" if torch.cuda.is_available() else "cpu"),
               "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "parameters": parameters, "precision": train_config.precision}
    # Record the compute in the shipped checkpoint itself (rewritten atomically with the same weights).
    stored = read_checkpoint_config(final)
    trained = load_checkpoint(final, config=stored)
    save_checkpoint(final, trained, metadata={**stored.get("metadata", {}), "compute": compute})
    if args.export is not None:
        save_checkpoint(args.export, trained, metadata={**stored.get("metadata", {}), "compute": compute})
    summary = {"checkpoint": str(final), "export": str(args.export) if args.export else None,
               "steps": result.steps_completed, "stopped_early": result.stopped_early, "parameters": parameters,
               "last_loss": result.losses[-1] if result.losses else None, "wall_time_s": round(wall, 3)}
    print(json.dumps(summary))
    return 0
