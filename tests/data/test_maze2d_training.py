"""The maze2d training job (`data.maze2d.training`): recipe checks, the model built on the windows' statistics,
and a short real run on a generated Minari dataset that records its compute in the checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from data.maze2d.generate import generate_maze2d_dataset
from data.maze2d.training import Maze2DModelRecipe, WindowSource, build_model, default_train_config, train_maze2d
from data.maze2d.windows import Maze2DWindows
from df_agent.checkpoint import load_checkpoint

TINY = Maze2DModelRecipe(frame_stack=2, window_tokens=3, latent_dim=8, hidden_dim=16, mlp_layers=2)


def _windows(frame_stack: int = 2, window_tokens: int = 3) -> Maze2DWindows:
    rng = np.random.default_rng(0)
    observations = [rng.normal(loc=[1.0, 2.0, 0.0, 0.0], scale=[0.5, 0.3, 1.0, 1.0], size=(n + 1, 4)) for n in (20, 9)]
    actions = [rng.uniform(-1, 1, size=(n, 2)) for n in (20, 9)]
    return Maze2DWindows(observations, actions, window_tokens, frame_stack)


def _umaze_run_config(tmp_path, monkeypatch, steps: int):
    """A generated 300-step umaze dataset in a private Minari root, and a CPU train config of `steps` updates."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    generate_maze2d_dataset("umaze", steps=300, segment_steps=300, seed=0, progress=False)
    train_config = default_train_config()
    train_config.steps, train_config.batch_size, train_config.warmup_steps = steps, 4, 1
    train_config.checkpoint_every, train_config.device, train_config.progress = 0, "cpu", False
    return train_config


def test_the_recipe_refuses_empty_tokens_and_windows():
    with pytest.raises(ValueError, match="--frame-stack and --window-tokens must be >= 1"):
        Maze2DModelRecipe(frame_stack=0)
    with pytest.raises(ValueError, match="--frame-stack and --window-tokens must be >= 1"):
        Maze2DModelRecipe(window_tokens=0)


def test_the_model_carries_the_token_layout_and_the_windows_normalisers():
    windows = _windows()
    model = build_model(windows, TINY)
    config = model.config
    assert (config.token_dim, config.context_dim) == (windows.token_dim, windows.context_dim) == (12, 4)
    assert (config.latent_dim, config.hidden_dim, config.mlp_layers, config.backbone) == (8, 16, 2, "fast")
    assert config.token_spec["frame_stack"] == 2
    tokens = windows.token_normalizer()
    torch.testing.assert_close(model.token_normalizer.shift, tokens.shift.to(model.token_normalizer.shift.dtype))
    contexts = windows.context_normalizer()
    torch.testing.assert_close(model.context_normalizer.scale, contexts.scale.to(model.context_normalizer.scale.dtype))


def test_the_window_source_draws_batches_and_describes_its_data():
    windows = _windows()
    source = WindowSource(windows, "df-agent/maze2d-test-v0", num_steps=29)
    batch = source.sample_batch(4, torch.Generator().manual_seed(0))
    assert batch["tokens"].shape == (4, 3, 12)
    assert source.describe() == {"dataset_id": "df-agent/maze2d-test-v0", "dataset_steps": 29,
                                 "windows": len(windows), "window_tokens": 3, "frame_stack": 2}


def test_a_short_run_records_its_compute_in_the_final_and_exported_checkpoint(tmp_path, monkeypatch):
    train_config = _umaze_run_config(tmp_path, monkeypatch, steps=3)
    summary = train_maze2d("umaze", TINY, train_config, tmp_path / "run", export=tmp_path / "export")
    assert summary["checkpoint"] == str(tmp_path / "run" / "final") and summary["export"] == str(tmp_path / "export")
    assert summary["steps"] == 3 and not summary["stopped_early"] and summary["last_loss"] is not None
    for directory in (tmp_path / "run" / "final", tmp_path / "export"):
        metadata = json.loads((directory / "config.json").read_text())["metadata"]
        assert metadata["maze"] == "umaze" and metadata["dataset_id"] == "df-agent/maze2d-umaze-v0"
        assert metadata["window_tokens"] == 3 and metadata["frame_stack"] == 2
        assert metadata["compute"]["steps"] == 3 and metadata["compute"]["device"] == "cpu"
        assert metadata["compute"]["parameters"] == summary["parameters"]
    # The rewrite that adds the compute keeps the trained weights.
    final, exported = load_checkpoint(tmp_path / "run" / "final"), load_checkpoint(tmp_path / "export")
    for a, b in zip(final.state_dict().values(), exported.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_init_from_fine_tunes_a_checkpoint_and_keeps_its_normalisers(tmp_path, monkeypatch):
    train_config = _umaze_run_config(tmp_path, monkeypatch, steps=2)
    first = train_maze2d("umaze", TINY, train_config, tmp_path / "first")
    config_path = tmp_path / "first" / "final" / "config.json"
    config = json.loads(config_path.read_text())
    config["metadata"]["planner_defaults"] = {"goal_reward": "geodesic"}
    config_path.write_text(json.dumps(config))
    # A second dataset with other statistics: the fine-tuned model must keep the first model's normalisers.
    generate_maze2d_dataset("umaze", steps=300, segment_steps=300, seed=5, hold_steps=40, progress=False,
                            dataset_id="df-agent/maze2d-umaze-hold-v0")
    wider = Maze2DModelRecipe(frame_stack=2, window_tokens=3, latent_dim=32, hidden_dim=64, mlp_layers=2)
    tuned = train_maze2d("umaze", wider, train_config, tmp_path / "tuned", dataset_id="df-agent/maze2d-umaze-hold-v0",
                         init_from=first["checkpoint"])
    base, model = load_checkpoint(first["checkpoint"]), load_checkpoint(tuned["checkpoint"])
    assert model.config.latent_dim == 8  # the checkpoint's architecture, not the recipe's
    torch.testing.assert_close(model.token_normalizer.shift, base.token_normalizer.shift)
    changed = [not torch.equal(a, b) for a, b in zip(base.state_dict().values(), model.state_dict().values())]
    assert any(changed)  # it was trained further
    metadata = json.loads((tmp_path / "tuned" / "final" / "config.json").read_text())["metadata"]
    assert metadata["init_from"] == first["checkpoint"]
    assert metadata["planner_defaults"] == {"goal_reward": "geodesic"}  # inherited from the base checkpoint


def test_init_from_refuses_a_checkpoint_whose_tokens_do_not_fit(tmp_path, monkeypatch):
    from df_agent.checkpoint import CheckpointError

    train_config = _umaze_run_config(tmp_path, monkeypatch, steps=1)
    first = train_maze2d("umaze", TINY, train_config, tmp_path / "first")
    other_stack = Maze2DModelRecipe(frame_stack=3, window_tokens=3, latent_dim=8, hidden_dim=16, mlp_layers=2)
    with pytest.raises(CheckpointError, match=r"frame_stack 2.*frame_stack 3"):
        train_maze2d("umaze", other_stack, train_config, tmp_path / "second", init_from=first["checkpoint"])
