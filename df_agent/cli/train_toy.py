"""`df-agent train toy`: train a small DF model on random-phase sinusoids and score its samples.

The smallest real end-to-end job: data, Algorithm-1 training with EMA and checkpoints, Algorithm-2
sampling, and a likelihood-free quality score of trained vs untrained samples.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


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
    import torch

    from df_agent.checkpoint import load_checkpoint
    from df_agent.model import DFModel
    from df_agent.toy import SinusoidTask, fit_normalizers, sample_sequences
    from df_agent.training import TensorBatchSource, TrainConfig, train

    task = SinusoidTask()
    data = task.generate(20_000, torch.Generator().manual_seed(args.seed))
    torch.manual_seed(args.seed)
    model = DFModel(task.model_config(args.backbone, args.width))
    fit_normalizers(model, data)
    untrained = DFModel(task.model_config(args.backbone, args.width))
    fit_normalizers(untrained, data)

    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=min(50, args.steps),
                         ema_decay=0.99, seed=args.seed, device=args.device, log_every=max(1, args.steps // 10),
                         checkpoint_every=0)
    result = train(model, TensorBatchSource(data), config, args.out,
                   metadata={"task": "sinusoid", "frame_stack": task.frame_stack})
    trained = load_checkpoint(result.final_checkpoint)

    evaluation = task.generate(args.samples, torch.Generator().manual_seed(args.seed + 1))
    scores = {}
    context = evaluation["context"]
    for name, candidate in (("trained", trained), ("untrained", untrained)):
        samples = sample_sequences(candidate, context, task.num_tokens,
                                   generator=torch.Generator().manual_seed(args.seed + 2))
        scores[name] = _score(task, samples, context)
    scores["data"] = _score(task, evaluation["tokens"], context)
    report = {"checkpoint": str(result.final_checkpoint), "steps": args.steps, "scores": scores}
    write_json_atomic(Path(args.out) / "toy_results.json", with_provenance(report, command_of(args)))
    print(f"{'':10s} {'residual':>9s} {'amplitude':>9s} {'context':>9s}   (errors, lower is better)")
    for name, row in scores.items():
        print(f"{name:10s} {row['residual']:9.4f} {row['amplitude']:9.4f} {row['context']:9.4f}")
    print(f"checkpoint: {result.final_checkpoint}")
    return 0


def _score(task, samples, context) -> dict[str, float]:
    return {
        "residual": float(task.sinusoid_residual(samples).mean()),
        "amplitude": float(task.amplitude_error(samples).mean()),
        "context": float(task.context_error(samples, context).mean()),
    }
