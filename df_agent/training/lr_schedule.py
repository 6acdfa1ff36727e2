"""Learning-rate schedule: linear warm-up, then constant or cosine decay. A pure function of the step, so the
schedule needs no saved state beyond the step count and resumes exactly."""

from __future__ import annotations

import math

from torch.optim import Optimizer


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str = "constant",
              min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate for optimizer update number `step` (0-based).

    Warm-up rises linearly to 1 over `warmup_steps` updates, starting at 1 / warmup_steps (never 0, so the
    first update is not wasted); cosine then decays from 1 to `min_ratio` at `total_steps`.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        decay_steps = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r} (expected 'constant' or 'cosine')")


def apply_lr(optimizer: Optimizer, base_lr: float, factor: float) -> float:
    lr = base_lr * factor
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
