"""The video jobs behind `df-agent train video` / `eval video` called as library functions
(`df_agent.video.training`, `df_agent.video.comparison`) on a real, tiny episode store."""

from __future__ import annotations

import math

import pytest

from data.video_maze.generate import VideoMazeConfig, generate_dataset
from data.video_maze.store import VideoEpisodes
from data.video_maze.windows import load_window_source
from df_agent.checkpoint import shipped_checkpoint
from df_agent.video.comparison import ComparisonSettings, compare_video_methods, load_video_model, results_table
from df_agent.video.training import VideoTrainSettings, train_video_model


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "maze.zarr"
    generate_dataset(VideoMazeConfig(num_episodes=3, frames=16, resolution=32, maze_size=5, seed=1), path,
                     progress=False)
    return path


@pytest.fixture(scope="module")
def df_checkpoint(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("df_run")
    summary = train_video_model(VideoTrainSettings(data=str(store), out=out, preset="tiny", steps=2, batch_size=1,
                                                   warmup_steps=1, test_episodes=1, progress=False),
                                load_window_source)
    return summary, out


def test_settings_apply_their_overrides_to_the_preset():
    settings = VideoTrainSettings(data="d", out="o", preset="tiny", mode="teacher_forcing", head_sees_token=False,
                                  parameterization="v", training_frames=12, ema_decay=0.0, max_minutes=0.5)
    config = settings.model_config()
    assert (config.training_mode, config.head_sees_token, config.parameterization) == ("teacher_forcing", False, "v")
    assert config.training_frames == 12 and config.frame_stack == 2  # the rest stays the tiny preset's
    assert VideoTrainSettings(data="d", out="o", preset="tiny").model_config().parameterization == "x0"
    train = settings.train_config()
    assert train.ema_decay is None and train.time_limit_s == 30 and train.extra == {"video_preset": "tiny"}


def test_training_writes_a_final_model_that_records_its_data(df_checkpoint, store):
    summary, out = df_checkpoint
    assert summary["checkpoint"] == str(out / "final") and summary["steps"] == 2 and not summary["stopped_early"]
    model, metadata = load_video_model(summary["checkpoint"])
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert metadata["data"]["test_episodes"] == [2] and metadata["data"]["train_episodes"] == 2


def test_a_preset_of_another_resolution_is_refused(store, tmp_path):
    with pytest.raises(ValueError, match="holds 32px video but preset 'gpu64' expects 64px"):
        train_video_model(VideoTrainSettings(data=str(store), out=tmp_path, preset="gpu64", training_frames=8,
                                             test_episodes=1),
                          load_window_source)


def test_a_df_checkpoint_alone_compares_its_two_rollout_modes(df_checkpoint, tmp_path):
    summary, _ = df_checkpoint
    settings = ComparisonSettings(checkpoint=summary["checkpoint"], out=tmp_path / "results.json", rollouts=1,
                                  context_frames=4, rollout_multiple=2, sampling_steps=2, reference_frames=20,
                                  encoder_steps=2)
    results = compare_video_methods(settings, VideoEpisodes)
    methods = ["diffusion_forcing", "diffusion_forcing_unstabilized"]
    assert list(results["psnr_within_horizon"]) == methods and results["test_episodes"] == [2]
    assert results["checkpoints"]["teacher_forcing"] is None
    assert (tmp_path / "video_feature_encoder" / "config.json").exists()  # the encoder sits next to the results
    assert all(path.startswith(str(tmp_path / "results_media")) for path in results["media"])
    table = results_table(results).splitlines()
    assert [line.split()[0] for line in table[1:-1]] == methods and table[-1].startswith("real held-out frames")
    assert not math.isnan(float(table[-1].split()[-1]))


def test_the_comparison_needs_enough_held_out_episodes(df_checkpoint, tmp_path):
    summary, _ = df_checkpoint
    settings = ComparisonSettings(checkpoint=summary["checkpoint"], out=tmp_path / "r.json", rollouts=2)
    with pytest.raises(ValueError, match="only 1 held-out episodes for 2 rollouts"):
        compare_video_methods(settings, VideoEpisodes)


def test_a_checkpoint_of_another_model_is_refused():
    maze2d = shipped_checkpoint("maze2d-umaze")
    if not maze2d.is_dir():
        pytest.skip(f"no shipped checkpoint at {maze2d}")
    with pytest.raises(ValueError, match="holds a 'df_lowdim' model, not a video model"):
        load_video_model(str(maze2d))
