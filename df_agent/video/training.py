"""Training the video head: a model preset with the run's overrides, trained by `df_agent.training.train` on
windows of a video episode store (the job behind `df-agent train video`).

The windows come from a loader passed in (`data.video_maze.windows.load_window_source`): the model package
does not read datasets itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from df_agent.video.config import VideoModelConfig, gpu_64_config, tiny_config

log = logging.getLogger(__name__)

MODES = ("diffusion_forcing", "teacher_forcing", "full_sequence")
# preset name -> config builder taking field overrides: cpu32 (32x32, 0.95M params), gpu64 (paper-sized 64x64),
# tiny (smoke tests)
PRESETS: dict[str, Callable[..., VideoModelConfig]] = {"cpu32": VideoModelConfig, "gpu64": gpu_64_config,
                                                       "tiny": tiny_config}

# (store path, frames per window, held-out test episodes, max training episodes or None) -> a BatchSource with a
# `description` dict holding at least the store's "resolution", and `describe()`
WindowLoader = Callable[[str, int, int, "int | None"], Any]


@dataclass(frozen=True)
class VideoTrainSettings:
    data: str  # video episode store
    out: str | Path  # run directory (checkpoints, metrics.jsonl, final/)
    mode: str = "diffusion_forcing"  # one of MODES
    preset: str = "cpu32"  # one of PRESETS
    head_sees_token: bool = True  # the observation head reads z_t and the noisy token (False: z_t alone, B.2)
    parameterization: str | None = None  # None: the preset's
    clean_prefix_probability: float = 0.0
    training_frames: int | None = None  # None: the preset's
    steps: int = 2000
    batch_size: int = 8
    lr: float = 3e-4
    warmup_steps: int = 100
    ema_decay: float = 0.995  # <= 0 disables the EMA
    test_episodes: int = 16  # held out at the end of the store
    max_train_episodes: int | None = None
    checkpoint_every: int = 200
    log_every: int = 20
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    max_minutes: float | None = None  # wall-time budget; ends like a finished run (final/ + resumable checkpoint)
    resume: bool = False  # continue from the latest checkpoint in `out`
    progress: bool = True

    def model_config(self) -> VideoModelConfig:
        """The preset's config with this run's overrides."""
        overrides: dict[str, Any] = {"training_mode": self.mode, "head_sees_token": self.head_sees_token,
                                     "clean_prefix_probability": self.clean_prefix_probability}
        if self.parameterization:
            overrides["parameterization"] = self.parameterization
        if self.training_frames:
            overrides["training_frames"] = self.training_frames
        return PRESETS[self.preset](**overrides)

    def train_config(self):
        from df_agent.training import TrainConfig

        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=self.warmup_steps,
            ema_decay=self.ema_decay if self.ema_decay > 0 else None, checkpoint_every=self.checkpoint_every,
            log_every=self.log_every, device=self.device, precision=self.precision, seed=self.seed,
            progress=self.progress, extra={"video_preset": self.preset},
            # A wall-time budget ends like a finished run: final/ plus a resumable checkpoint (checked at logged steps).
            time_limit_s=60 * self.max_minutes if self.max_minutes else None,
        )


def train_video_model(settings: VideoTrainSettings, load_windows: WindowLoader) -> dict[str, Any]:
    """Train one video model; returns {"checkpoint", "steps", "stopped_early", "parameters", "last_loss"}.

    The checkpoint is final/ of the run directory, or the last resumable checkpoint of an interrupted run."""
    from df_agent.training import train
    from df_agent.video.model import VideoDFModel

    config = settings.model_config()
    source = load_windows(settings.data, config.training_frames, settings.test_episodes, settings.max_train_episodes)
    if source.description["resolution"] != config.resolution:
        raise ValueError(f"{settings.data} holds {source.description['resolution']}px video but preset "
                         f"{settings.preset!r} expects {config.resolution}px")
    model = VideoDFModel(config)
    result = train(model, source, settings.train_config(), settings.out, resume="auto" if settings.resume else None,
                   metadata={"data": source.describe()})
    checkpoint = result.final_checkpoint or result.last_checkpoint
    if result.stopped_early:
        # final/ is written for a time limit only; an interrupted run leaves its resumable checkpoint.
        reason = "by --max-minutes" if result.final_checkpoint else "early (interrupted)"
        log.warning("stopped %s after %d of %d steps; model in %s", reason, result.steps_completed, settings.steps,
                    checkpoint)
    return {"checkpoint": str(checkpoint), "steps": result.steps_completed, "stopped_early": result.stopped_early,
            "parameters": sum(p.numel() for p in model.parameters()),
            "last_loss": result.losses[-1] if result.losses else None}
