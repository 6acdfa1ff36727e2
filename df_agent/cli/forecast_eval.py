"""`df-agent forecast eval`: score forecasting checkpoints on a dataset's test windows (CRPS-sum).

Writes `dataset`, `crps_sum` (our implementation), `crps_sum_gluonts` (the same forecasts through GluonTS's
MultivariateEvaluator) and `num_samples`; with several checkpoints (e.g. one per seed) also `crps_sum_mean`
and `crps_sum_std`, and `crps_sum` is then the mean.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from df_agent.cli.forecast_train import add_data_arguments
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.set_defaults(dataset=None)
    parser.add_argument("--checkpoint", required=True, type=Path, nargs="+",
                        help="checkpoint directory (several: one per seed; a folder of seed_*/ also works)")
    parser.add_argument("--out", required=True, type=Path, help="results JSON file")
    parser.add_argument("--num-samples", type=int, default=100, help="sampled trajectories per test window")
    parser.add_argument("--sampling-steps", type=int, default=None, help="DDIM steps (default: the checkpoint's)")
    parser.add_argument("--ddim-eta", type=float, default=None,
                        help="DDIM eta for sampling (0 deterministic DDIM, 1 DDPM-like; default: the checkpoint's)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def expand_checkpoints(paths: list[Path]) -> list[Path]:
    """A folder without config.json but with seed_*/ checkpoints stands for all of them."""
    expanded: list[Path] = []
    for path in paths:
        seeds = sorted(path.glob("seed_*/config.json")) if not (path / "config.json").exists() else []
        expanded += [seed.parent for seed in seeds] if seeds else [path]
    return expanded


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from data.timeseries import canonical_name, load_dataset
    from df_agent.forecasting.evaluation import check_compatible, evaluate_test
    from df_agent.forecasting.io import load_forecaster, write_results_json
    from df_agent.forecasting.windows import task_from_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}")
    checkpoints = expand_checkpoints(args.checkpoint)
    loaded = [(path, *load_forecaster(path)) for path in checkpoints]
    trained_on = {meta.get("dataset") for _, _, meta in loaded} - {None}
    name = canonical_name(args.dataset) if args.dataset else (sorted(trained_on)[0] if len(trained_on) == 1 else None)
    if name is None:
        raise ValueError("--dataset is required: the checkpoints do not record one common training dataset "
                         f"({sorted(trained_on) or 'none recorded'})")
    if trained_on and trained_on != {name}:
        log.warning("evaluating on %s checkpoints trained on %s", name, ", ".join(sorted(trained_on)))
    dataset = load_dataset(name, args.data_dir, download=args.download)
    runs = []
    for path, model, meta in loaded:
        task = task_from_dataset(dataset, context_length=model.config.context_length,
                                 lags=model.config.level_lags)
        check_compatible(model, task, dataset.name)
        if args.ddim_eta is not None:
            if args.ddim_eta < 0:
                raise ValueError(f"--ddim-eta must be >= 0, got {args.ddim_eta}")
            model.config.ddim_eta = args.ddim_eta
        result = {"checkpoint": str(path), "train_seed": meta.get("seed"), "ddim_eta": model.config.ddim_eta}
        result |= evaluate_test(model, task, args.num_samples, seed=args.seed, sampling_steps=args.sampling_steps)
        log.info("%s: CRPS-sum %.5f (GluonTS %.5f)", path, result["crps_sum"], result["crps_sum_gluonts"])
        runs.append(result)
    scores = np.asarray([run["crps_sum"] for run in runs])
    summary = {
        "dataset": dataset.name,
        "crps_sum": float(scores.mean()),
        "num_samples": args.num_samples,
        "num_checkpoints": len(runs),
        "runs": runs,
    }
    if len(runs) > 1:
        summary |= {"crps_sum_mean": float(scores.mean()), "crps_sum_std": float(scores.std(ddof=0))}
    else:
        summary["crps_sum_gluonts"] = runs[0]["crps_sum_gluonts"]
    write_results_json(args.out, with_provenance(summary, command_of(args)))
    for run_result in runs:
        print(f"{run_result['checkpoint']}: CRPS-sum {run_result['crps_sum']:.5f} "
              f"(GluonTS evaluator {run_result['crps_sum_gluonts']:.5f})")
    if len(runs) > 1:
        print(f"{dataset.name}: CRPS-sum {summary['crps_sum_mean']:.5f} ± {summary['crps_sum_std']:.5f} "
              f"over {len(runs)} checkpoints")
    return 0
