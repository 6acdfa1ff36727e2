"""`df-agent train maze2d --maze umaze`: train one Diffusion Forcing model per maze on its Minari dataset.

The model and its default recipe are described in `data/maze2d/training.py`; the final checkpoint
(`RUN_DIR/final`, optionally copied to `--export`) records the maze, frame stack, dataset id and the training
compute in its config.json metadata.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from data.maze2d.training import MAZES, default_train_config


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
    model.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                       help="fine-tune this checkpoint (directory or shipped name, e.g. maze2d-medium) instead of a "
                            "fresh model; its architecture and normalisers are kept and the model flags ignored")
    model.add_argument("--export", type=Path, default=None,
                       help="also write the final checkpoint here (e.g. df_agent/checkpoints/maze2d-umaze)")
    add_train_arguments(parser, default_train_config())


def run(args: argparse.Namespace) -> int:
    from data.maze2d.training import Maze2DModelRecipe, train_maze2d
    from df_agent.training.cli_args import train_config_from_args

    recipe = Maze2DModelRecipe(frame_stack=args.frame_stack, window_tokens=args.window_tokens, backbone=args.backbone,
                               latent_dim=args.latent_dim, hidden_dim=args.hidden_dim, mlp_layers=args.mlp_layers,
                               context_noise_prob=args.context_noise_prob, position_encoding=args.position_encoding)
    summary = train_maze2d(args.maze, recipe, train_config_from_args(args, default_train_config()), args.run_dir,
                           dataset_id=args.dataset_id, resume=args.resume, export=args.export,
                           init_from=args.init_from)
    print(json.dumps(summary))
    return 0 if summary["checkpoint"] is not None else 1
