"""PSNR / SSIM against known answers, and the stability measures on drifting vs in-distribution frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from df_agent.video.metrics import frame_statistics, frechet_distance, psnr, ssim, statistic_drift


def _frames(seed: int = 0, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 220, (n, 32, 32, 3), dtype=np.uint8)


def test_psnr_known_value() -> None:
    a = _frames()
    b = (a.astype(int) + 10).astype(np.uint8)  # mse exactly 100
    assert psnr(b, a).numpy() == pytest.approx(10 * math.log10(255**2 / 100))
    assert math.isinf(float(psnr(a, a)[0]))


def test_ssim_identity_and_ordering() -> None:
    a = _frames()
    assert ssim(a, a).numpy() == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    slightly = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    heavily = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(slightly, a).mean() > ssim(heavily, a).mean()
    with pytest.raises(ValueError, match="shape"):
        ssim(a[:, :16], a)


def test_frechet_distance_exact_cases() -> None:
    x = np.random.default_rng(0).normal(size=(400, 4))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 2.0, 0.0, -1.0])
    assert frechet_distance(x, x + shift) == pytest.approx(float((shift**2).sum()), rel=1e-6)
    with pytest.raises(ValueError, match="equal D"):
        frechet_distance(x, x[:, :3])


def test_stability_measures_separate_drift_from_data() -> None:
    real = _frames(0, 200)
    held_out = _frames(1, 200)
    washed_out = np.full((200, 32, 32, 3), 250, dtype=np.uint8)  # what a diverged rollout looks like
    reference = frame_statistics(real)
    assert frame_statistics(real).shape == (200, 7)
    assert statistic_drift(frame_statistics(held_out), reference) < 1.5
    assert statistic_drift(frame_statistics(washed_out), reference) > 10
    assert frechet_distance(frame_statistics(washed_out), reference) > 100 * frechet_distance(
        frame_statistics(held_out), reference
    )
