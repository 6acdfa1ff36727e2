"""`df-agent forecast eval`: score forecasting checkpoints on a dataset's test windows (CRPS-sum).

Writes `dataset`, `crps_sum` (our implementation), `crps_sum_gluonts` (the same forecasts through GluonTS's
MultivariateEvaluator) and `num_samples`; with several checkpoints (e.g. one per seed) also `crps_sum_mean`
and `crps_sum_std`, and `crps_sum` is then the mean (`df_agent.forecasting.experiments.score_checkpoints`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from df_agent.cli.forecast_train import add_data_arguments
from df_agent.provenance import command_of, with_provenance


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


def run(args: argparse.Namespace) -> int:
    import torch

    from data.timeseries import DatasetCatalog
    from df_agent.forecasting.experiments import score_checkpoints
    from df_agent.forecasting.io import expand_checkpoints, write_results_json

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = score_checkpoints(
        expand_checkpoints(args.checkpoint),
        DatasetCatalog(args.data_dir, download=args.download),
        dataset_name=args.dataset,
        num_samples=args.num_samples, seed=args.seed, sampling_steps=args.sampling_steps, ddim_eta=args.ddim_eta)
    write_results_json(args.out, with_provenance(summary, command_of(args)))
    runs = summary["runs"]
    for run_result in runs:
        print(f"{run_result['checkpoint']}: CRPS-sum {run_result['crps_sum']:.5f} "
              f"(GluonTS evaluator {run_result['crps_sum_gluonts']:.5f})")
    if len(runs) > 1:
        print(f"{summary['dataset']}: CRPS-sum {summary['crps_sum_mean']:.5f} ± {summary['crps_sum_std']:.5f} "
              f"over {len(runs)} checkpoints")
    return 0
