"""`df-agent train toy`: train a small DF model on random-phase sinusoids and score its samples.

The smallest real end-to-end job: data, Algorithm-1 training with EMA and checkpoints, Algorithm-2
sampling, and a likelihood-free quality score of trained vs untrained samples (`df_agent.toy.train_and_score`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/toy"), help="run directory (checkpoints, metrics)")
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per update")
    parser.add_argument("--backbone", choices=["paper", "fast"], default="fast",
                        help="RNN unit (fast: fused GRU; paper: the paper's MLP cell)")
    parser.add_argument("--width", type=int, default=64, help="latent and hidden width")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and sampling")
    parser.add_argument("--samples", type=int, default=256, help="sequences sampled for the score")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from df_agent.toy import ToyRunConfig, score_table, train_and_score

    report = train_and_score(ToyRunConfig(out=args.out, steps=args.steps, batch_size=args.batch_size,
                                          backbone=args.backbone, width=args.width, lr=args.lr, seed=args.seed,
                                          samples=args.samples, device=args.device))
    write_json_atomic(Path(args.out) / "toy_results.json", with_provenance(report, command_of(args)))
    print(score_table(report["scores"]))
    print(f"checkpoint: {report['checkpoint']}")
    return 0
