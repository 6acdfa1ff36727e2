"""The paper's time-series Diffusion Forcing model (appendix B.9): a GRU-based causal unit.

One token is the D-dimensional observation of one time step. The unit reads the previous latent, the noisy
token x_t^{k_t}, its noise level k_t and TimeGrad's covariates for step t (lagged clean values, Fourier time
features, a learned per-series embedding) and returns the new latent z_t; an MLP reads z_t (with the noisy
token and its level, which it is denoising) and predicts v. Training (Algorithm 1) noises every token of a
window with its own level; forecasting (Algorithm 2 with the autoregressive schedule) runs the context through
the GRU clean, then denoises one future step at a time with DDIM and feeds the result back as clean history.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from df_agent.diffusion import NoiseSchedule, Parameterization, ddim_step, to_x0, training_target
from df_agent.normalizer import Normalizer

TOKEN_TRANSFORMS = ("level", "difference", "increments")


@dataclass
class ForecastDFConfig:
    target_dim: int
    context_length: int
    prediction_length: int
    freq: str
    lags: tuple[int, ...]
    num_time_features: int
    hidden_size: int = 128  # the paper uses 1024 on a GPU; sized for CPU training here
    num_gru_layers: int = 4
    mlp_hidden_size: int = 256
    series_embedding_dim: int = 4
    noise_embedding_dim: int = 32
    num_levels: int = 1000
    schedule: str = "cosine"
    parameterization: str = "v"
    sampling_steps: int = 50
    ddim_eta: float = 0.0
    # Level at which a generated token is fed back into the latent (0 = as if clean; the paper's section 3.3
    # stabilisation uses a small k > 0).
    feedback_level: int = 0
    # What a token holds: "level" = the observation standardised by the training split's mean/std (paper F.4);
    # "difference" = the step's change x_t - x_{t-1} standardised by the training split's change statistics
    # (forecasts are re-integrated from the last observation), lag covariates still standardised levels;
    # "increments" = the model sees the differenced series only: change tokens and lagged changes as covariates
    # (nothing tells it the absolute level, so it cannot learn level-dependent drifts).
    token_transform: str = "level"
    # Training only: the chance that a token is drawn clean (k = 0) instead of k ~ U{1..K}. Forecasting feeds the
    # context and every finished token to the latent as clean, a level U{0..K} almost never trains on.
    clean_token_probability: float = 0.0
    extra: dict = field(default_factory=dict)  # free-form notes carried in config.json (not read by the model)

    def __post_init__(self) -> None:
        self.lags = tuple(int(lag) for lag in self.lags)
        if self.target_dim < 1 or self.context_length < 1 or self.prediction_length < 1:
            raise ValueError("target_dim, context_length and prediction_length must be positive")
        if not self.lags or min(self.lags) < 1:
            raise ValueError(f"lags must be positive integers, got {self.lags}")
        if not 1 <= self.sampling_steps <= self.num_levels:
            raise ValueError(f"sampling_steps must lie in 1..{self.num_levels}, got {self.sampling_steps}")
        if not 0 <= self.feedback_level < self.num_levels:
            raise ValueError(f"feedback_level must lie in 0..{self.num_levels - 1}, got {self.feedback_level}")
        Parameterization.parse(self.parameterization)
        if not 0.0 <= self.clean_token_probability < 1.0:
            raise ValueError(f"clean_token_probability must lie in [0, 1), got {self.clean_token_probability}")
        if self.token_transform not in TOKEN_TRANSFORMS:
            raise ValueError(f"token_transform must be one of {TOKEN_TRANSFORMS}, got {self.token_transform!r}")
        if self.token_transform != "level" and 1 not in self.lags:
            raise ValueError(f"token_transform {self.token_transform!r} needs lag 1 among the lags")

    @property
    def max_lag(self) -> int:
        """How many raw observations before a window the model needs (the history of `sample`)."""
        return max(self.level_lags)

    @property
    def level_lags(self) -> tuple[int, ...]:
        """The lags of raw observations the model reads: its covariate lags, plus one step further back for each
        in "increments" mode (lagged change l is x_{t-l} - x_{t-l-1})."""
        if self.token_transform == "increments":
            return tuple(sorted(set(self.lags) | {lag + 1 for lag in self.lags}))
        return self.lags

    @classmethod
    def from_dict(cls, values: dict) -> ForecastDFConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ForecastDFConfig keys: {unknown}")
        return cls(**values)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["lags"] = list(self.lags)
        return values


def noise_level_embedding(k: Tensor, num_levels: int, dim: int) -> Tensor:
    """Sinusoidal embedding of integer levels (scaled to 0..1000 so any K uses the same frequencies)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10_000.0) * torch.arange(half, device=k.device, dtype=torch.float32) / half)
    angles = (k.float() * (1000.0 / num_levels)).unsqueeze(-1) * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ForecastDF(nn.Module):
    model_type = "forecast_df_gru"

    def __init__(self, config: ForecastDFConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.target_dim
        self.normalizer = Normalizer(dim)  # levels (tokens in "level" mode, and every lag covariate)
        self.difference_normalizer = Normalizer(dim)  # step changes (tokens in "difference" mode)
        self.schedule = NoiseSchedule(config.schedule, config.num_levels)
        self.parameterization = Parameterization.parse(config.parameterization)
        self.series_embedding = nn.Embedding(dim, config.series_embedding_dim)
        unit_inputs = (
            dim  # the noisy token
            + config.noise_embedding_dim
            + dim * len(config.lags)
            + config.num_time_features
            + dim * config.series_embedding_dim
        )
        self.input_projection = nn.Linear(unit_inputs, config.hidden_size)
        self.gru = nn.GRU(config.hidden_size, config.hidden_size, num_layers=config.num_gru_layers, batch_first=True)
        head_inputs = config.hidden_size + dim + config.noise_embedding_dim
        self.head = nn.Sequential(
            nn.Linear(head_inputs, config.mlp_hidden_size),
            nn.SiLU(),
            nn.Linear(config.mlp_hidden_size, config.mlp_hidden_size),
            nn.SiLU(),
            nn.Linear(config.mlp_hidden_size, dim),
        )

    @classmethod
    def from_config(cls, values: dict) -> ForecastDF:
        return cls(ForecastDFConfig.from_dict(values))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    # ------------------------------------------------------------------------------------------ the unit

    @torch.no_grad()
    def fit_normalizers(self, train: Tensor) -> None:
        """Standardisation statistics from the training split `[T, D]` (raw scale)."""
        self.normalizer.fit(train)
        self.difference_normalizer.fit(train[1:] - train[:-1])

    def _encode_tokens(self, values: Tensor, previous: Tensor) -> Tensor:
        """Raw observations (and the raw observations one step earlier) -> normalised tokens."""
        if self.config.token_transform in ("difference", "increments"):
            return self.difference_normalizer.normalize(values - previous)
        return self.normalizer.normalize(values)

    def _decode_token(self, token: Tensor, previous: Tensor) -> Tensor:
        """A normalised token (and the raw previous observation) -> the raw observation."""
        if self.config.token_transform in ("difference", "increments"):
            return previous + self.difference_normalizer.unnormalize(token)
        return self.normalizer.unnormalize(token)

    def _lag_block(self, lags: Tensor, lag: int) -> Tensor:
        """Raw observations `lag` steps back from `[..., D * len(level_lags)]` level-lag features."""
        index, dim = self.config.level_lags.index(lag), self.config.target_dim
        return lags[..., index * dim : (index + 1) * dim]

    def _normalize_lags(self, lags: Tensor) -> Tensor:
        """Raw level-lag features (blocks in `level_lags` order) -> the covariates the unit reads."""
        if self.config.token_transform == "increments":
            changes = [self._lag_block(lags, lag) - self._lag_block(lags, lag + 1) for lag in self.config.lags]
            return torch.cat([self.difference_normalizer.normalize(change) for change in changes], dim=-1)
        batch, length, _ = lags.shape
        per_lag = lags.reshape(batch, length, len(self.config.lags), self.config.target_dim)
        return self.normalizer.normalize(per_lag).reshape(batch, length, -1)

    def _unit(
        self, x_noisy: Tensor, k: Tensor, lags: Tensor, time_features: Tensor, latent: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised tokens `[B, L, D]`, levels `[B, L]`, normalised lags, time features.

        Returns (prediction `[B, L, D]`, per-step latents `[B, L, H]`, final GRU state `[layers, B, H]`).
        """
        batch, length, _ = x_noisy.shape
        level_embedding = noise_level_embedding(k, self.config.num_levels, self.config.noise_embedding_dim)
        series = self.series_embedding.weight.reshape(1, 1, -1).expand(batch, length, -1)
        unit_input = torch.cat([x_noisy, level_embedding, lags, time_features, series], dim=-1)
        latents, state = self.gru(self.input_projection(unit_input), latent)
        prediction = self.head(torch.cat([latents, x_noisy, level_embedding], dim=-1))
        return prediction, latents, state

    # ------------------------------------------------------------------------------------------ training

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Algorithm 1 on windows: `tokens` `[B, L, D]`, `lags` `[B, L, D * len(level_lags)]` (raw observations
        `level_lags` steps back), `time_features` `[B, L, F]`. Every token gets its own level k ~ U{0..K}."""
        previous = self._lag_block(batch["lags"], 1) if 1 in self.config.level_lags else None
        x0 = self._encode_tokens(batch["tokens"], previous)
        lags = self._normalize_lags(batch["lags"])
        k = torch.randint(0, self.config.num_levels + 1, x0.shape[:2], device=x0.device)
        if self.config.clean_token_probability > 0:
            clean = torch.rand(x0.shape[:2], device=x0.device) < self.config.clean_token_probability
            k = k.clamp(min=1).masked_fill(clean, 0)
        noise = torch.randn_like(x0)
        x_noisy = self.schedule.q_sample(x0, k, noise)
        prediction, _, _ = self._unit(x_noisy, k, lags, batch["time_features"], None)
        target = training_target(self.parameterization, x0, noise, k, self.schedule)
        # A clean token's v (= its noise) is unknowable, so k = 0 tokens only feed the latent, not the loss.
        weight = (k > 0).to(x0.dtype).unsqueeze(-1)
        loss = (F.mse_loss(prediction, target, reduction="none") * weight).sum() / (weight.sum() * x0.shape[-1])
        return loss, {"loss": float(loss.detach())}

    # ------------------------------------------------------------------------------------------ sampling

    def sampling_levels(self, sampling_steps: int | None = None) -> list[int]:
        """DDIM levels K = k_0 > k_1 > ... > 0 (`sampling_steps` steps, evenly spaced; config default)."""
        steps = self.config.sampling_steps if sampling_steps is None else int(sampling_steps)
        if not 1 <= steps <= self.config.num_levels:
            raise ValueError(f"sampling_steps must lie in 1..{self.config.num_levels}, got {steps}")
        levels = torch.linspace(self.config.num_levels, 0, steps + 1).round().long()
        return torch.unique_consecutive(levels).tolist()

    @torch.no_grad()
    def sample(
        self,
        history: Tensor,
        time_features: Tensor,
        num_samples: int,
        generator: torch.Generator | None = None,
        sampling_steps: int | None = None,
    ) -> Tensor:
        """Forecast `[W, num_samples, prediction_length, D]` (raw scale).

        `history`: the last `context_length + max_lag` raw observations before each forecast `[W, ., D]`
        (max_lag >= 1, so the step before the context is known for "difference" tokens);
        `time_features`: for the context and the forecast steps `[W, context_length + prediction_length, F]`.
        """
        cfg = self.config
        windows = history.shape[0]
        expected = (windows, cfg.context_length + cfg.max_lag, cfg.target_dim)
        if tuple(history.shape) != expected:
            raise ValueError(f"history must have shape {expected}, got {tuple(history.shape)}")
        if tuple(time_features.shape) != (windows, cfg.context_length + cfg.prediction_length, cfg.num_time_features):
            raise ValueError(f"time_features has shape {tuple(time_features.shape)}, expected "
                             f"{(windows, cfg.context_length + cfg.prediction_length, cfg.num_time_features)}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        context = self._encode_tokens(history[:, cfg.max_lag :], history[:, cfg.max_lag - 1 : -1])
        context_lags = self._normalize_lags(torch.cat(
            [history[:, cfg.max_lag - lag : cfg.max_lag - lag + cfg.context_length] for lag in cfg.level_lags],
            dim=-1,
        ))
        clean = torch.zeros(context.shape[:2], dtype=torch.long, device=history.device)
        _, _, state = self._unit(context, clean, context_lags, time_features[:, : cfg.context_length], None)

        # One row per (window, sample): the context latent is shared, the futures diverge.
        batch = windows * num_samples
        state = state.repeat_interleave(num_samples, dim=1)
        trajectory = list(history.repeat_interleave(num_samples, dim=0).unbind(1))
        future_features = time_features[:, cfg.context_length :].repeat_interleave(num_samples, dim=0)
        levels = self.sampling_levels(sampling_steps)
        feedback = torch.full((batch, 1), cfg.feedback_level, dtype=torch.long, device=history.device)
        forecast = []
        for step in range(cfg.prediction_length):
            lags = self._normalize_lags(torch.cat([trajectory[-lag] for lag in cfg.level_lags], dim=-1).unsqueeze(1))
            features = future_features[:, step : step + 1]
            x = torch.randn((batch, 1, cfg.target_dim), generator=generator, device=history.device)
            for level, next_level in itertools.pairwise(levels):
                k = torch.full((batch, 1), level, dtype=torch.long, device=history.device)
                prediction, _, _ = self._unit(x, k, lags, features, state)
                x0_hat = to_x0(self.parameterization, prediction, x, k, self.schedule)
                noise = None
                if cfg.ddim_eta > 0:
                    noise = torch.randn(x.shape, generator=generator, device=x.device)
                x = ddim_step(x, x0_hat, k, torch.full_like(k, next_level), self.schedule, cfg.ddim_eta, noise)
            # Feed the finished token back as history (labelled clean, or slightly noisy without adding noise,
            # the stabilisation of section 3.3): this latent conditions the next step.
            _, _, state = self._unit(x, feedback, lags, features, state)
            observation = self._decode_token(x[:, 0], trajectory[-1])
            trajectory.append(observation)
            forecast.append(observation)
        samples = torch.stack(forecast, dim=1)
        return samples.reshape(windows, num_samples, cfg.prediction_length, cfg.target_dim)
