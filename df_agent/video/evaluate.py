"""Evaluation protocol of the video head: roll every method out from the same ground-truth context frames to
many times the training length, then score (a) PSNR / SSIM against ground truth inside the training length and
(b) stability against the data distribution far past it (`metrics.py`)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from df_agent.video.metrics import frame_statistics, frechet_distance, psnr, ssim, statistic_drift
from df_agent.video.rollout import autoregressive_rollout, sliding_window_rollout, stabilization_level

log = logging.getLogger(__name__)

# method name -> (training mode of the checkpoint it needs, how it is rolled out)
METHODS: dict[str, tuple[str, str]] = {
    "diffusion_forcing": ("diffusion_forcing", "stabilized"),
    "diffusion_forcing_unstabilized": ("diffusion_forcing", "plain"),
    "teacher_forcing": ("teacher_forcing", "plain"),
    "full_sequence": ("full_sequence", "sliding_window"),
}


@dataclass
class EvalSettings:
    context_frames: int = 8
    rollout_multiple: float = 10.0  # rollout length in units of the training length
    sampling_steps: int = 20
    stabilization_step: int = 1  # DDIM step index whose level re-labels generated frames (C.4)
    chunk_tokens: int = 8
    seed: int = 0

    def rollout_frames(self, training_frames: int, frame_stack: int) -> int:
        frames = round(self.rollout_multiple * training_frames)
        return -(-frames // frame_stack) * frame_stack  # whole tokens


@torch.no_grad()
def rollout(method: str, model, context_video: Tensor, total_frames: int, settings: EvalSettings) -> np.ndarray:
    """Roll `method` out from uint8 context frames [B, C, H, W, 3] to `total_frames` frames (context included)."""
    if method not in METHODS:
        raise ValueError(f"unknown video method {method!r}; choose from {sorted(METHODS)}")
    mode, kind = METHODS[method]
    if model.config.training_mode != mode:
        raise ValueError(f"method {method!r} needs a model trained with mode {mode!r}, "
                         f"got {model.config.training_mode!r}")
    stack = model.config.frame_stack
    if settings.context_frames % stack or total_frames % stack:
        raise ValueError(f"context ({settings.context_frames}) and rollout ({total_frames}) frames must be "
                         f"multiples of the frame stack {stack}")
    generator = torch.Generator().manual_seed(settings.seed)
    context = model.encode(context_video)
    new_tokens = (total_frames - settings.context_frames) // stack
    if kind == "sliding_window":
        tokens = sliding_window_rollout(model, context, new_tokens, model.config.training_tokens,
                                        settings.sampling_steps, generator=generator)
    else:
        step = settings.stabilization_step if kind == "stabilized" else 0
        tokens = autoregressive_rollout(model, context, new_tokens, settings.sampling_steps, step,
                                        settings.chunk_tokens, generator=generator)
    return model.decode(tokens).numpy()


def score_rollouts(
    rollouts: dict[str, np.ndarray],
    ground_truth: np.ndarray,
    reference_frames: np.ndarray,
    training_frames: int,
    context_frames: int,
    feature_fn=None,
) -> dict:
    """Scores for uint8 rollouts {method: [B, R, H, W, 3]} against ground truth [B, >= training_frames, ...].

    Within the horizon: frames [context_frames, training_frames). Far past it: the second half of the rollout.
    `reference_frames` [N, H, W, 3] are real frames (training episodes) that define the data distribution;
    `feature_fn(frames) -> [N, D]` gives encoder features for the Fréchet distance.
    """
    reference_stats = frame_statistics(reference_frames)
    reference_features = feature_fn(reference_frames) if feature_fn is not None else None
    results: dict[str, dict] = {}
    for method, frames in rollouts.items():
        length = frames.shape[1]
        within = slice(context_frames, training_frames)
        far = slice(length // 2, length)
        far_frames = frames[:, far].reshape(-1, *frames.shape[2:])
        far_stats = frame_statistics(far_frames)
        entry = {
            "psnr_within_horizon": float(psnr(frames[:, within], ground_truth[:, within]).mean()),
            "ssim_within_horizon": float(ssim(frames[:, within], ground_truth[:, within]).mean()),
            "far_frames": [far.start, far.stop],
            "stat_drift_far": statistic_drift(far_stats, reference_stats),
            "stat_frechet_far": frechet_distance(far_stats, reference_stats),
            "drift_curve": [
                statistic_drift(frame_statistics(frames[:, s : s + training_frames].reshape(-1, *frames.shape[2:])),
                                reference_stats)
                for s in range(0, length, training_frames)
            ],
        }
        if feature_fn is not None:
            entry["feature_frechet_far"] = frechet_distance(feature_fn(far_frames), reference_features)
        results[method] = entry
    return results


def real_data_floor(test_frames: np.ndarray, reference_frames: np.ndarray, feature_fn=None) -> dict:
    """The stability measures of held-out real frames: what a perfect model would score."""
    stats = frame_statistics(test_frames)
    floor = {
        "stat_drift_far": statistic_drift(stats, frame_statistics(reference_frames)),
        "stat_frechet_far": frechet_distance(stats, frame_statistics(reference_frames)),
    }
    if feature_fn is not None:
        floor["feature_frechet_far"] = frechet_distance(feature_fn(test_frames), feature_fn(reference_frames))
    return floor


def settings_record(settings: EvalSettings, num_levels: int) -> dict:
    record = asdict(settings)
    record["stabilization_level"] = stabilization_level(num_levels, settings.sampling_steps,
                                                        settings.stabilization_step)
    return record
