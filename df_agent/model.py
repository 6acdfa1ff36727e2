"""The Diffusion Forcing model for low-dimensional tokens: a world model, policy and planner in one.

Tokens are vectors `[B, T, D]` (e.g. frame-stacked [o_{t+1}, a_t] for maze2d). The model owns its noise
schedule, parameterisation and the normalisers of its data, so a checkpoint is self-contained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from df_agent.backbones.encodings import (
    POSITION_ENCODINGS,
    PositionFourierFeatures,
    fourier_frequencies,
    position_indices,
)
from df_agent.backbones.layers import LevelEmbedding, ResMLP
from df_agent.backbones.lowdim import UNITS
from df_agent.diffusion import NoiseSchedule, Parameterization, to_x0, training_target
from df_agent.diffusion.weighting import fused_snr_weights, min_snr_weights
from df_agent.normalizer import Normalizer

LOSS_WEIGHTINGS = ("none", "min_snr", "fused_snr")


@dataclass
class DFModelConfig:
    token_dim: int
    context_dim: int
    latent_dim: int = 128
    hidden_dim: int = 512
    mlp_layers: int = 4
    backbone: str = "paper"  # "paper" (the paper's unit) or "fast" (fused GRU, parallel MLPs)
    num_levels: int = 1000
    schedule: str = "linear"
    parameterization: str = "x0"
    loss_weighting: str = "none"
    snr_clip: float = 5.0
    fused_snr_decay: float = 0.8
    level_embedding_dim: int = 64
    clip_x0: float | None = None  # clip x0 predictions (normalised units) while sampling
    context_noise_prob: float = 0.0  # train the context encoder on noisy / missing observations too
    normalizer_mode: str = "gaussian"
    token_spec: dict[str, Any] = field(default_factory=dict)  # free-form: what each token dimension means
    # "fourier": append Fourier features of every frame's (x, y) to the token inputs and of the context's
    # (x, y) to the context (the layout comes from token_spec "frame" / "frame_stack" / "context"), so a
    # wall map is quick to learn. Frequencies in cycles per raw unit (maze2d: one cell = 1 unit).
    position_encoding: str = "none"
    fourier_frequencies: int = 6
    fourier_min_frequency: float = 0.125
    fourier_max_frequency: float = 2.0

    def __post_init__(self) -> None:
        if self.token_dim < 1 or self.context_dim < 0:
            raise ValueError(f"token_dim must be >= 1 and context_dim >= 0, got {self.token_dim}, {self.context_dim}")
        if self.backbone not in UNITS:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {sorted(UNITS)}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"unknown loss_weighting {self.loss_weighting!r}; choose one of {LOSS_WEIGHTINGS}")
        Parameterization.parse(self.parameterization)
        if not 0.0 <= self.context_noise_prob <= 1.0:
            raise ValueError(f"context_noise_prob must be in [0, 1], got {self.context_noise_prob}")
        if self.position_encoding not in POSITION_ENCODINGS:
            raise ValueError(f"unknown position_encoding {self.position_encoding!r}; choose one of "
                             f"{POSITION_ENCODINGS}")
        if self.position_encoding != "none":
            fourier_frequencies(self.fourier_frequencies, self.fourier_min_frequency, self.fourier_max_frequency)
            frame, stack = self.token_spec.get("frame"), self.token_spec.get("frame_stack")
            if not isinstance(frame, list) or not isinstance(stack, int) or len(frame) * stack != self.token_dim:
                raise ValueError(f"position_encoding {self.position_encoding!r} needs token_spec 'frame' (list of "
                                 f"names) and 'frame_stack' (int) with len(frame) * frame_stack = token_dim "
                                 f"{self.token_dim}; got frame={frame!r}, frame_stack={stack!r}")
            position_indices(frame, stack)
            context = self.token_spec.get("context")
            if self.context_dim and context is not None:
                if not isinstance(context, list) or len(context) != self.context_dim:
                    raise ValueError(f"token_spec 'context' must list {self.context_dim} names, got {context!r}")
                position_indices(context, 1)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DFModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DFModelConfig keys: {unknown}")
        return cls(**values)


class DFModel(nn.Module):
    model_type = "df_lowdim"

    def __init__(self, config: DFModelConfig) -> None:
        super().__init__()
        self.config = config
        self.parameterization = Parameterization.parse(config.parameterization)
        self.schedule = NoiseSchedule(config.schedule, config.num_levels)
        self.token_normalizer = Normalizer(config.token_dim, config.normalizer_mode)
        self.context_normalizer = Normalizer(max(config.context_dim, 1), config.normalizer_mode)
        self.context_level_embedding = LevelEmbedding(config.level_embedding_dim, config.num_levels)
        self.token_features, self.context_features = _position_encoders(config)
        token_extra = self.token_features.out_dim if self.token_features is not None else 0
        context_extra = self.context_features.out_dim if self.context_features is not None else 0
        self.encoder = ResMLP(
            config.context_dim + context_extra + config.level_embedding_dim, config.latent_dim, config.latent_dim,
            blocks=1,
        )
        unit_class = UNITS[config.backbone]
        self.unit = unit_class(
            config.token_dim,
            config.latent_dim,
            config.hidden_dim,
            config.mlp_layers,
            config.level_embedding_dim,
            config.num_levels,
            input_dim=config.token_dim + token_extra,
        )

    # -- construction / serialisation ---------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any] | DFModelConfig) -> DFModel:
        if isinstance(config, dict):
            config = DFModelConfig.from_dict(config)
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    @property
    def token_shape(self) -> tuple[int, ...]:
        return (self.config.token_dim,)

    # -- the RNN unit of the paper ---------------------------------------------------------------------
    def init_latent(self, context: Tensor, context_level: Tensor | int = 0) -> Tensor:
        """z_0 from the (normalised) context observation [B, C] given at noise level `context_level`."""
        level = torch.as_tensor(context_level, device=context.device).long().expand(context.shape[0])
        parts = [context] if self.config.context_dim else []
        if self.context_features is not None:
            normalizer = self.context_normalizer
            parts.append(self.context_features(context, self.schedule.alpha_bar(level).sqrt(), normalizer.shift,
                                               normalizer.scale))
        return self.encoder(torch.cat([*parts, self.context_level_embedding(level)], dim=-1))

    def unit_inputs(self, x_noisy: Tensor, k: Tensor) -> Tensor:
        """What the unit sees of each token: the noisy token, followed by its encoded features if any.
        Per-token, so causality is the unit's own."""
        if self.token_features is None:
            return x_noisy
        normalizer = self.token_normalizer
        features = self.token_features(x_noisy, self.schedule.alpha_bar(k).sqrt(), normalizer.shift, normalizer.scale)
        return torch.cat([x_noisy, features], dim=-1)

    def step(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """One token: (z_{t-1}, x_t^k, k) -> (z_t, x0_hat_t), in normalised token space."""
        z, prediction = self.unit.step(z_prev, self.unit_inputs(x_noisy, k), k)
        return z, self._x0(prediction, x_noisy, k)

    def forward_sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens [B, T, D] with levels [B, T] -> (latents [B, T, L], x0_hat [B, T, D])."""
        latents, predictions = self.unit.sequence(z0, self.unit_inputs(x_noisy, k), k)
        return latents, self._x0(predictions, x_noisy, k)

    def _x0(self, prediction: Tensor, x_noisy: Tensor, k: Tensor) -> Tensor:
        x0 = to_x0(self.parameterization, prediction, x_noisy, k, self.schedule)
        if self.config.clip_x0 is not None:
            x0 = x0.clamp(-self.config.clip_x0, self.config.clip_x0)
        return x0

    # -- Algorithm 1 ------------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        tokens_raw = _require(batch, "tokens", (None, None, self.config.token_dim))
        batch_size, length, _ = tokens_raw.shape
        context_raw = _require(batch, "context", (batch_size, self.config.context_dim))
        mask = batch.get("mask")
        if mask is None:
            mask = torch.ones(batch_size, length, dtype=torch.bool, device=tokens_raw.device)
        elif tuple(mask.shape) != (batch_size, length):
            raise ValueError(f"batch['mask'] must have shape {(batch_size, length)}, got {tuple(mask.shape)}")

        tokens = self.token_normalizer.normalize(tokens_raw.float())
        context = self.context_normalizer.normalize(context_raw.float()) if self.config.context_dim else context_raw
        device = tokens.device
        # Algorithm 1: every token of every sequence gets its own level, uniform on 0..K.
        k = torch.randint(0, self.num_levels + 1, (batch_size, length), device=device)
        noise = torch.randn_like(tokens)
        noisy = self.schedule.q_sample(tokens, k, noise)

        context_level = torch.zeros(batch_size, dtype=torch.long, device=device)
        if self.config.context_noise_prob > 0 and self.config.context_dim:
            corrupt = torch.rand(batch_size, device=device) < self.config.context_noise_prob
            sampled = torch.randint(1, self.num_levels + 1, (batch_size,), device=device)
            context_level = torch.where(corrupt, sampled, context_level)
            context = self.schedule.q_sample(context, context_level, torch.randn_like(context))

        z0 = self.init_latent(context, context_level)
        _, prediction = self.unit.sequence(z0, self.unit_inputs(noisy, k), k)
        target = training_target(self.parameterization, tokens, noise, k, self.schedule)
        per_token = (prediction.float() - target).pow(2).mean(dim=-1)
        weights = self._loss_weights(k)
        weights = weights * mask.float()
        loss = (weights * per_token).sum() / mask.float().sum().clamp(min=1.0)
        with torch.no_grad():
            x0_hat = to_x0(self.parameterization, prediction.float(), noisy, k, self.schedule)
            x0_mse = ((x0_hat - tokens).pow(2).mean(-1) * mask).sum() / mask.float().sum().clamp(min=1.0)
        return loss, {"loss": float(loss.detach()), "x0_mse": float(x0_mse)}

    def _loss_weights(self, k: Tensor) -> Tensor:
        if self.config.loss_weighting == "none":
            return torch.ones_like(k, dtype=torch.float32)
        if self.config.loss_weighting == "min_snr":
            return min_snr_weights(k, self.schedule, self.parameterization, self.config.snr_clip)
        return fused_snr_weights(
            k, self.schedule, self.parameterization, self.config.snr_clip, self.config.fused_snr_decay
        )


def _position_encoders(
    config: DFModelConfig,
) -> tuple[PositionFourierFeatures | None, PositionFourierFeatures | None]:
    """The token and context Fourier encoders of `config` (None where the config asks for none)."""
    if config.position_encoding == "none":
        return None, None
    frequencies = fourier_frequencies(config.fourier_frequencies, config.fourier_min_frequency,
                                      config.fourier_max_frequency)
    spec = config.token_spec
    tokens = PositionFourierFeatures(position_indices(spec["frame"], spec["frame_stack"]), frequencies)
    context = None
    if config.context_dim and spec.get("context") is not None:
        context = PositionFourierFeatures(position_indices(spec["context"], 1), frequencies)
    return tokens, context


def _require(batch: dict[str, Tensor], key: str, shape: tuple[int | None, ...]) -> Tensor:
    if key not in batch:
        raise KeyError(f"batch has no {key!r} entry (keys: {sorted(batch)})")
    value = batch[key]
    if not isinstance(value, Tensor):
        raise TypeError(f"batch[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != len(shape) or any(want is not None and got != want for got, want in zip(value.shape, shape)):
        expected = "(" + ", ".join("*" if size is None else str(size) for size in shape) + ")"
        raise ValueError(f"batch[{key!r}] must have shape {expected}, got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"batch[{key!r}] contains NaN or inf")
    return value
