"""Rollout strips (PNG) and side-by-side animations (GIF, and MP4 when an ffmpeg backend is installed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    image = image.copy()
    cv2.putText(image, text, (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def rollout_strip(rows: dict[str, np.ndarray], frame_indices: list[int], scale: int = 2,
                  context_frames: int = 0) -> np.ndarray:
    """One row per method (uint8 video [F, H, W, 3]), one column per frame index; black where a row is too short.
    Context (ground-truth) frames get a red border, as in the paper's figures."""
    import cv2

    first = next(iter(rows.values()))
    tile_h, tile_w = first.shape[1] * scale, first.shape[2] * scale
    label_w = 150
    lines = []
    for name, video in rows.items():
        tiles = [_label(np.zeros((tile_h, label_w, 3), np.uint8), name[:22])]
        for index in frame_indices:
            tile = np.zeros((tile_h, tile_w, 3), np.uint8)
            if index < len(video):
                tile = cv2.resize(video[index], (tile_w, tile_h), interpolation=cv2.INTER_NEAREST)
                if index < context_frames:
                    cv2.rectangle(tile, (0, 0), (tile_w - 1, tile_h - 1), (255, 0, 0), 1)
            tiles.append(tile)
        lines.append(np.concatenate([np.pad(t, ((1, 1), (1, 1), (0, 0))) for t in tiles], axis=1))
    header = np.zeros((14, lines[0].shape[1], 3), np.uint8)
    x = label_w + 2
    for index in frame_indices:
        cv2.putText(header, f"t={index}", (x + 2, 11), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 255), 1)
        x += tile_w + 2
    return np.concatenate([header, *lines], axis=0)


def save_strip(path: str | Path, rows: dict[str, np.ndarray], frame_indices: list[int], context_frames: int) -> Path:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, rollout_strip(rows, frame_indices, context_frames=context_frames))
    return path


def save_animation(path: str | Path, rows: dict[str, np.ndarray], fps: int = 15, scale: int = 2,
                   every: int = 1) -> list[Path]:
    """Side-by-side animation of the rows (shortest row sets the length); writes .gif, plus .mp4 if possible."""
    import cv2
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    length = min(len(v) for v in rows.values())
    frames = []
    for t in range(0, length, every):
        tiles = []
        for name, video in rows.items():
            tile = cv2.resize(video[t], (video.shape[2] * scale, video.shape[1] * scale),
                              interpolation=cv2.INTER_NEAREST)
            tiles.append(np.pad(_label(np.pad(tile, ((12, 0), (0, 0), (0, 0))), name[:12]), ((0, 0), (1, 1), (0, 0))))
        frame = np.concatenate(tiles, axis=1)
        frames.append(_label(np.pad(frame, ((12, 0), (0, 0), (0, 0))), f"frame {t}"))
    written = [path.with_suffix(".gif")]
    imageio.mimsave(written[0], frames, duration=1000 / fps, loop=0)
    try:
        mp4 = path.with_suffix(".mp4")
        imageio.mimsave(mp4, frames, fps=fps)
        written.append(mp4)
    except Exception as error:  # imageio raises backend-specific errors when no ffmpeg plugin is installed
        log.info("no MP4 written (%s); the GIF has the same frames", type(error).__name__)
    return written
