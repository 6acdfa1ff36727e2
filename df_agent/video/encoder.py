"""A small convolutional autoencoder trained on the dataset's frames; its bottleneck features feed a Fréchet
distance between generated and real frames (an FVD-like measure at the scale of this project)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


class FrameAutoencoder(nn.Module):
    model_type = "video_feature_encoder"

    def __init__(self, resolution: int = 32, feature_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        self.resolution, self.feature_dim, self.width = resolution, feature_dim, width
        downs = int(np.log2(resolution // 4))
        layers: list[nn.Module] = []
        channels = 3
        for i in range(downs):
            out = width * min(2**i, 4)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.SiLU()]
            channels = out
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 16, feature_dim))
        up: list[nn.Module] = []
        for i in reversed(range(downs)):
            out = 3 if i == 0 else width * min(2 ** (i - 1), 4)
            up += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1)]
            if i:
                up.append(nn.SiLU())
            channels = out
        self.decoder_input = nn.Linear(feature_dim, width * min(2 ** (downs - 1), 4) * 16)
        self.decoder = nn.Sequential(*up)
        self._bottleneck_channels = width * min(2 ** (downs - 1), 4)

    @classmethod
    def from_config(cls, config: dict) -> FrameAutoencoder:
        return cls(**config)

    def config_dict(self) -> dict:
        return {"resolution": self.resolution, "feature_dim": self.feature_dim, "width": self.width}

    @staticmethod
    def _to_input(frames: Tensor) -> Tensor:
        return frames.float().permute(0, 3, 1, 2) / 127.5 - 1.0

    def features(self, frames: Tensor) -> Tensor:
        """uint8 frames [N, H, W, 3] -> features [N, feature_dim]."""
        return self.encoder(self._to_input(frames))

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x = self._to_input(batch["frames"])
        h = self.decoder_input(self.encoder(x)).reshape(len(x), self._bottleneck_channels, 4, 4)
        loss = ((self.decoder(h) - x) ** 2).mean()
        return loss, {"loss": float(loss.detach())}


@torch.no_grad()
def encode_frames(encoder: FrameAutoencoder, frames: np.ndarray | Tensor, batch: int = 512) -> np.ndarray:
    frames = torch.as_tensor(np.asarray(frames)).reshape(-1, *np.asarray(frames).shape[-3:])
    encoder.eval()
    return torch.cat([encoder.features(frames[i : i + batch]) for i in range(0, len(frames), batch)]).numpy()


def train_feature_encoder(frames: np.ndarray, steps: int = 400, batch_size: int = 64, seed: int = 0,
                          resolution: int | None = None) -> FrameAutoencoder:
    """Fit the autoencoder on uint8 frames [N, H, W, 3] (seeded: the same data gives the same encoder)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    encoder = FrameAutoencoder(resolution or frames.shape[1])
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    data = torch.from_numpy(np.ascontiguousarray(frames))
    for step in range(steps):
        index = torch.randint(len(data), (batch_size,), generator=generator)
        loss, metrics = encoder.loss({"frames": data[index]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % 100 == 0:
            log.info("feature encoder step %d: reconstruction mse %.4f", step + 1, metrics["loss"])
    return encoder.eval()


def load_or_train_encoder(directory: str | Path, frames: np.ndarray, steps: int = 400) -> FrameAutoencoder:
    """Reuse the encoder checkpoint in `directory` if it exists (so numbers stay comparable), else train one."""
    from df_agent.checkpoint import load_checkpoint, register_model_type, save_checkpoint

    register_model_type(FrameAutoencoder.model_type, "df_agent.video.encoder:FrameAutoencoder")
    directory = Path(directory)
    if (directory / "config.json").exists():
        encoder = load_checkpoint(directory)
        if encoder.resolution != frames.shape[1]:
            raise ValueError(f"feature encoder in {directory} is for {encoder.resolution}px frames, "
                             f"data has {frames.shape[1]}px")
        return encoder
    encoder = train_feature_encoder(frames, steps=steps)
    save_checkpoint(directory, encoder, metadata={"trained_on_frames": len(frames), "steps": steps})
    return encoder
