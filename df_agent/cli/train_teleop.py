"""`df-agent train teleop --data demos.zarr`: train the DF imitation policy on teleoperation demonstrations.

The replay buffer is the one `df-agent data import-bags` writes (keys `front_image`, `wrist_image`, `ee_pose`,
`gripper_width`, `action`). Every episode becomes a sequence of tokens (camera images + proprioception + a
chunk of actions, see `df_agent.imitation.windows`); training draws whole episodes so the latent learns to
carry memory from the first frame, or windows of `--window-tokens` tokens for the memoryless baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


def _defaults():
    from df_agent.training import TrainConfig

    # Paper (robot): lr 5e-4, batch 64. Batch 16 whole episodes (~30 tokens each) fits a CPU.
    return TrainConfig(steps=3000, batch_size=16, lr=5e-4, warmup_steps=100, ema_decay=0.999,
                       checkpoint_every=500, log_every=50, lr_schedule="cosine", min_lr_ratio=0.1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from df_agent.training.cli_args import add_train_arguments

    parser.add_argument("--data", type=Path, required=True, help="replay buffer (zarr) of demonstrations")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="episodes held out for validation loss")
    parser.add_argument("--window-tokens", type=int, default=None,
                        help="train on random windows of this many tokens instead of whole episodes "
                             "(2 = the memoryless baseline: one token of context)")
    parser.add_argument("--image-size", type=int, default=16, help="token image size per camera (from 32x32)")
    parser.add_argument("--actions-per-token", type=int, default=10, help="actions bundled in a token (10 Hz)")
    parser.add_argument("--latent-dim", type=int, default=256, help="latent size of the RNN")
    parser.add_argument("--hidden-dim", type=int, default=256, help="MLP width")
    parser.add_argument("--conv-channels", type=int, default=16,
                        help="base channel width of the image encoder/decoder")
    parser.add_argument("--image-loss-weight", type=float, default=0.25,
                        help="loss weight of the image part of a token (actions weigh 1)")
    parser.add_argument("--no-proprio", action="store_true", help="tokens without proprioception (images only)")
    parser.add_argument("--teacher-forcing", action="store_true",
                        help="baseline: next-token diffusion trained with teacher forcing (clean history only)")
    add_train_arguments(parser, _defaults(), run_dir_default="runs/teleop")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from data.imitation_episodes import load_replay_buffer_episodes
    from data.replay_buffer import ReplayBuffer
    from df_agent.imitation import ImitationConfig, ImitationDFModel
    from df_agent.imitation.windows import DEFAULT_DATA_KEYS, TeleopTokenSource
    from df_agent.training import train
    from df_agent.training.cli_args import train_config_from_args

    train_config = train_config_from_args(args, _defaults())
    config = ImitationConfig(
        image_size=args.image_size, actions_per_token=args.actions_per_token, latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim, conv_channels=args.conv_channels, image_loss_weight=args.image_loss_weight,
        proprio_dim=0 if args.no_proprio else 8, extra={"data_keys": DEFAULT_DATA_KEYS},
        training_mode="teacher_forcing" if args.teacher_forcing else "diffusion_forcing",
    )
    buffer = ReplayBuffer.open(args.data, mode="r")
    train_ids, val_ids = buffer.train_val_split(args.val_fraction, seed=train_config.seed)
    if len(train_ids) == 0:
        raise ValueError(f"{args.data}: no training episodes left after the validation split")
    started = time.monotonic()
    tokens, actions, proprio = load_replay_buffer_episodes(args.data, config)
    log.info("tokenised %d episodes in %.1f s", len(tokens), time.monotonic() - started)

    torch.manual_seed(train_config.seed)
    model = ImitationDFModel(config)
    model.fit_normalizers(torch.from_numpy(np.concatenate([actions[i] for i in train_ids])),
                          torch.from_numpy(np.concatenate([proprio[i] for i in train_ids])) if proprio else None)
    description = {"data": str(args.data), "episodes": buffer.n_episodes, "steps": buffer.n_steps,
                   "train_episode_ids": [int(i) for i in train_ids], "val_episode_ids": [int(i) for i in val_ids]}
    source = TeleopTokenSource([tokens[i] for i in train_ids], window_tokens=args.window_tokens,
                               validation=[tokens[i] for i in val_ids], description=description)
    policy_defaults = {"memory": args.window_tokens is None}
    if args.teacher_forcing:
        policy_defaults["flag_corrupted"] = False  # it never saw a noisy history token: it can only take them clean
    if train_config.validate_every and not len(val_ids):
        raise ValueError("--validate-every needs validation episodes (--val-fraction > 0)")
    started = time.monotonic()
    result = train(model, source, train_config, args.run_dir, resume=args.resume,
                   metadata={"task": "franka_fruit_swap", "policy": policy_defaults})
    elapsed = time.monotonic() - started
    summary = {
        "final_checkpoint": str(result.final_checkpoint) if result.final_checkpoint else None,
        "steps_completed": result.steps_completed,
        "stopped_early": result.stopped_early,
        "train_seconds": round(elapsed, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_episodes": len(train_ids),
        "val_episodes": len(val_ids),
        "last_loss": result.losses[-1] if result.losses else None,
        "torch_threads": torch.get_num_threads(),
    }
    Path(args.run_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(args.run_dir) / "train_summary.json", with_provenance(summary, command_of(args)))
    print(json.dumps(summary, indent=2))
    return 0
