"""The video Diffusion Forcing unit (appendix B.2).

    h_t = UNet(concat(z_{t-1}, x_t^{k_t}), k_t)        transition model p(x_t^k | z_{t-1})
    z_t = ConvGRU(h_t, z_{t-1})                         the recurrent latent (same H x W as the frames)
    y_t = ObservationHead(z_t, x_t^{k_t}, k_t)          a 1-block ResNet + conv; y = x0 (cpu32) or v (gpu64, B.3)

The paper's observation head reads z_t alone. Ours also reads the noisy token and the level (FiLM), unless
`config.head_sees_token` is off: z_t comes out of a gated, tanh-bounded GRU, and carrying the exact noise of the
input through it, which v (or eps) prediction needs at low noise, is what the small models learnt last (their
samples stayed grainy). With the token beside z the head only has to subtract the estimate z carries. Why the
CPU-sized presets predict x0 rather than v: `config.py`.

The same network is trained three ways (`config.training_mode`): Diffusion Forcing (independent level per
token), teacher forcing (history always clean: next-frame diffusion) and causal full-sequence diffusion (one
level shared by the window). Tokens are frame stacks in [-1, 1] (`frames.py`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from df_agent.diffusion.parameterization import Parameterization, to_x0, training_target
from df_agent.diffusion.schedule import NoiseSchedule
from df_agent.diffusion.weighting import clean_history_fused_snr_weights, fused_snr_weights
from df_agent.video.config import VideoModelConfig
from df_agent.video.convgru import ConvGRUCell
from df_agent.video.frames import frames_to_tokens, tokens_to_frames
from df_agent.video.unet import ResBlock, UNet, level_embedding


class VideoDFModel(nn.Module):
    model_type = "video_df"

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        self.config = config
        self.parameterization = Parameterization.parse(config.parameterization)
        self.schedule = NoiseSchedule(config.schedule, config.num_levels)
        patch_area = config.patch_size**2
        self.unet = UNet(
            in_channels=config.latent_channels + config.token_channels * patch_area,
            out_channels=config.gru_input_channels,
            base_channels=config.base_channels,
            channel_mults=config.channel_mults,
            res_blocks_per_level=config.res_blocks_per_level,
            embedding_dim=config.level_embedding_dim,
            resolution=config.latent_resolution,
            attention_resolution=config.attention_resolution,
        )
        self.gru = ConvGRUCell(config.gru_input_channels, config.latent_channels)
        sees_token = config.head_sees_token
        self.observation_head = ObservationHead(
            in_channels=config.latent_channels + (config.token_channels * patch_area if sees_token else 0),
            hidden_channels=config.base_channels,
            out_channels=config.token_channels * patch_area,
            patch_size=config.patch_size,
            embedding_dim=config.level_embedding_dim if sees_token else None,
        )

    # ------------------------------------------------------------------ construction / checkpoints
    @classmethod
    def from_config(cls, config: dict[str, Any] | VideoModelConfig) -> VideoDFModel:
        if isinstance(config, dict):
            config = VideoModelConfig.from_dict(config)
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    @property
    def token_shape(self) -> tuple[int, int, int]:
        return (self.config.token_channels, self.config.resolution, self.config.resolution)

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    # ------------------------------------------------------------------ pixels <-> tokens
    def encode(self, video: Tensor) -> Tensor:
        """uint8 / 0..255 video [B, F, H, W, 3] -> tokens [B, F / stack, 3 * stack, H, W] in [-1, 1]."""
        self._check_resolution(video.shape[2:4])
        return frames_to_tokens(video, self.config.frame_stack)

    def decode(self, tokens: Tensor) -> Tensor:
        return tokens_to_frames(tokens, self.config.frame_stack)

    def _check_resolution(self, size: tuple[int, int] | torch.Size) -> None:
        if tuple(size) != (self.config.resolution, self.config.resolution):
            raise ValueError(f"frames are {tuple(size)} pixels but the model was built for {self.config.resolution}")

    # ------------------------------------------------------------------ the RNN unit
    def init_latent(self, context: Tensor | int, context_level: Tensor | int = 0) -> Tensor:
        """z_0 for a batch: zeros. The video model starts from nothing; ground-truth frames enter as tokens at
        level 0 (`df_agent.sampler.encode_context`). `context` is a batch size or a tensor [B, ...];
        `context_level` is accepted for the sampler's interface and has nothing to act on here."""
        batch = context if isinstance(context, int) else int(context.shape[0])
        size = self.config.latent_resolution
        return torch.zeros(batch, self.config.latent_channels, size, size, device=self._device(), dtype=self._dtype())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _levels(self, k: Tensor | int, batch: int) -> Tensor:
        k = torch.as_tensor(k, device=self._device()).long()
        if k.dim() == 0:
            k = k.expand(batch)
        if k.shape != (batch,):
            raise ValueError(f"noise levels must be a scalar or [{batch}], got shape {tuple(k.shape)}")
        return k

    def predict(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor | int) -> tuple[Tensor, Tensor]:
        """(z_t, raw network prediction in the model's parameterisation)."""
        if x_noisy.shape[1:] != self.token_shape:
            raise ValueError(f"tokens must be [B, {', '.join(map(str, self.token_shape))}], got {tuple(x_noisy.shape)}")
        k = self._levels(k, x_noisy.shape[0])
        x_in = nn.functional.pixel_unshuffle(x_noisy, self.config.patch_size) if self.config.patch_size > 1 else x_noisy
        h = self.unet(torch.cat([z_prev, x_in], dim=1), k)
        z = self.gru(h, z_prev)
        if not self.config.head_sees_token:
            return z, self.observation_head(z)
        embedding = self.unet.level_mlp(level_embedding(k, self.config.level_embedding_dim))
        return z, self.observation_head(torch.cat([z, x_in], dim=1), embedding)

    def step(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor | int) -> tuple[Tensor, Tensor]:
        """One RNN step: (z_t, x0_hat). x0_hat is clipped to the pixel range [-1, 1]."""
        z, prediction = self.predict(z_prev, x_noisy, k)
        k = self._levels(k, x_noisy.shape[0])
        x0_hat = to_x0(self.parameterization, prediction, x_noisy, k, self.schedule)
        return z, x0_hat.clamp(-1.0, 1.0)

    def forward_sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens [B, T, C, H, W] at levels [B, T] -> (latents [B, T, *latent], x0_hat [B, T, C, H, W])."""
        if x_noisy.dim() != 5 or k.shape != x_noisy.shape[:2]:
            raise ValueError(f"forward_sequence needs tokens [B, T, C, H, W] and levels [B, T], got "
                             f"{tuple(x_noisy.shape)} and {tuple(k.shape)}")
        z, latents, estimates = z0, [], []
        for i in range(x_noisy.shape[1]):
            z, x0_hat = self.step(z, x_noisy[:, i], k[:, i])
            latents.append(z)
            estimates.append(x0_hat)
        return torch.stack(latents, dim=1), torch.stack(estimates, dim=1)

    # ------------------------------------------------------------------ training objective (Algorithm 1)
    def sample_levels(self, batch: int, tokens: int, generator: torch.Generator | None = None) -> Tensor:
        shape = (batch, 1) if self.config.training_mode == "full_sequence" else (batch, tokens)
        k = torch.randint(0, self.num_levels + 1, shape, generator=generator).expand(batch, tokens).clone()
        probability = self.config.clean_prefix_probability
        if self.config.training_mode == "diffusion_forcing" and probability > 0 and tokens > 1:
            # Autoregressive sampling conditions every new token on a clean (or nearly clean) history, a case
            # independent levels almost never draw (all of 4 earlier tokens below level 100: 1 in 10^4). This
            # trains that case more often: some windows get a clean prefix of random length. Off by default: at
            # 1000 updates it changed neither one-step denoising nor the drift of DDIM chains (docs/video.md).
            chosen = torch.rand(batch, generator=generator) < probability
            prefix = torch.randint(1, tokens, (batch,), generator=generator)
            clean = chosen[:, None] & (torch.arange(tokens)[None] < prefix[:, None])
            k = k.masked_fill(clean, 0)
        return k.to(self._device())

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Diffusion loss over a window. batch: "video" [B, F, H, W, 3] in 0..255 (or "tokens" in [-1, 1]),
        optional "mask" bool [B, T] (True = real token), optional "levels" [B, T] to fix the noise levels."""
        if "tokens" in batch:
            x0 = batch["tokens"].to(self._device(), self._dtype())
        elif "video" in batch:
            x0 = self.encode(batch["video"].to(self._device()))
        else:
            raise KeyError("video batch needs 'video' [B, F, H, W, 3] or 'tokens' [B, T, C, H, W]")
        b, t = x0.shape[:2]
        k = batch["levels"].to(self._device()).long() if "levels" in batch else self.sample_levels(b, t)
        noise = torch.randn_like(x0)
        x_noisy = self.schedule.q_sample(x0, k, noise)
        target = training_target(self.parameterization, x0, noise, k, self.schedule)
        z = self.init_latent(b)
        predictions = []
        teacher_forcing = self.config.training_mode == "teacher_forcing"
        for i in range(t):
            if teacher_forcing:
                # The state always comes from the clean history; the noisy token is only denoised.
                levels = torch.cat([torch.zeros_like(k[:, i]), k[:, i]])
                both_z, both_pred = self.predict(torch.cat([z, z]), torch.cat([x0[:, i], x_noisy[:, i]]), levels)
                z, prediction = both_z[:b], both_pred[b:]
            else:
                z, prediction = self.predict(z, x_noisy[:, i], k[:, i])
            predictions.append(prediction)
        prediction = torch.stack(predictions, dim=1)
        if teacher_forcing:
            weights = clean_history_fused_snr_weights(
                k, self.schedule, self.parameterization, self.config.snr_clip, self.config.cum_snr_decay
            )
        else:
            weights = fused_snr_weights(
                k, self.schedule, self.parameterization, self.config.snr_clip, self.config.cum_snr_decay
            )
        per_token = ((prediction - target) ** 2).flatten(2).mean(-1)
        mask = batch.get("mask")
        mask = torch.ones_like(per_token, dtype=torch.bool) if mask is None else mask.to(self._device()).bool()
        weighted = (weights.to(per_token.dtype) * per_token * mask).sum() / mask.sum().clamp(min=1)
        mse = (per_token.detach() * mask).sum() / mask.sum().clamp(min=1)
        metrics = {"loss": float(weighted.detach()), "mse": float(mse)}
        return weighted, metrics


class ObservationHead(nn.Sequential):
    """ResBlock (FiLM by the level when `embedding_dim` is set) -> norm -> SiLU -> conv -> unfold patches.
    A Sequential so the parameter names of the z-only head stay those of earlier checkpoints."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, patch_size: int,
                 embedding_dim: int | None = None) -> None:
        super().__init__(
            ResBlock(in_channels, hidden_channels, embedding_dim),
            nn.GroupNorm(8, hidden_channels),
            nn.SiLU(),
            nn.Conv2d(hidden_channels, out_channels, 3, padding=1),
            nn.PixelShuffle(patch_size) if patch_size > 1 else nn.Identity(),
        )

    def forward(self, x: Tensor, embedding: Tensor | None = None) -> Tensor:  # type: ignore[override]
        h = self[0](x, embedding)
        for layer in list(self)[1:]:
            h = layer(h)
        return h


def _register() -> None:
    from df_agent.checkpoint import register_model_type

    register_model_type(VideoDFModel.model_type, "df_agent.video.model:VideoDFModel")


_register()
