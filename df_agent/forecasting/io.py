"""Forecasting checkpoints (the shared `df_agent.checkpoint` format) and result files."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from df_agent.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
from df_agent.forecasting.model import ForecastDF


def save_forecaster(directory: str | Path, model: ForecastDF, metadata: dict[str, Any]) -> Path:
    return save_checkpoint(directory, model, metadata)


def load_forecaster(directory: str | Path) -> tuple[ForecastDF, dict[str, Any]]:
    """The model and its checkpoint metadata (dataset name, training record...)."""
    import df_agent.forecasting  # noqa: F401  (registers the model type)

    model = load_checkpoint(directory)
    if not isinstance(model, ForecastDF):
        raise ValueError(f"checkpoint {directory} holds a {type(model).__name__}, not a forecasting model")
    return model, read_checkpoint_config(directory).get("metadata", {})


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> Path:
    """Write JSON through a temporary file and `os.replace`, so a failed write keeps the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
