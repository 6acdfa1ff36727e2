"""The DF imitation model (shapes, Algorithm-1 loss, checkpoints) and episode tokenisation / data source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from imitation_helpers import fitted_model, synthetic_episode, tiny_config, write_buffer

from data.imitation_episodes import load_replay_buffer_episodes
from df_agent.checkpoint import load_checkpoint, resolve_model_class, save_checkpoint
from df_agent.imitation import ImitationDFModel
from df_agent.imitation.windows import (
    TeleopTokenSource,
    collate,
    episode_to_tokens,
    resize_frames,
)


def test_forward_shapes_and_token_round_trip():
    config = tiny_config()
    model = fitted_model(config)
    batch, length = 3, 5
    actions = torch.randn(batch, length, config.actions_per_token, config.action_dim)
    proprio = torch.randn(batch, length, config.proprio_dim)
    images = torch.randint(0, 256, (batch, length, 2, 3, 8, 8), dtype=torch.uint8)
    tokens = model.build_tokens(actions, proprio, images)
    assert tokens.shape == (batch, length, config.token_dim) == (batch, length, *model.token_shape)
    parts = model.split_tokens(tokens)
    torch.testing.assert_close(parts["actions"], actions, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(parts["proprio"], proprio, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(parts["images"], images.float(), atol=1e-3, rtol=0)

    z0 = model.init_latent(torch.zeros(batch, 0))
    k = torch.randint(0, model.num_levels + 1, (batch, length))
    latents, x0 = model.forward_sequence(z0, tokens, k)
    assert latents.shape == (batch, length, config.latent_dim)
    assert x0.shape == tokens.shape
    z1, x0_first = model.step(z0, tokens[:, 0], k[:, 0])  # the per-token unit agrees with the sequence
    torch.testing.assert_close(z1, latents[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x0_first, x0[:, 0], atol=1e-5, rtol=1e-5)


def test_causal_latent_does_not_see_the_future():
    model = fitted_model()
    tokens = torch.randn(2, 6, model.config.token_dim)
    k = torch.full((2, 6), 10)
    latents, _ = model.forward_sequence(model.init_latent(batch_size=2), tokens, k)
    changed = tokens.clone()
    changed[:, 4:] += 1.0
    latents_changed, _ = model.forward_sequence(model.init_latent(batch_size=2), changed, k)
    torch.testing.assert_close(latents[:, :4], latents_changed[:, :4])
    assert not torch.allclose(latents[:, 4], latents_changed[:, 4])


def test_no_actions_tokens_have_zero_action_part():
    model = fitted_model()
    cfg = model.config
    actions = torch.randn(1, 2, cfg.actions_per_token, cfg.action_dim)
    tokens = model.build_tokens(actions, torch.randn(1, 2, 8), torch.zeros(1, 2, 2, 3, 8, 8),
                                no_actions=torch.tensor([[True, False]]))
    assert torch.all(tokens[0, 0, : cfg.action_chunk_dim] == 0)
    assert torch.any(tokens[0, 1, : cfg.action_chunk_dim] != 0)


def test_bad_shapes_give_clear_errors():
    model = fitted_model()
    with pytest.raises(ValueError, match="actions must have shape"):
        model.build_tokens(torch.zeros(1, 2, 3, 7), torch.zeros(1, 2, 8), torch.zeros(1, 2, 2, 3, 8, 8))
    with pytest.raises(ValueError, match="images must have shape"):
        model.build_tokens(torch.zeros(1, 2, 4, 7), torch.zeros(1, 2, 8), torch.zeros(1, 2, 2, 3, 16, 16))
    with pytest.raises(KeyError, match="images"):
        model.loss({"actions": torch.zeros(1, 2, 4, 7)})
    with pytest.raises(ValueError, match="image_size must be a multiple of 4"):
        tiny_config(image_size=10)


def test_episode_tokens_layout():
    config = tiny_config()  # 4 actions per token
    episode = synthetic_episode(10, seed=1)
    proprio = np.concatenate([episode["ee_pose"], episode["gripper_width"]], axis=1)
    frames = {"front": episode["front_image"], "wrist": episode["wrist_image"]}
    tokens = episode_to_tokens(episode["action"], proprio, frames, config, hold_tokens=1)
    # ceil(10 / 4) + 1 + 1 hold token
    assert len(tokens) == 5
    assert tokens.no_actions.tolist() == [True, False, False, False, False]
    torch.testing.assert_close(tokens.actions[1], torch.from_numpy(episode["action"][0:4]))
    torch.testing.assert_close(tokens.actions[2], torch.from_numpy(episode["action"][4:8]))
    torch.testing.assert_close(tokens.actions[3, :2], torch.from_numpy(episode["action"][8:10]))
    # past the end: hold (no motion, last gripper command)
    hold = torch.zeros(7)
    hold[6] = float(episode["action"][-1, 6])
    assert torch.all(tokens.actions[3, 2:] == hold) and torch.all(tokens.actions[4] == hold)
    # token n observes o_{min(nH, L-1)}
    for n, index in enumerate([0, 4, 8, 9, 9]):
        torch.testing.assert_close(tokens.proprio[n], torch.from_numpy(proprio[index]))
        expected = resize_frames(episode["front_image"][index:index + 1], 8)[0]
        assert torch.equal(tokens.images[n, 0], expected)


def test_resize_frames_is_area_average():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    frames[0, :2, :2] = 200
    out = resize_frames(frames, 2)
    assert out.shape == (1, 3, 2, 2)
    assert out[0, 0].tolist() == [[200, 0], [0, 0]]
    with pytest.raises(ValueError, match="RGB"):
        resize_frames(np.zeros((1, 4, 4)), 2)


def test_replay_buffer_source_and_loss_decreases(tmp_path):
    config = tiny_config()
    write_buffer(tmp_path / "demos.zarr")
    tokens, actions, proprio = load_replay_buffer_episodes(tmp_path / "demos.zarr", config)
    assert [len(t) for t in tokens] == [12, 14, 15]  # ceil(L / 4) + 2 for L = 37, 45, 52
    source = TeleopTokenSource(tokens)
    batch = source.sample_batch(4, torch.Generator().manual_seed(0))
    again = source.sample_batch(4, torch.Generator().manual_seed(0))
    assert all(torch.equal(batch[key], again[key]) for key in batch)  # only the given generator is used
    assert batch["images"].dtype == torch.uint8 and batch["mask"].shape == batch["no_actions"].shape
    assert torch.all(batch["no_actions"][:, 0]) and batch["mask"][:, 0].all()

    torch.manual_seed(0)
    model = ImitationDFModel(config)
    model.fit_normalizers(torch.from_numpy(np.concatenate(actions)), torch.from_numpy(np.concatenate(proprio)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    fixed = collate(tokens)
    losses = []
    for _ in range(30):
        loss, metrics = model.loss(fixed)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    assert set(metrics) == {"loss", "action_mse", "image_mse", "proprio_mse"}
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_windows_for_the_memoryless_baseline(tmp_path):
    config = tiny_config()
    write_buffer(tmp_path / "demos.zarr")
    tokens, _, _ = load_replay_buffer_episodes(tmp_path / "demos.zarr", config)
    source = TeleopTokenSource(tokens, window_tokens=2)
    batch = source.sample_batch(64, torch.Generator().manual_seed(1))
    assert batch["actions"].shape[1] == 2 and batch["mask"].all()
    assert not batch["no_actions"][:, 0].all()  # windows start anywhere, not only at the episode start


def test_missing_key_is_named(tmp_path):
    from data.replay_buffer import ReplayBuffer

    buffer = ReplayBuffer.create(tmp_path / "bad.zarr")
    episode = synthetic_episode(20, seed=0)
    del episode["wrist_image"]
    buffer.add_episode(episode)
    with pytest.raises(KeyError, match="wrist_image"):
        load_replay_buffer_episodes(tmp_path / "bad.zarr", tiny_config())


def test_checkpoint_round_trip(tmp_path):
    model = fitted_model()
    assert resolve_model_class("df_imitation") is ImitationDFModel
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert isinstance(loaded, ImitationDFModel)
    tokens = torch.randn(2, 3, model.config.token_dim)
    k = torch.randint(0, 101, (2, 3))
    z0 = model.init_latent(batch_size=2)
    torch.testing.assert_close(loaded.forward_sequence(z0, tokens, k)[1], model.forward_sequence(z0, tokens, k)[1])
    torch.testing.assert_close(loaded.action_normalizer.scale, model.action_normalizer.scale)


def test_teacher_forcing_baseline_conditions_on_clean_history_only():
    model = fitted_model(tiny_config(training_mode="teacher_forcing"))
    clean = torch.randn(2, 5, model.config.token_dim)
    noisy = torch.randn(2, 5, model.config.token_dim)
    k = torch.randint(1, 101, (2, 5))
    z0 = model.init_latent(batch_size=2)
    prediction = model._predict_teacher_forced(z0, clean, noisy, k)
    changed = noisy.clone()
    changed[:, :3] += 1.0  # other tokens' noisy inputs do not reach token 3's prediction ...
    torch.testing.assert_close(model._predict_teacher_forced(z0, clean, changed, k)[:, 3:], prediction[:, 3:])
    history = clean.clone()
    history[:, 1] += 1.0  # ... the clean history does
    assert not torch.allclose(model._predict_teacher_forced(z0, history, noisy, k)[:, 3], prediction[:, 3])
    # the teacher-forced prediction of a token equals one unit step from the clean history's latent
    latents, _ = model._predict(z0, clean, torch.zeros_like(k))
    _, step_prediction = model._predict(latents[:, 2], noisy[:, 3:4], k[:, 3:4])
    torch.testing.assert_close(prediction[:, 3], step_prediction[:, 0], atol=1e-5, rtol=1e-5)
    loss, _ = model.loss({"actions": torch.randn(2, 5, 4, 7), "proprio": torch.randn(2, 5, 8),
                          "images": torch.randint(0, 256, (2, 5, 2, 3, 8, 8), dtype=torch.uint8)})
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="training_mode"):
        tiny_config(training_mode="other")


def test_offline_chunk_error_memory_and_memoryless():
    from df_agent.imitation.offline import chunk_prediction_error

    config = tiny_config()
    model = fitted_model(config)
    episode = synthetic_episode(30, seed=2)
    proprio = np.concatenate([episode["ee_pose"], episode["gripper_width"]], axis=1)
    frames = {"front": episode["front_image"], "wrist": episode["wrist_image"]}
    tokens = episode_to_tokens(episode["action"], proprio, frames, config)
    full = chunk_prediction_error(model, [tokens], memory=True, sampling_steps=2)
    alone = chunk_prediction_error(model, [tokens], memory=False, sampling_steps=2)
    assert full["tokens"] == alone["tokens"] == len(tokens) - 1
    assert full["action_mse"] != alone["action_mse"]  # longer context, other latents
    # with a single token of context both see the same thing: identical results
    short = episode_to_tokens(episode["action"][:3], proprio[:3], {k: v[:3] for k, v in frames.items()}, config,
                              hold_tokens=0)
    assert len(short) == 2
    assert chunk_prediction_error(model, [short], memory=True, sampling_steps=2) == {
        **chunk_prediction_error(model, [short], memory=False, sampling_steps=2), "memory": True}
