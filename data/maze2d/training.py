"""Training one Diffusion Forcing planning model per maze on its Minari dataset (the job behind
`df-agent train maze2d`).

The model is the paper's maze2d model (FACTS.md: tokens of frame_stack 10 frames [o_{t+1}, a_t], latent started
from the current observation, K = 1000 linear schedule, x0-prediction, unweighted MSE) with a CPU-friendly
default recipe: the fused "fast" backbone and a narrower MLP. Normalisers are fitted on the dataset and saved in
the checkpoint. The final checkpoint (`RUN_DIR/final`, optionally copied to an export directory) records the
maze, frame stack, dataset id and the training compute in its config.json metadata.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.maze2d.dataset import load_maze2d_episodes
from data.maze2d.windows import Maze2DWindows

log = logging.getLogger(__name__)

MAZES = ("umaze", "medium", "large")


def default_train_config():
    """The training recipe of the shipped maze2d checkpoints (a `df_agent.training.TrainConfig`)."""
    from df_agent.training import TrainConfig

    return TrainConfig(steps=20_000, batch_size=256, lr=5e-4, warmup_steps=100, lr_schedule="cosine",
                       min_lr_ratio=0.1, ema_decay=0.999, checkpoint_every=1000)


@dataclass(frozen=True)
class Maze2DModelRecipe:
    frame_stack: int = 10  # env steps per token (paper: 10)
    window_tokens: int = 30  # tokens per training window
    backbone: str = "fast"  # RNN unit (fast: fused GRU; paper: the paper's MLP cell)
    latent_dim: int = 128  # paper: 128
    hidden_dim: int = 256  # MLP width (paper: 512, large: 1024)
    mlp_layers: int = 4  # paper: 4
    # Fraction of windows whose start observation is trained as noisy/missing (k > 0), so noise flags at planning
    # time mean something.
    context_noise_prob: float = 0.1
    position_encoding: str = "none"  # "fourier": Fourier features of every frame's (x, y) as extra inputs

    def __post_init__(self) -> None:
        if self.frame_stack < 1 or self.window_tokens < 1:
            raise ValueError(f"--frame-stack and --window-tokens must be >= 1, got {self.frame_stack}, "
                             f"{self.window_tokens}")


class WindowSource:
    """Maze2DWindows as a training BatchSource that describes itself in the checkpoint metadata."""

    def __init__(self, windows: Maze2DWindows, dataset_id: str, num_steps: int) -> None:
        self.windows, self.dataset_id, self.num_steps = windows, dataset_id, num_steps

    def sample_batch(self, batch_size: int, generator):
        return self.windows.sample_batch(batch_size, generator)

    def describe(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "dataset_steps": self.num_steps, "windows": len(self.windows),
                "window_tokens": self.windows.window_tokens, "frame_stack": self.windows.frame_stack}


def build_model(windows: Maze2DWindows, recipe: Maze2DModelRecipe):
    """A DFModel for maze2d tokens with normalisers fitted on `windows`."""
    from df_agent.model import DFModel, DFModelConfig
    from planners.maze2d_tokens import token_spec

    config = DFModelConfig(
        token_dim=windows.token_dim, context_dim=windows.context_dim, latent_dim=recipe.latent_dim,
        hidden_dim=recipe.hidden_dim, mlp_layers=recipe.mlp_layers, backbone=recipe.backbone,
        context_noise_prob=recipe.context_noise_prob, position_encoding=recipe.position_encoding,
        token_spec=token_spec(recipe.frame_stack),
    )
    model = DFModel(config)
    token_norm, context_norm = windows.token_normalizer(), windows.context_normalizer()
    model.token_normalizer.set_stats(token_norm.shift, token_norm.scale)
    model.context_normalizer.set_stats(context_norm.shift, context_norm.scale)
    return model


def model_from_checkpoint(init_from: str | Path, windows: Maze2DWindows, recipe: Maze2DModelRecipe):
    """The model of checkpoint `init_from` (a directory or shipped name) to fine-tune on `windows`.

    Its architecture and normalisers are kept (the weights were trained against them); the recipe's architecture
    flags are ignored, and a checkpoint whose tokens do not fit `windows` is refused with the mismatch named."""
    import torch

    from df_agent.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint

    directory = resolve_checkpoint(init_from)
    model = load_checkpoint(directory)
    config = model.config
    stack = (config.token_spec or {}).get("frame_stack")
    if (config.token_dim, config.context_dim, stack) != (windows.token_dim, windows.context_dim,
                                                         recipe.frame_stack):
        raise CheckpointError(
            f"--init-from {directory}: its tokens (token_dim {config.token_dim}, context_dim {config.context_dim}, "
            f"frame_stack {stack}) do not fit this dataset's windows (token_dim {windows.token_dim}, context_dim "
            f"{windows.context_dim}, frame_stack {recipe.frame_stack})")
    model.train()
    return model.to(torch.float32)


def _compute_record(result: Any, train_config: Any, wall: float, parameters: int) -> dict[str, Any]:
    import torch

    # wall_time_s covers every invocation of a resumed run; this_invocation_s only this one.
    return {"wall_time_s": round(result.train_seconds, 3), "this_invocation_s": round(wall, 3),
            "resumed_from_step": result.start_step, "steps": result.steps_completed,
            "batch_size": train_config.batch_size,
            "device": train_config.device if train_config.device != "auto" else
            ("cuda" if torch.cuda.is_available() else "cpu"),
            "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "parameters": parameters, "precision": train_config.precision}


def _record_compute(final: Path, compute: dict[str, Any], export: Path | None) -> None:
    """Rewrite the final checkpoint (atomically, same weights) with the compute in its metadata; copy to export."""
    from df_agent.checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint

    stored = read_checkpoint_config(final)
    trained = load_checkpoint(final, config=stored)
    save_checkpoint(final, trained, metadata={**stored.get("metadata", {}), "compute": compute})
    if export is not None:
        save_checkpoint(export, trained, metadata={**stored.get("metadata", {}), "compute": compute})


def train_maze2d(maze: str, recipe: Maze2DModelRecipe, train_config: Any, run_dir: str | Path, *,
                 dataset_id: str | None = None, resume: str | None = None, export: Path | None = None,
                 init_from: str | Path | None = None) -> dict[str, Any]:
    """Train the model of `maze` on `dataset_id` (default df-agent/maze2d-<maze>-v0) into `run_dir`.

    Returns the run's summary: {"checkpoint": RUN_DIR/final, "export", "steps", "stopped_early", "parameters",
    "last_loss", "wall_time_s"}, or for a run stopped by a signal before its final checkpoint
    {"checkpoint": None, "resumable": the latest resumable checkpoint, "steps"}."""
    from df_agent.training import train

    dataset_id = dataset_id or f"df-agent/maze2d-{maze}-v0"
    episodes = load_maze2d_episodes(dataset_id)
    windows = Maze2DWindows.from_episodes(episodes, recipe.window_tokens, recipe.frame_stack)
    source = WindowSource(windows, dataset_id, episodes.num_steps)
    model = build_model(windows, recipe) if init_from is None else model_from_checkpoint(init_from, windows, recipe)
    parameters = sum(p.numel() for p in model.parameters())
    metadata = {"task": "maze2d", "maze": maze, "frame_stack": recipe.frame_stack, "dataset_id": dataset_id,
                "window_tokens": recipe.window_tokens}
    if init_from is not None:
        from df_agent.checkpoint import read_checkpoint_config, resolve_checkpoint

        metadata["init_from"] = str(init_from)
        # The planner settings the base model ships with stay the fine-tuned model's starting point.
        inherited = read_checkpoint_config(resolve_checkpoint(init_from)).get("metadata", {}).get("planner_defaults")
        if inherited:
            metadata["planner_defaults"] = inherited
    log.info("training a %d-parameter DF model on %s (%d windows)", parameters, dataset_id, len(windows))
    started = time.perf_counter()
    result = train(model, source, train_config, run_dir, resume=resume, metadata=metadata)
    wall = time.perf_counter() - started
    final = result.final_checkpoint
    if final is None:  # stopped by a signal: only a resumable checkpoint exists; leave it untouched
        log.warning("training stopped after %d steps without a final checkpoint; resume with --resume (latest: %s)",
                    result.steps_completed, result.last_checkpoint)
        return {"checkpoint": None, "resumable": str(result.last_checkpoint), "steps": result.steps_completed}
    _record_compute(final, _compute_record(result, train_config, wall, parameters), export)
    return {"checkpoint": str(final), "export": str(export) if export else None,
            "steps": result.steps_completed, "stopped_early": result.stopped_early, "parameters": parameters,
            "last_loss": result.losses[-1] if result.losses else None, "wall_time_s": round(wall, 3)}
