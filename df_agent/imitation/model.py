"""The Diffusion Forcing imitation model: tokens bundle two camera images, proprioception and an action chunk.

The recurrent latent carries memory through the whole episode (the fruit-swap task needs it: the same
intermediate layout calls for different moves depending on the initial one). Per token,

    features_t = Embed(ImageEncoder(images_t^k), Linear([actions_t^k, proprio_t^k]), emb(k_t))
    z_t        = GRU(features_t, z_{t-1})                                    (the memory)
    x0_hat_t   = Head([z_t, features_t]) -> (action chunk + proprio, images) (x0-prediction by default)

The image encoder and the heads run on all tokens at once; only the GRU is sequential, so a training
step over a 40-token episode is one fused `nn.GRU` call. The first observation enters as token 0 (with
zero normalised actions), so `init_latent` is a learned constant and every observation, the first one
included, takes the same path into the latent (and can be flagged noisy the same way).

Raw data in, normalised tokens out: actions and proprioception are normalised with Gaussian normalisers
(buffers, saved in the checkpoint), images (uint8) are mapped to [-1, 1].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from df_agent.backbones.layers import LevelEmbedding, ResMLP
from df_agent.checkpoint import register_model_type
from df_agent.diffusion import NoiseSchedule, Parameterization, to_x0, training_target
from df_agent.imitation.config import ImitationConfig
from df_agent.normalizer import Normalizer

MODEL_TYPE = "df_imitation"


class ImitationDFModel(nn.Module):
    model_type = MODEL_TYPE

    def __init__(self, config: ImitationConfig) -> None:
        super().__init__()
        self.config = config
        self.parameterization = Parameterization.parse(config.parameterization)
        self.schedule = NoiseSchedule(config.schedule, config.num_levels)
        self.action_normalizer = Normalizer(config.action_dim)
        self.proprio_normalizer = Normalizer(max(config.proprio_dim, 1))
        self.level_embedding = LevelEmbedding(config.level_embedding_dim, config.num_levels)

        channels_in = 3 * len(config.cameras)
        width = config.conv_channels
        reduced = config.image_size // 4
        self.image_encoder = nn.Sequential(
            nn.Conv2d(channels_in, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(2 * width * reduced * reduced, config.hidden_dim),
        )
        vector_dim = config.action_chunk_dim + config.proprio_dim
        self.vector_encoder = nn.Linear(vector_dim, config.hidden_dim)
        self.embed = ResMLP(2 * config.hidden_dim + config.level_embedding_dim, config.hidden_dim,
                            config.hidden_dim, blocks=1)
        self.initial_latent = nn.Parameter(torch.zeros(config.latent_dim))
        self.gru = nn.GRU(config.hidden_dim, config.latent_dim, num_layers=1, batch_first=True)
        self.head = ResMLP(config.latent_dim + config.hidden_dim, config.hidden_dim, config.hidden_dim, blocks=2)
        self.vector_head = nn.Linear(config.hidden_dim, vector_dim)
        # A linear read-out is enough for the predicted frames (a world-model by-product at this size) and keeps
        # a CPU training step cheap; the actions are what the policy runs.
        self.image_head = nn.Linear(config.hidden_dim, config.image_dim)

    # -- construction / serialisation ---------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any] | ImitationConfig) -> ImitationDFModel:
        if isinstance(config, dict):
            config = ImitationConfig.from_dict(config)
        return cls(config)

    def config_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    @property
    def token_shape(self) -> tuple[int, ...]:
        return (self.config.token_dim,)

    @torch.no_grad()
    def fit_normalizers(self, actions: Tensor, proprio: Tensor | None) -> None:
        """Fit the action ([..., action_dim]) and proprioception ([..., proprio_dim]) normalisers on data."""
        self.action_normalizer.fit(torch.as_tensor(actions).reshape(-1, self.config.action_dim))
        if self.config.proprio_dim:
            if proprio is None:
                raise ValueError("proprio data is required to fit the proprio normaliser (proprio_dim > 0)")
            self.proprio_normalizer.fit(torch.as_tensor(proprio).reshape(-1, self.config.proprio_dim))

    # -- raw <-> normalised tokens ------------------------------------------------------------------------------
    def build_tokens(self, actions: Tensor, proprio: Tensor | None, images: Tensor,
                     no_actions: Tensor | None = None) -> Tensor:
        """Raw parts -> normalised flat tokens [B, T, token_dim].

        actions [B, T, H, A] (raw env actions), proprio [B, T, P], images [B, T, cameras, 3, S, S] (uint8 or
        floats in 0..255); no_actions [B, T] bool marks tokens without actions (token 0): their action part is
        0 in normalised space.
        """
        cfg = self.config
        batch, length = actions.shape[:2]
        expected = (batch, length, cfg.actions_per_token, cfg.action_dim)
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions must have shape {expected} [B, T, actions_per_token, action_dim], "
                             f"got {tuple(actions.shape)}")
        image_shape = (batch, length, len(cfg.cameras), 3, cfg.image_size, cfg.image_size)
        if tuple(images.shape) != image_shape:
            raise ValueError(f"images must have shape {image_shape} [B, T, cameras, 3, S, S], "
                             f"got {tuple(images.shape)}")
        action_part = self.action_normalizer.normalize(actions.float()).reshape(batch, length, -1)
        if no_actions is not None:
            action_part = action_part.masked_fill(no_actions.bool()[..., None], 0.0)
        parts = [action_part]
        if cfg.proprio_dim:
            if proprio is None or tuple(proprio.shape) != (batch, length, cfg.proprio_dim):
                got = None if proprio is None else tuple(proprio.shape)
                raise ValueError(f"proprio must have shape {(batch, length, cfg.proprio_dim)}, got {got}")
            parts.append(self.proprio_normalizer.normalize(proprio.float()))
        parts.append(images.float().reshape(batch, length, -1) / 127.5 - 1.0)
        return torch.cat(parts, dim=-1)

    def split_tokens(self, tokens: Tensor) -> dict[str, Tensor]:
        """Normalised tokens [..., token_dim] -> raw parts: actions [..., H, A], proprio [..., P], images
        [..., cameras, 3, S, S] as floats in 0..255."""
        cfg = self.config
        chunk, proprio_end = cfg.action_chunk_dim, cfg.action_chunk_dim + cfg.proprio_dim
        lead = tokens.shape[:-1]
        actions = self.action_normalizer.unnormalize(tokens[..., :chunk].reshape(*lead, cfg.actions_per_token,
                                                                                 cfg.action_dim))
        proprio = self.proprio_normalizer.unnormalize(tokens[..., chunk:proprio_end]) if cfg.proprio_dim else None
        images = ((tokens[..., proprio_end:] + 1.0) * 127.5).clamp(0, 255)
        images = images.reshape(*lead, len(cfg.cameras), 3, cfg.image_size, cfg.image_size)
        return {"actions": actions, "proprio": proprio, "images": images}

    # -- the model interface of df_agent.sampler ----------------------------------------------------------
    def init_latent(self, context: Tensor | None = None, context_level: Tensor | int = 0,
                    batch_size: int | None = None) -> Tensor:
        """z_0: a learned constant (observations enter as tokens); `context` only gives the batch size."""
        if batch_size is None:
            if context is None:
                raise ValueError("init_latent needs a context tensor [B, ...] or batch_size")
            batch_size = context.shape[0]
        return self.initial_latent[None].expand(batch_size, -1)

    def forward_sequence(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens [B, T, D] at levels [B, T] -> (latents [B, T, L], x0_hat [B, T, D]), normalised space."""
        latents, prediction = self._predict(z0, x_noisy, k)
        x0 = to_x0(self.parameterization, prediction, x_noisy, k, self.schedule)
        return latents, self._clip(x0)

    def step(self, z_prev: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """One token: (z_{t-1}, x_t^k, k) -> (z_t, x0_hat_t)."""
        latents, x0 = self.forward_sequence(z_prev, x_noisy[:, None], k[:, None])
        return latents[:, 0], x0[:, 0]

    def _clip(self, x0: Tensor) -> Tensor:
        cfg = self.config
        vector_end = cfg.action_chunk_dim + cfg.proprio_dim
        vector, images = x0[..., :vector_end], x0[..., vector_end:].clamp(-1.0, 1.0)
        if cfg.clip_x0 is not None:
            vector = vector.clamp(-cfg.clip_x0, cfg.clip_x0)
        return torch.cat([vector, images], dim=-1)

    def _predict(self, z0: Tensor, x_noisy: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.config
        batch, length, dim = x_noisy.shape
        if dim != cfg.token_dim:
            raise ValueError(f"tokens must have {cfg.token_dim} features, got {dim}")
        if tuple(k.shape) != (batch, length):
            raise ValueError(f"noise levels must have shape {(batch, length)}, got {tuple(k.shape)}")
        vector_end = cfg.action_chunk_dim + cfg.proprio_dim
        images = x_noisy[..., vector_end:].reshape(batch * length, 3 * len(cfg.cameras), cfg.image_size,
                                                   cfg.image_size)
        image_features = self.image_encoder(images).reshape(batch, length, -1)
        vector_features = self.vector_encoder(x_noisy[..., :vector_end])
        features = self.embed(torch.cat([image_features, vector_features, self.level_embedding(k)], dim=-1))
        latents, _ = self.gru(features, z0[None].contiguous())
        hidden = F.silu(self.head(torch.cat([latents, features], dim=-1)))
        vector_out = self.vector_head(hidden)
        image_out = self.image_head(hidden)
        return latents, torch.cat([vector_out, image_out], dim=-1)

    def _predict_teacher_forced(self, z0: Tensor, clean: Tensor, noisy: Tensor, k: Tensor) -> Tensor:
        """Next-token diffusion with teacher forcing: token t is denoised from the latent of the clean history
        z_{t-1} (one GRU step per token, all tokens in parallel); the history is never noisy."""
        batch, length, _ = clean.shape
        history, _ = self._predict(z0, clean, torch.zeros_like(k))
        previous = torch.cat([z0[:, None], history[:, :-1]], dim=1).reshape(1, batch * length, -1)
        _, prediction = self._predict(previous[0], noisy.reshape(batch * length, 1, -1), k.reshape(-1, 1))
        return prediction.reshape(batch, length, -1)

    # -- Algorithm 1 ----------------------------------------------------------------------------------------
    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """batch: actions [B, T, H, A], proprio [B, T, P], images [B, T, cameras, 3, S, S] (uint8), optional
        no_actions [B, T] bool (tokens without actions) and mask [B, T] bool (False = padding)."""
        for key in ("actions", "images"):
            if key not in batch:
                raise KeyError(f"batch has no {key!r} entry (keys: {sorted(batch)})")
        tokens = self.build_tokens(batch["actions"], batch.get("proprio"), batch["images"], batch.get("no_actions"))
        if not torch.isfinite(tokens).all():
            raise ValueError("batch contains NaN or inf values")
        batch_size, length, _ = tokens.shape
        mask = batch.get("mask")
        if mask is None:
            mask = torch.ones(batch_size, length, dtype=torch.bool, device=tokens.device)
        elif tuple(mask.shape) != (batch_size, length):
            raise ValueError(f"batch['mask'] must have shape {(batch_size, length)}, got {tuple(mask.shape)}")
        mask = mask.float()

        # Algorithm 1: an independent noise level per token, uniform on 0..K.
        k = torch.randint(0, self.num_levels + 1, (batch_size, length), device=tokens.device)
        noise = torch.randn_like(tokens)
        noisy = self.schedule.q_sample(tokens, k, noise)
        z0 = self.init_latent(batch_size=batch_size)
        if self.config.training_mode == "teacher_forcing":
            prediction = self._predict_teacher_forced(z0, tokens, noisy, k)
        else:
            _, prediction = self._predict(z0, noisy, k)
        target = training_target(self.parameterization, tokens, noise, k, self.schedule)
        squared = (prediction.float() - target).pow(2)

        cfg = self.config
        chunk, vector_end = cfg.action_chunk_dim, cfg.action_chunk_dim + cfg.proprio_dim
        parts = {"action_mse": squared[..., :chunk].mean(-1), "image_mse": squared[..., vector_end:].mean(-1)}
        per_token = cfg.action_loss_weight * parts["action_mse"] + cfg.image_loss_weight * parts["image_mse"]
        if cfg.proprio_dim:
            parts["proprio_mse"] = squared[..., chunk:vector_end].mean(-1)
            per_token = per_token + cfg.proprio_loss_weight * parts["proprio_mse"]
        count = mask.sum().clamp(min=1.0)
        loss = (per_token * mask).sum() / count
        metrics = {"loss": float(loss.detach())}
        metrics.update({name: float((value.detach() * mask).sum() / count) for name, value in parts.items()})
        return loss, metrics


register_model_type(MODEL_TYPE, "df_agent.imitation.model:ImitationDFModel")
