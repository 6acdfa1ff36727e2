"""`df-agent forecast train`: train the time-series DF model with early stopping, then score the test set.

One seed writes a checkpoint directory at OUT (plus OUT/results.json with the test CRPS-sum and the training
record); several seeds (`--seed 0 1 2 3 4`) write OUT/seed_S/ each and OUT/results.json with
`crps_sum_mean` and `crps_sum_std` over the seeds. Seeds run one after another in this process.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path

from df_agent.forecasting.training import RECIPES
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


def resolve_recipe(args: argparse.Namespace, prediction_length: int) -> dict[str, float | int | None]:
    """The training settings: each option given on the command line, else the recipe's value."""
    recipe = RECIPES[args.recipe]
    settings = {}
    for key in ("learning_rate", "max_epochs", "val_sampling_steps", "val_windows", "validate_every", "ema_decay"):
        given = getattr(args, key)
        settings[key] = recipe[key] if given is None else given
    settings["val_holdout_steps"] = (int(recipe["val_holdout_prediction_lengths"]) * prediction_length
                                     if args.val_holdout_steps is None else args.val_holdout_steps)
    return settings


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
    import numpy as np
    import torch

    from data.timeseries import load_dataset
    from df_agent.forecasting.covariates import lags_for_frequency, num_time_features
    from df_agent.forecasting.evaluation import evaluate_test
    from df_agent.forecasting.io import save_forecaster, write_results_json
    from df_agent.forecasting.model import ForecastDF, ForecastDFConfig
    from df_agent.forecasting.training import TrainingConfig, train_forecaster
    from df_agent.forecasting.windows import task_from_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    if len(set(args.seed)) != len(args.seed):
        raise ValueError(f"--seed has repeated values: {args.seed}")
    dataset = load_dataset(args.dataset, args.data_dir, download=args.download)
    covariate_lags = lags_for_frequency(dataset.freq)
    log.info("%s: %d series, %d training steps, %d test windows, prediction length %d, lags %s",
             dataset.name, dataset.target_dim, len(dataset.train), len(dataset.test), dataset.prediction_length,
             covariate_lags)
    settings = resolve_recipe(args, dataset.prediction_length)
    log.info("recipe %s: %s", args.recipe, settings)
    runs = []
    for seed in args.seed:
        out_dir = args.out if len(args.seed) == 1 else args.out / f"seed_{seed}"
        torch.manual_seed(seed)
        model = ForecastDF(ForecastDFConfig(
            target_dim=dataset.target_dim,
            context_length=args.context_length or dataset.prediction_length,
            prediction_length=dataset.prediction_length,
            freq=dataset.freq,
            lags=covariate_lags,
            num_time_features=num_time_features(dataset.freq),
            hidden_size=args.hidden_size,
            num_gru_layers=args.num_gru_layers,
            mlp_hidden_size=args.mlp_hidden_size,
            series_embedding_dim=args.series_embedding_dim,
            sampling_steps=args.sampling_steps,
            token_transform=args.token_transform,
            clean_token_probability=args.clean_token_probability,
        ))
        task = task_from_dataset(dataset, model.config.context_length, lags=model.config.level_lags)
        training = TrainingConfig(
            seed=seed,
            batch_size=args.batch_size,
            batches_per_epoch=args.batches_per_epoch,
            patience=args.patience,
            val_num_samples=args.val_samples,
            **settings,
        )
        log.info("seed %d: %d parameters, training into %s", seed, sum(p.numel() for p in model.parameters()),
                 out_dir)
        started = time.perf_counter()
        record = train_forecaster(model, task, training, show_progress=not args.no_progress)
        metadata = {"dataset": dataset.name, "seed": seed, "recipe": args.recipe, "training_config": asdict(training),
                    "training": record.to_dict()}
        save_forecaster(out_dir, model, metadata)
        result = {"dataset": dataset.name, "seed": seed, "checkpoint": str(out_dir),
                  "train_seconds": record.seconds, "best_epoch": record.best_epoch,
                  "epochs_run": record.epochs_run, "best_val_crps_sum": record.best_val_crps_sum}
        if not args.no_test:
            result |= evaluate_test(model, task, args.num_samples, seed=seed)
        result["total_seconds"] = time.perf_counter() - started
        write_results_json(out_dir / "results.json", with_provenance(result, command_of(args)))
        log.info("seed %d: best epoch %d, val CRPS-sum %.5f, test CRPS-sum %s, %.0f s", seed, record.best_epoch,
                 record.best_val_crps_sum, f"{result['crps_sum']:.5f}" if "crps_sum" in result else "not run",
                 result["total_seconds"])
        runs.append(result)
    if len(runs) > 1:
        summary = {"dataset": dataset.name, "seeds": args.seed, "runs": runs, "num_samples": args.num_samples}
        if not args.no_test:
            scores = np.asarray([run["crps_sum"] for run in runs])
            summary |= {"crps_sum_mean": float(scores.mean()), "crps_sum_std": float(scores.std(ddof=0)),
                        "crps_sum": float(scores.mean())}
        write_results_json(args.out / "results.json", with_provenance(summary, command_of(args)))
    for run_result in runs:
        print(f"seed {run_result['seed']}: test CRPS-sum {run_result.get('crps_sum', float('nan')):.5f} "
              f"(best epoch {run_result['best_epoch']}, {run_result['train_seconds']:.0f} s training)")
    if len(runs) > 1 and not args.no_test:
        print(f"{dataset.name}: CRPS-sum {summary['crps_sum_mean']:.5f} ± {summary['crps_sum_std']:.5f} "
              f"over {len(runs)} seeds")
    return 0
