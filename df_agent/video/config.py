"""Configuration of the video model. Defaults are the CPU-sized 32x32 model; `gpu_64_config()` is the paper-sized
64x64 one (B.2: U-Net with channel multipliers 1,2,4,8, 16 latent channels for DMLab, frame stack 4,
v-parameterisation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

TRAINING_MODES = ("diffusion_forcing", "teacher_forcing", "full_sequence")


@dataclass
class VideoModelConfig:
    resolution: int = 32
    frame_stack: int = 4  # frames per token (B.6)
    patch_size: int = 2  # >1 folds p x p pixel patches into channels (a CPU speed-up; the paper uses 1)
    # Channels of z (16 for DMLab in the paper, where a token has 12). The paper's head reads the prediction from z
    # alone, so z must be at least as wide as a folded token: 48 here (12 channels x 2 x 2 pixels).
    latent_channels: int = 48
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    res_blocks_per_level: int = 1
    attention_resolution: int = 0  # self-attention in the U-Net at this feature size (0 = none)
    gru_input_channels: int = 64
    level_embedding_dim: int = 128
    num_levels: int = 1000
    schedule: str = "sigmoid"
    # x0 for the CPU-sized models, v (the paper's) for gpu64. A v-model predicts the input's noise and, while small
    # or briefly trained, under-predicts it: about a fifth of the noise leaked into its x0 estimates at mid
    # levels, and its DDIM chains drifted into coloured noise. An x0-model's errors are blur, which a chain does
    # not amplify (docs/video.md).
    parameterization: str = "x0"
    snr_clip: float = 5.0
    cum_snr_decay: float = 0.8
    training_mode: str = "diffusion_forcing"
    training_frames: int = 36  # frames per training window (a multiple of frame_stack)
    # The observation head also reads the noisy token and its level (a deviation from B.2, see model.py).
    # Checkpoints written before this option existed load with False, the head they were trained with.
    head_sees_token: bool = True
    # Diffusion Forcing only: the fraction of training windows whose first tokens (a random number of them, at
    # least one token left noisy) are clean, the history autoregressive sampling conditions on (model.py).
    # 0 = the paper's independent levels. 0.25 measured no better (docs/video.md), so it stays off by default.
    clean_prefix_probability: float = 0.0

    def __post_init__(self) -> None:
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        if self.training_mode not in TRAINING_MODES:
            raise ValueError(f"training_mode must be one of {TRAINING_MODES}, got {self.training_mode!r}")
        downsampling = 2 ** (len(self.channel_mults) - 1) * self.patch_size
        if self.patch_size < 1 or self.resolution % downsampling:
            raise ValueError(f"resolution {self.resolution} is not divisible by the {downsampling}x downsampling")
        if self.training_frames % self.frame_stack:
            raise ValueError(f"training_frames {self.training_frames} is not a multiple of {self.frame_stack}")
        if not 0.0 <= self.clean_prefix_probability <= 1.0:
            raise ValueError(f"clean_prefix_probability must be in [0, 1], got {self.clean_prefix_probability}")
        if self.base_channels % 8 or self.latent_channels < 1:
            raise ValueError("base_channels must be a multiple of 8 (GroupNorm) and latent_channels >= 1")
        folded = self.token_channels * self.patch_size**2
        if min(self.latent_channels, self.gru_input_channels) < folded:
            # The v (or eps) target carries a fresh noise value per folded channel and pixel, and the
            # prediction is read from z, which the U-Net fills through gru_input_channels. Narrower than a
            # folded token, they cannot pass that noise through: such a model never learns to remove the last
            # of the noise, and every sampled frame stays noise, however long it trains.
            raise ValueError(f"latent_channels ({self.latent_channels}) and gru_input_channels "
                             f"({self.gru_input_channels}) must be >= the {folded} channels of a token folded by "
                             f"patch_size {self.patch_size} ({self.token_channels} x {self.patch_size}^2)")

    @property
    def token_channels(self) -> int:
        return 3 * self.frame_stack

    @property
    def latent_resolution(self) -> int:
        return self.resolution // self.patch_size

    @property
    def training_tokens(self) -> int:
        return self.training_frames // self.frame_stack

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["channel_mults"] = list(self.channel_mults)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown video model config keys: {unknown}")
        return cls(**{"head_sees_token": False, **data})


def tiny_config(**overrides: Any) -> VideoModelConfig:
    """A model small enough for unit tests and CLI smoke runs (32x32 frames folded to 16x16)."""
    settings: dict[str, Any] = dict(
        resolution=32, frame_stack=2, patch_size=2, latent_channels=24, base_channels=8, channel_mults=(1, 2),
        gru_input_channels=24, level_embedding_dim=16, training_frames=8,
    )
    settings.update(overrides)
    return VideoModelConfig(**settings)


def gpu_64_config(**overrides: Any) -> VideoModelConfig:
    """The paper-sized DMLab configuration for a GPU: 64x64, 36-frame windows, 25M parameters (paper: 24M)."""
    settings: dict[str, Any] = dict(
        resolution=64, frame_stack=4, patch_size=1, latent_channels=16, base_channels=48, channel_mults=(1, 2, 4, 8),
        res_blocks_per_level=1, attention_resolution=8, gru_input_channels=64, level_embedding_dim=256,
        training_frames=36, parameterization="v",
    )
    settings.update(overrides)
    return VideoModelConfig(**settings)
