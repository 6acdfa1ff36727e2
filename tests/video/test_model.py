"""The video DF unit: interface, shapes, the three training modes and a loss that goes down."""

from __future__ import annotations

import pytest
import torch

from df_agent.checkpoint import load_checkpoint, save_checkpoint
from df_agent.video.config import VideoModelConfig, gpu_64_config, tiny_config
from df_agent.video.frames import frames_to_tokens, tokens_to_frames
from df_agent.video.model import VideoDFModel


def _video(batch: int = 2, frames: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    # Smooth moving gradients: learnable structure, unlike pure noise.
    t = torch.arange(frames)[None, :, None, None, None]
    x = torch.arange(32)[None, None, None, :, None]
    y = torch.arange(32)[None, None, :, None, None]
    phase = torch.randint(0, 32, (batch, 1, 1, 1, 1), generator=generator)
    channel = torch.tensor([1.0, 0.5, 0.2])[None, None, None, None, :]
    return (127 + 120 * torch.sin((x + y + 3 * t + phase) / 5.0) * channel).round().clamp(0, 255).to(torch.uint8)


def test_tokens_round_trip_and_stack_frames() -> None:
    video = _video(2, 8)
    tokens = frames_to_tokens(video, frame_stack=2)
    assert tokens.shape == (2, 4, 6, 32, 32) and tokens.min() >= -1 and tokens.max() <= 1
    assert torch.equal(tokens_to_frames(tokens, 2), video)
    with pytest.raises(ValueError, match="stacked"):
        frames_to_tokens(video[:, :7], 2)


def test_unit_interface_shapes() -> None:
    model = VideoDFModel(tiny_config())
    z0 = model.init_latent(3)
    assert z0.shape == (3, 24, 16, 16)  # latent at the folded 16x16 resolution
    x = torch.randn(3, *model.token_shape)
    z, x0_hat = model.step(z0, x, torch.tensor([0, 500, 1000]))
    assert z.shape == z0.shape and x0_hat.shape == x.shape and x0_hat.abs().max() <= 1
    latents, estimates = model.forward_sequence(z0, torch.randn(3, 5, *model.token_shape),
                                                torch.full((3, 5), 10))
    assert latents.shape == (3, 5, *z0.shape[1:]) and estimates.shape == (3, 5, *model.token_shape)
    with pytest.raises(ValueError, match="tokens must be"):
        model.step(z0, torch.randn(3, 5, 32, 32), 0)


def test_configs_round_trip_and_reject_bad_values() -> None:
    for config in (tiny_config(), VideoModelConfig(), gpu_64_config()):
        assert VideoModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="training_mode"):
        tiny_config(training_mode="magic")
    with pytest.raises(ValueError, match="unknown"):
        VideoModelConfig.from_dict({"resolution": 32, "colour": "red"})
    # A latent narrower than a folded token (12 channels x 2 x 2 = 48) cannot carry the noise it must predict.
    with pytest.raises(ValueError, match="latent_channels \\(16\\) and gru_input_channels \\(64\\) must be >= the 48"):
        VideoModelConfig(latent_channels=16)
    assert VideoModelConfig(patch_size=1, latent_channels=16, gru_input_channels=16).latent_channels == 16


def test_checkpoint_round_trip(tmp_path) -> None:
    model = VideoDFModel(tiny_config(training_mode="full_sequence"))
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded, VideoDFModel) and loaded.config == model.config
    x = torch.randn(1, *model.token_shape)
    expected = model.eval().step(model.init_latent(1), x, 7)[1]
    torch.testing.assert_close(loaded.step(loaded.init_latent(1), x, 7)[1], expected)


def test_full_sequence_mode_shares_levels_and_df_does_not() -> None:
    torch.manual_seed(0)
    full = VideoDFModel(tiny_config(training_mode="full_sequence")).sample_levels(4, 6)
    assert (full == full[:, :1]).all()
    independent = VideoDFModel(tiny_config()).sample_levels(4, 6)
    assert not (independent == independent[:, :1]).all()


@pytest.mark.parametrize("mode", ["diffusion_forcing", "teacher_forcing", "full_sequence"])
def test_a_few_training_steps_reduce_the_loss(mode: str) -> None:
    torch.manual_seed(0)
    model = VideoDFModel(tiny_config(training_mode=mode))
    batch = {"video": _video(4, 8), "levels": torch.tensor([[100, 300, 500, 700]] * 4)}
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate() -> float:
        torch.manual_seed(123)  # the same noise every time: the loss is a deterministic function of the weights
        with torch.no_grad():
            return model.loss(batch)[0].item()

    before = evaluate()
    for step in range(15):
        torch.manual_seed(step)
        loss, metrics = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert set(metrics) == {"loss", "mse"}
    assert evaluate() < 0.85 * before


def test_loss_rejects_missing_video() -> None:
    with pytest.raises(KeyError, match="video"):
        VideoDFModel(tiny_config()).loss({"frames": torch.zeros(1)})
    with pytest.raises(ValueError, match="pixels"):
        VideoDFModel(tiny_config()).loss({"video": torch.zeros(1, 8, 16, 16, 3, dtype=torch.uint8)})


def _freeze_latent(model: VideoDFModel) -> None:
    """Make the GRU copy z_{t-1} through (update gate saturated at 1), so z_t ignores the current token."""
    with torch.no_grad():
        model.gru.gates.weight.zero_()
        model.gru.gates.bias.zero_()
        model.gru.gates.bias[model.config.latent_channels:] = 50.0


@pytest.mark.parametrize("sees_token", [True, False])
def test_observation_head_reads_the_noisy_token_only_when_configured(sees_token: bool) -> None:
    torch.manual_seed(0)
    model = VideoDFModel(tiny_config(head_sees_token=sees_token)).eval()
    _freeze_latent(model)
    z0 = torch.randn(2, *model.init_latent(2).shape[1:])
    x, other = torch.randn(2, 2, *model.token_shape).unbind(1)
    with torch.no_grad():
        z_a, prediction_a = model.predict(z0, x, 200)
        z_b, prediction_b = model.predict(z0, other, 200)
        _, prediction_c = model.predict(z0, x, 800)
    torch.testing.assert_close(z_a, z0)
    torch.testing.assert_close(z_b, z0)
    # With z fixed, only a head that reads the token (and its level) can tell these inputs apart.
    assert (not torch.allclose(prediction_a, prediction_b)) is sees_token
    assert (not torch.allclose(prediction_a, prediction_c)) is sees_token


def test_checkpoints_from_before_the_head_option_load_with_the_latent_only_head(tmp_path) -> None:
    legacy = tiny_config(head_sees_token=False, clean_prefix_probability=0.0).to_dict()
    del legacy["head_sees_token"], legacy["clean_prefix_probability"]
    assert VideoModelConfig.from_dict(legacy).head_sees_token is False
    assert VideoModelConfig.from_dict(legacy).clean_prefix_probability == 0.0
    assert tiny_config().head_sees_token is True and VideoModelConfig().head_sees_token is True
    model = VideoDFModel(VideoModelConfig.from_dict(legacy))
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.head_sees_token is False
    # The latent-only head keeps the parameter names earlier checkpoints were written with.
    assert "observation_head.0.conv1.weight" in loaded.state_dict()
    assert "observation_head.0.embed.weight" not in loaded.state_dict()


def test_clean_prefix_windows_in_diffusion_forcing_only() -> None:
    generator = torch.Generator().manual_seed(0)
    always = VideoDFModel(tiny_config(clean_prefix_probability=1.0)).sample_levels(400, 6, generator)
    prefix = (always == 0).int().cumprod(dim=1).sum(dim=1)  # length of the clean run at the start
    # Every window starts clean and keeps at least its last token noisy; prefix lengths 1..5 all occur.
    assert prefix.min() >= 1 and set(prefix.tolist()) == {1, 2, 3, 4, 5}
    assert (always[:, -1] > 0).float().mean() > 0.99
    never = VideoDFModel(tiny_config(clean_prefix_probability=0.0)).sample_levels(400, 6, generator)
    assert (never == 0).float().mean() < 0.01  # independent uniform levels: 1 in 1001 is clean
    some = VideoDFModel(tiny_config(clean_prefix_probability=0.25)).sample_levels(2000, 6, generator)
    assert 0.2 < (some[:, 0] == 0).float().mean() < 0.3
    for mode in ("teacher_forcing", "full_sequence"):
        other = VideoDFModel(tiny_config(training_mode=mode, clean_prefix_probability=1.0)).sample_levels(
            400, 6, generator)
        assert (other == 0).float().mean() < 0.01
    with pytest.raises(ValueError, match="clean_prefix_probability"):
        tiny_config(clean_prefix_probability=1.5)
