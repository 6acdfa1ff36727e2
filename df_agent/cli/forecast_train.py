"""`df-agent forecast train`: train the time-series DF model with early stopping, then score the test set.

One seed writes a checkpoint directory at OUT (plus OUT/results.json with the test CRPS-sum and the training
record); several seeds (`--seed 0 1 2 3 4`) write OUT/seed_S/ each and OUT/results.json with
`crps_sum_mean` and `crps_sum_std` over the seeds. Seeds run one after another in this process
(`df_agent.forecasting.experiments.train_and_test`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from df_agent.forecasting.training import RECIPE_OPTIONS, RECIPES
from df_agent.provenance import command_of


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="exchange_rate_nips",
                        help="GluonTS dataset name or alias (exchange, solar, electricity, traffic, taxi, wikipedia)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <name>/ or gluonts_cache_<name>/ (default: $DF_AGENT_TIMESERIES_DIR, "
                             "the GluonTS cache, then ../shared/data/timeseries beside the repository)")
    parser.add_argument("--download", action="store_true",
                        help="let GluonTS download the dataset when it is found in no local folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory (one seed) or parent folder")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more training seeds")
    model = parser.add_argument_group("model (paper B.9: 4 GRU layers, 1 MLP, v-prediction, cosine schedule)")
    model.add_argument("--hidden-size", type=int, default=64, help="GRU latent size (paper: 1024 on a GPU)")
    model.add_argument("--num-gru-layers", type=int, default=4, help="stacked GRU layers of the latent")
    model.add_argument("--mlp-hidden-size", type=int, default=128, help="width of the denoiser MLP")
    model.add_argument("--series-embedding-dim", type=int, default=4, help="size of the per-series embedding")
    model.add_argument("--clean-token-probability", type=float, default=0.0,
                       help="training: chance a token is clean (k = 0), as the context is when forecasting")
    model.add_argument("--context-length", type=int, default=None, help="default: the prediction length")
    model.add_argument("--sampling-steps", type=int, default=50, help="DDIM steps per forecast token")
    model.add_argument("--token-transform", choices=("difference", "increments", "level"), default="difference",
                       help="tokens hold standardised step changes with level lags (default), step changes with "
                            "lagged changes (the differenced series only), or standardised levels (paper F.4)")
    train = parser.add_argument_group(
        "training (batch 32, epochs of 100 batches, patience 6 as the paper; the options below left unset take the "
        "--recipe's values)")
    train.add_argument("--recipe", choices=tuple(RECIPES), default="heldout",
                       help="heldout (default): validate on held-out windows at the end of the training range, EMA "
                            "weights, lr 1e-3 (exchange CRPS-sum 0.00500 ± 0.00044 over 5 seeds, docs/forecasting.md); "
                            "paper: the paper's protocol, in-sample validation windows, lr 3e-4, no EMA")
    train.add_argument("--batch-size", type=int, default=32, help="windows per update")
    train.add_argument("--learning-rate", type=float, default=None, help="heldout: 1e-3; paper: 3e-4")
    train.add_argument("--batches-per-epoch", type=int, default=100, help="updates per epoch")
    train.add_argument("--max-epochs", type=int, default=None, help="heldout: 60; paper: 100")
    train.add_argument("--patience", type=int, default=6,
                       help="early stopping: validations without improvement before stopping")
    train.add_argument("--val-samples", type=int, default=100, help="trajectories per validation window")
    train.add_argument("--val-sampling-steps", type=int, default=None,
                       help="DDIM steps for validation forecasts (heldout: 10; paper: --sampling-steps)")
    train.add_argument("--val-windows", type=int, default=None,
                       help="validation windows drawn from the training range (heldout: 40; paper: as many as the "
                            "test set)")
    train.add_argument("--val-holdout-steps", type=int, default=None,
                       help="validate on windows ending in the training series' last N steps and train on the "
                            "rest (heldout: 10 prediction lengths; paper: 0, validation windows overlap training)")
    train.add_argument("--validate-every", type=int, default=None,
                       help="epochs between validations, patience counts validations (heldout: 2; paper: 1)")
    train.add_argument("--ema-decay", type=float, default=None,
                       help="validate and keep an exponential moving average of the weights (heldout: 0.999; "
                            "paper: 0, off)")
    parser.add_argument("--num-samples", type=int, default=100, help="trajectories per test window")
    parser.add_argument("--no-test", action="store_true", help="skip the test-set evaluation after training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import torch

    from data.timeseries import load_dataset
    from df_agent.forecasting.experiments import ForecastRunSettings, train_and_test

    if args.threads:
        torch.set_num_threads(args.threads)
    if len(set(args.seed)) != len(args.seed):
        raise ValueError(f"--seed has repeated values: {args.seed}")
    dataset = load_dataset(args.dataset, args.data_dir, download=args.download)
    settings = ForecastRunSettings(
        out=args.out, seeds=tuple(args.seed), hidden_size=args.hidden_size, num_gru_layers=args.num_gru_layers,
        mlp_hidden_size=args.mlp_hidden_size, series_embedding_dim=args.series_embedding_dim,
        clean_token_probability=args.clean_token_probability, context_length=args.context_length,
        sampling_steps=args.sampling_steps, token_transform=args.token_transform, recipe=args.recipe,
        batch_size=args.batch_size, batches_per_epoch=args.batches_per_epoch, patience=args.patience,
        val_samples=args.val_samples, num_samples=args.num_samples, test=not args.no_test,
        progress=not args.no_progress, **{key: getattr(args, key) for key in RECIPE_OPTIONS})
    runs, summary = train_and_test(dataset, settings, command_of(args))
    for run_result in runs:
        print(f"seed {run_result['seed']}: test CRPS-sum {run_result.get('crps_sum', float('nan')):.5f} "
              f"(best epoch {run_result['best_epoch']}, {run_result['train_seconds']:.0f} s training)")
    if summary is not None and not args.no_test:
        print(f"{dataset.name}: CRPS-sum {summary['crps_sum_mean']:.5f} ± {summary['crps_sum_std']:.5f} "
              f"over {len(runs)} seeds")
    return 0
