"""Forecasting checkpoints (the shared `df_agent.checkpoint` format) and result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from df_agent.atomic_io import write_json_atomic
from df_agent.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from df_agent.forecasting.model import ForecastDF


def save_forecaster(directory: str | Path, model: ForecastDF, metadata: dict[str, Any]) -> Path:
    return save_checkpoint(directory, model, metadata)


def load_forecaster(directory: str | Path) -> tuple[ForecastDF, dict[str, Any]]:
    """The model and its checkpoint metadata (dataset name, training record...)."""
    import df_agent.forecasting  # noqa: F401  (registers the model type)

    config = read_checkpoint_config(directory)
    model = load_checkpoint(directory, config=config)
    if not isinstance(model, ForecastDF):
        raise ValueError(f"checkpoint {directory} holds a {type(model).__name__}, not a forecasting model")
    return model, config.get("metadata", {})


def expand_checkpoints(paths: list[Path]) -> list[Path]:
    """A folder without config.json but with seed_*/ checkpoints stands for all of them."""
    expanded: list[Path] = []
    for path in paths:
        seeds = sorted(path.glob("seed_*/config.json")) if not (path / "config.json").exists() else []
        expanded += [seed.parent for seed in seeds] if seeds else [path]
    return expanded


def write_results_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Results JSON, strict (a NaN score is an error, not a `NaN` token other JSON readers reject), written
    atomically and synced, so a failed write keeps the old file intact."""
    return write_json_atomic(path, data, allow_nan=False, fsync=True)
