"""Video metrics: PSNR and SSIM against ground truth, and stability measures that need no ground truth.

Far past the training length a rollout has no ground truth to match (the future of a random walk is open), so
stability is judged against the *data distribution*: per-frame statistics (colour means and spreads, edge
energy) and features of a small encoder trained on the dataset. A diverging rollout drifts into saturated,
washed-out or noisy frames that move these statistics far from anything in the data.
All functions take uint8 frames [..., H, W, 3] as numpy arrays or tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _float_frames(frames: np.ndarray | Tensor) -> Tensor:
    frames = torch.as_tensor(np.asarray(frames) if not isinstance(frames, Tensor) else frames)
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must be [..., H, W, 3], got shape {tuple(frames.shape)}")
    return frames.double()


def psnr(prediction: np.ndarray | Tensor, target: np.ndarray | Tensor) -> Tensor:
    """Per-frame PSNR in dB for 8-bit frames [..., H, W, 3] (identical frames give +inf)."""
    a, b = _float_frames(prediction), _float_frames(target)
    if a.shape != b.shape:
        raise ValueError(f"prediction {tuple(a.shape)} and target {tuple(b.shape)} differ in shape")
    mse = ((a - b) ** 2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    return (kernel[:, None] * kernel[None, :])[None, None]


def ssim(prediction: np.ndarray | Tensor, target: np.ndarray | Tensor, window: int = 11) -> Tensor:
    """Per-frame SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5, averaged over RGB channels)."""
    a, b = _float_frames(prediction), _float_frames(target)
    if a.shape != b.shape:
        raise ValueError(f"prediction {tuple(a.shape)} and target {tuple(b.shape)} differ in shape")
    lead = a.shape[:-3]
    h, w = a.shape[-3:-1]
    window = min(window, h, w)
    a = a.reshape(-1, h, w, 3).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    b = b.reshape(-1, h, w, 3).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    kernel = _gaussian_window(window)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(x, kernel)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(-2, -1)).reshape(-1, 3).mean(dim=-1).reshape(lead)


FRAME_STATISTIC_NAMES = ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "edge_energy")


def frame_statistics(frames: np.ndarray | Tensor) -> np.ndarray:
    """Per-frame [N, 7]: channel means and standard deviations (in 0..1) and mean absolute gradient of luma."""
    x = _float_frames(frames).reshape(-1, *_float_frames(frames).shape[-3:]) / 255.0
    means = x.mean(dim=(1, 2))
    stds = x.std(dim=(1, 2), unbiased=False)
    luma = x @ torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype)
    edges = (luma[:, 1:, :] - luma[:, :-1, :]).abs().mean(dim=(1, 2)) + (luma[:, :, 1:] - luma[:, :, :-1]).abs().mean(
        dim=(1, 2)
    )
    return torch.cat([means, stds, edges[:, None]], dim=1).numpy()


def statistic_drift(statistics: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute z-score of per-frame statistics against the reference frames' distribution.

    Frames drawn from the data give about 0.8 (E|N(0,1)|); diverging rollouts give much larger values."""
    mean, std = reference.mean(axis=0), reference.std(axis=0) + 1e-8
    return float(np.abs((statistics - mean) / std).mean())


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] (as in FID)."""
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be [N, D] with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two samples per feature set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    # trace(sqrt(cov_a cov_b)) via the symmetric form sqrt(cov_a)^{1/2} cov_b sqrt(cov_a)^{1/2} (no complex parts).
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
