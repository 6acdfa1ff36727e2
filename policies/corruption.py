"""How far to trust a corrupted observation: the noise level that matches a known Gaussian noise.

A DF model's level-k input is sqrt(a_k) x + sqrt(1 - a_k) eps (x normalised, a_k = alpha_bar_k). An observation
that carries Gaussian noise of std s (in normalised units), o = x + s eps, enters the planner under its
"scale" convention as sqrt(a_k) o = sqrt(a_k) x + sqrt(a_k) s eps, which is exactly a level-k input when
a_k s^2 = 1 - a_k, i.e. a_k = 1 / (1 + s^2). The matching level is the k whose alpha_bar is nearest to that.
"""

from __future__ import annotations

import math

import numpy as np


def noise_level_for_std(std: float, feature_scale: np.ndarray, alpha_bar: np.ndarray) -> int:
    """The level k (1..K-1) whose alpha_bar matches Gaussian noise of `std` (env units) on some features.

    feature_scale: the normaliser's scale of the noisy features (e.g. x, y); their normalised noise variances
    are averaged (s^2 = mean((std / scale)^2)). alpha_bar: the schedule's table for levels 0..K.
    std == 0 gives level 0 (clean). Any std > 0 gives at least level 1 and at most K - 1: a noisy observation
    still carries information, unlike a missing one (K).
    """
    std = float(std)
    if not math.isfinite(std) or std < 0:
        raise ValueError(f"observation noise std must be a finite number >= 0, got {std}")
    if std == 0.0:
        return 0
    scale = np.asarray(feature_scale, dtype=np.float64).reshape(-1)
    if scale.size == 0 or not np.all(scale > 0):
        raise ValueError(f"feature_scale must hold positive normaliser scales, got {scale.tolist()}")
    table = np.asarray(alpha_bar, dtype=np.float64).reshape(-1)
    num_levels = table.size - 1
    if num_levels < 2:
        raise ValueError(f"alpha_bar must cover levels 0..K with K >= 2, got {table.size} entries")
    variance = float(np.mean((std / scale) ** 2))
    target = 1.0 / (1.0 + variance)
    candidates = np.arange(1, num_levels)
    return int(candidates[np.argmin(np.abs(table[1:num_levels] - target))])
