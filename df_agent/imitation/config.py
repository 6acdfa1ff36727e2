"""`ImitationConfig`: the settings of the DF imitation model (tokens = camera images + an action chunk)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from df_agent.diffusion import Parameterization

SCHEDULES = ("linear", "cosine", "sigmoid")
# "diffusion_forcing": Algorithm 1, an independent noise level per token. "teacher_forcing": the next-token
# diffusion baseline, history always clean (k = 0) and only the predicted token noised.
TRAINING_MODES = ("diffusion_forcing", "teacher_forcing")


@dataclass
class ImitationConfig:
    """Token layout and network sizes.

    Token n of an episode (n >= 1) bundles the `actions_per_token` actions a_{(n-1)H} .. a_{nH-1} with the
    observation o_{nH} they lead to (proprioception and the camera images, area-downsampled to `image_size`);
    token 0 holds o_0 and zero (normalised) actions, so every observation enters the latent the same way.
    The paper's robot setting is 32x32 images, 15 actions per token, x0-prediction, cosine schedule; the
    defaults here are sized for CPU training on the 10 Hz FrankaFruitSwap demos (22-39 s, 220-390 steps):
    10 actions (1 s) per token gives 23-40 tokens per demonstration, as the paper's 40 tokens per demo.
    """

    action_dim: int = 7
    proprio_dim: int = 8
    actions_per_token: int = 10
    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: int = 16
    latent_dim: int = 256
    hidden_dim: int = 256
    conv_channels: int = 16
    level_embedding_dim: int = 64
    num_levels: int = 1000
    schedule: str = "cosine"
    parameterization: str = "x0"
    action_loss_weight: float = 1.0
    proprio_loss_weight: float = 1.0
    image_loss_weight: float = 0.25  # the images are a world-model by-product; the actions are what runs
    clip_x0: float | None = 5.0  # clip x0 predictions (normalised units) while sampling
    training_mode: str = "diffusion_forcing"
    control_hz: float = 10.0  # of the data: one action per 1 / control_hz seconds
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (data source, key names)

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        problems = []
        for name in ("action_dim", "actions_per_token", "image_size", "latent_dim", "hidden_dim",
                     "conv_channels", "num_levels"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.proprio_dim < 0:
            problems.append(f"proprio_dim must be >= 0 (got {self.proprio_dim})")
        if not self.cameras:
            problems.append("cameras must name at least one camera")
        if self.image_size % 4:
            problems.append(f"image_size must be a multiple of 4 (two stride-2 convolutions), got {self.image_size}")
        if self.level_embedding_dim % 2:
            problems.append(f"level_embedding_dim must be even (got {self.level_embedding_dim})")
        if self.training_mode not in TRAINING_MODES:
            problems.append(f"training_mode must be one of {TRAINING_MODES} (got {self.training_mode!r})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES} (got {self.schedule!r})")
        for name in ("action_loss_weight", "proprio_loss_weight", "image_loss_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if problems:
            raise ValueError("invalid ImitationConfig: " + "; ".join(problems))
        Parameterization.parse(self.parameterization)

    # -- token layout (flat vector: [actions H*A | proprio P | images C*3*S*S]) -----------------------------
    @property
    def action_chunk_dim(self) -> int:
        return self.actions_per_token * self.action_dim

    @property
    def image_dim(self) -> int:
        return len(self.cameras) * 3 * self.image_size * self.image_size

    @property
    def token_dim(self) -> int:
        return self.action_chunk_dim + self.proprio_dim + self.image_dim

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["cameras"] = list(self.cameras)
        return data

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ImitationConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ImitationConfig keys: {unknown}")
        return cls(**values)
