"""Small synthetic episodes and models for the imitation tests (kept tiny so the folder runs in seconds)."""

from __future__ import annotations

import numpy as np

from df_agent.imitation import ImitationConfig, ImitationDFModel


def tiny_config(**changes) -> ImitationConfig:
    values = dict(image_size=8, actions_per_token=4, latent_dim=32, hidden_dim=32, conv_channels=4,
                  level_embedding_dim=16, num_levels=100)
    values.update(changes)
    return ImitationConfig(**values)


def synthetic_episode(length: int, seed: int, image_size: int = 32) -> dict[str, np.ndarray]:
    """Arrays with the replay-buffer keys of `df-agent data import-bags` (FrankaFruitSwap layout)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float32)[:, None]
    phase = rng.uniform(0, 2 * np.pi)
    action = np.concatenate([np.sin(t / 5 + phase) * np.ones((1, 3)), np.zeros((length, 3)),
                             (t % 40 < 20).astype(np.float32)], axis=1).astype(np.float32)
    ee_pose = np.concatenate([0.5 + 0.1 * np.sin(t / 7 + phase) * np.ones((1, 3)),
                              np.tile([[0.0, 1.0, 0.0, 0.0]], (length, 1))], axis=1).astype(np.float32)
    base = rng.integers(0, 255, size=(1, image_size, image_size, 3))
    front = ((base + 3 * t[:, :, None, None]) % 255).astype(np.uint8)
    wrist = (255 - front).astype(np.uint8)
    return {"action": action, "ee_pose": ee_pose, "gripper_width": 0.08 * action[:, 6:7],
            "front_image": front, "wrist_image": wrist}


def write_buffer(path, lengths=(37, 45, 52), image_size: int = 32):
    from data.replay_buffer import ReplayBuffer

    buffer = ReplayBuffer.create(path)
    for i, length in enumerate(lengths):
        buffer.add_episode(synthetic_episode(length, seed=i, image_size=image_size))
    return buffer


def fitted_model(config: ImitationConfig | None = None, seed: int = 0) -> ImitationDFModel:
    import torch

    torch.manual_seed(seed)
    model = ImitationDFModel(config or tiny_config())
    episode = synthetic_episode(60, seed=seed)
    proprio = np.concatenate([episode["ee_pose"], episode["gripper_width"]], axis=1)
    model.fit_normalizers(torch.from_numpy(episode["action"]), torch.from_numpy(proprio))
    return model.eval()
