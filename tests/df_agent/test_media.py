"""Rollout videos (df_agent/media.py): H.264 MP4 that decodes back to the frames, or a GIF with a warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from df_agent import media

pytest.importorskip("av", reason="PyAV (the video extra) writes the H.264 MP4s")


def frames(count: int = 12, height: int = 33, width: int = 47) -> list[np.ndarray]:
    """A bright square moving right over a dark background: each frame differs, flat regions compress well."""
    out = []
    for i in range(count):
        frame = np.full((height, width, 3), 30, np.uint8)
        frame[8:20, 2 + 2 * i: 14 + 2 * i] = (220, 180, 40)
        out.append(frame)
    return out


def test_writes_browser_playable_h264_that_decodes_back_to_the_frames(tmp_path):
    assert media.h264_encoder() is not None
    written = media.write_video(frames(), tmp_path / "rollout.mp4", fps=10)
    assert written == tmp_path / "rollout.mp4"
    info = media.probe_video(written)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"  # what browsers decode
    assert "mp4" in info["format"] and info["fps"] == pytest.approx(10.0)
    assert (info["width"], info["height"]) == (48, 34), "odd sizes are padded to even ones"
    assert info["frames_decoded"] == 12
    data = written.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "the index comes first (faststart): plays while loading"
    decoded = media.read_video(written)
    assert decoded.shape == (12, 34, 48, 3)
    original = np.stack(frames())
    error = np.abs(decoded[:, :33, :47].astype(float) - original).mean()
    assert error < 6.0, f"decoded frames differ from the written ones by {error:.1f} grey levels on average"
    assert decoded[5, 14, 13 + 4].mean() > 120 and decoded[5, 14, 40].mean() < 60  # the square moved


def test_streaming_writer_refuses_a_size_change_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(ValueError, match="has size"), media.VideoWriter(path, fps=5) as video:
        video.append(np.zeros((16, 16, 3), np.uint8))
        video.append(np.zeros((18, 16, 3), np.uint8))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_without_an_h264_encoder_it_writes_a_gif_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(media, "h264_encoder", lambda: None)  # a machine without PyAV / libx264
    with caplog.at_level(logging.WARNING, logger="df_agent.media"):
        written = media.write_video(frames(5), tmp_path / "rollout.mp4", fps=10)
    assert written == tmp_path / "rollout.gif" and not (tmp_path / "rollout.mp4").exists()
    assert "no H.264 encoder available" in caplog.text and "rollout.gif" in caplog.text
    import imageio.v2 as imageio

    assert len(imageio.mimread(written)) == 5


def test_maze2d_video_writer_is_the_h264_one(tmp_path):
    from envs.evaluation import write_video

    written = write_video(frames(10, 64, 64), tmp_path / "maze.mp4", fps=30, every=2)
    info = media.probe_video(written)
    assert info["codec"] == "h264" and info["frames_decoded"] == 5 and info["fps"] == pytest.approx(30.0)
