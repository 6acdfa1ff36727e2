"""What a zero-drift forecaster can score on a dataset's test windows: the attainable floor for CRPS-sum.

Prints the CRPS-sum of the Gaussian random walk (training-split change covariance) at several spread scales,
each averaged over sampling seeds, and of the persistence point forecast (every sample = the last value).
Choosing the scale on the test windows is an optimistic oracle: a forecaster centred on the last value (no
directional skill) cannot expect to beat that row's best number.

    python scripts/forecast_reference_scores.py --dataset exchange_rate_nips
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="exchange_rate_nips")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25])
    parser.add_argument("--sampling-seeds", type=int, default=20)
    parser.add_argument("--num-samples", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    from data.timeseries import load_dataset
    from df_agent.forecasting.baselines import random_walk_samples
    from df_agent.forecasting.metrics import crps_sum
    from df_agent.forecasting.windows import task_from_dataset

    task = task_from_dataset(load_dataset(args.dataset, args.data_dir))
    windows = task.test_windows()
    print(f"{args.dataset}: {len(windows)} test windows of {windows.target.shape[1]} steps, "
          f"{args.sampling_seeds} sampling seeds x {args.num_samples} samples")
    for scale in args.scales:
        scores = [crps_sum(random_walk_samples(windows, task.train, args.num_samples, seed, scale), windows.target)
                  for seed in range(args.sampling_seeds)]
        print(f"random walk, spread x{scale:<5}: CRPS-sum {np.mean(scores):.5f} ± {np.std(scores):.5f}")
    persistence = np.repeat(windows.history[:, -1][:, None, None, :], args.num_samples, axis=1)
    persistence = np.repeat(persistence, windows.target.shape[1], axis=2)
    print(f"persistence (point forecast)  : CRPS-sum {crps_sum(persistence, windows.target):.5f}")


if __name__ == "__main__":
    main()
