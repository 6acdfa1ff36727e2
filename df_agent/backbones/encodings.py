"""Input encodings for low-dimensional tokens.

An MLP on raw (x, y) learns a function with sharp, high-frequency structure (a maze's wall map: free
in one cell, wall in the next) slowly, because its early layers see a nearly linear signal. Fourier
features of the positions, [sin(2 pi f p), cos(2 pi f p)] over a geometric ladder of frequencies f
(Tancik et al. 2020, "Fourier features let networks learn high frequency functions"), make the same map
a low-order function of the inputs. They are appended to the token (and context) inputs; the model still
predicts the tokens themselves.

Noisy inputs: a token at level k is sqrt(a_k) x + sqrt(1 - a_k) eps, so the encoding is taken of
x_k / sqrt(a_k), the position estimate whose error std is sqrt((1 - a_k) / a_k): exact at k = 0, pure
noise near K (the level embedding tells the network how far to trust it).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

POSITION_ENCODINGS = ("none", "fourier")
# Largest |normalised position estimate| fed to sin/cos: past a few stds the estimate is noise anyway.
ESTIMATE_CLIP = 8.0


def fourier_frequencies(count: int, min_frequency: float, max_frequency: float) -> Tensor:
    """`count` frequencies (cycles per unit of the raw coordinate), geometric from min to max."""
    if count < 1:
        raise ValueError(f"fourier frequency count must be >= 1, got {count}")
    if not (0 < min_frequency <= max_frequency) or not math.isfinite(max_frequency):
        raise ValueError(f"need 0 < min_frequency <= max_frequency, got {min_frequency}, {max_frequency}")
    if count == 1:
        return torch.tensor([float(min_frequency)])
    exponents = torch.arange(count, dtype=torch.float64) / (count - 1)
    return (min_frequency * (max_frequency / min_frequency) ** exponents).float()


class PositionFourierFeatures(nn.Module):
    """Fourier features of selected coordinates of normalised (possibly noisy) vectors.

    `indices` pick the coordinates (e.g. every frame's x and y in a frame-stacked token); `shift` and
    `scale` of the model's normaliser bring them back to raw units, where the frequencies are defined.
    Output: [..., len(indices) * 2 * len(frequencies)].
    """

    def __init__(self, indices: list[int], frequencies: Tensor) -> None:
        super().__init__()
        if not indices:
            raise ValueError("PositionFourierFeatures needs at least one coordinate index")
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.long), persistent=False)
        self.register_buffer("angular", 2.0 * math.pi * frequencies.float(), persistent=False)

    @property
    def out_dim(self) -> int:
        return int(self.indices.numel()) * 2 * int(self.angular.numel())

    def forward(self, normalised: Tensor, signal_scale: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
        """normalised [..., D]; signal_scale [...] = sqrt(a_k) of each vector's level (1 for clean inputs);
        shift / scale [D]: the normaliser's statistics (raw = normalised * scale + shift)."""
        selected = normalised.index_select(-1, self.indices).float()
        estimate = (selected / signal_scale.float()[..., None].clamp(min=1e-4)).clamp(-ESTIMATE_CLIP, ESTIMATE_CLIP)
        raw = estimate * scale.index_select(-1, self.indices).float() + shift.index_select(-1, self.indices).float()
        phases = raw[..., None] * self.angular  # [..., P, F]
        features = torch.cat([phases.sin(), phases.cos()], dim=-1)
        return features.flatten(-2).to(normalised.dtype)


def position_indices(names: list[str], repeats: int, position_names: tuple[str, ...] = ("x", "y")) -> list[int]:
    """Indices of the named coordinates in a vector of `repeats` frames laid out as `names`."""
    missing = [name for name in position_names if name not in names]
    if missing:
        raise ValueError(f"position encoding needs coordinates {list(position_names)} in the layout {names}; "
                         f"missing {missing}")
    offsets = [names.index(name) for name in position_names]
    width = len(names)
    return [frame * width + offset for frame in range(repeats) for offset in offsets]
