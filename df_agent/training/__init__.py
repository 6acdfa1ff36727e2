"""Training: `train(model, data, TrainConfig, run_dir)` with EMA, AMP, exact resume and torchrun DDP."""

from df_agent.training.batch_source import BatchSource, TensorBatchSource
from df_agent.training.config import TrainConfig
from df_agent.training.loop import TrainResult, find_latest_checkpoint, iterate_metrics, train

__all__ = [
    "BatchSource",
    "TensorBatchSource",
    "TrainConfig",
    "TrainResult",
    "find_latest_checkpoint",
    "iterate_metrics",
    "train",
]
