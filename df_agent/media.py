"""Rollout videos that play in a browser: H.264 MP4 (yuv420p, moov atom first) through PyAV's libx264.

    with VideoWriter("rollout.mp4", fps=10) as video:   # frames: RGB uint8 [H, W, 3]
        for frame in frames:
            video.append(frame)
    print(video.path)                                     # the file actually written

    write_video(frames, "rollout.mp4", fps=10)           # the same for frames in memory

Every `--video` of the CLI (`eval maze2d`, `eval teleop`, `sim franka`) writes through here. Without an H.264
encoder (PyAV is in the `video` extra: `pip install 'df-agent[video]'`) the writer says so in a warning and
writes an animated GIF beside the requested path instead (`rollout.gif`), so a run never fails for want of a
codec. Odd frame sizes are padded by one pixel (H.264 in yuv420p needs even ones). The file appears atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from df_agent.atomic_io import atomic_path

log = logging.getLogger(__name__)

H264_ENCODERS = ("libx264", "libopenh264", "h264")  # first available wins


def h264_encoder() -> str | None:
    """Name of an H.264 encoder PyAV can use here, or None (PyAV missing or built without one)."""
    try:
        import av
    except ImportError:
        return None
    for name in H264_ENCODERS:
        if name not in av.codecs_available:
            continue
        try:
            if av.codec.Codec(name, "w").type == "video":
                return name
        except Exception:  # listed but not an encoder in this build
            continue
    return None


def _even(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _rgb(frame: Any) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"a video frame must be [H, W, 3] RGB, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame[..., :3])


class VideoWriter:
    """Streams RGB frames into an H.264 MP4 at `path` (or a GIF beside it without an encoder, with a warning)."""

    def __init__(self, path: str | os.PathLike, fps: float = 10.0, crf: int = 23) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.requested = Path(path)
        self.fps = float(fps)
        self.crf = int(crf)
        wants_gif = self.requested.suffix.lower() == ".gif"
        self.encoder = None if wants_gif else h264_encoder()
        self.path = self.requested if self.encoder or wants_gif else self.requested.with_suffix(".gif")
        self.frames_written = 0
        self._size: tuple[int, int] | None = None
        self._gif_frames: list[np.ndarray] = []
        self._atomic: Any = None
        self._container: Any = None
        self._stream: Any = None
        if self.encoder is None and not wants_gif:
            log.warning("no H.264 encoder available (PyAV with libx264: pip install 'df-agent[video]'): "
                        "writing an animated GIF to %s instead of %s", self.path, self.requested)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def append(self, frame: Any) -> None:
        frame = _even(_rgb(frame))
        size = frame.shape[:2]
        if self._size is None:
            self._size = size
            if self.encoder is not None:
                self._open(size)
        elif size != self._size:
            raise ValueError(f"frame {self.frames_written} has size {size}, the first had {self._size}")
        if self.encoder is None:
            self._gif_frames.append(frame)
        else:
            import av

            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._container.mux(packet)
        self.frames_written += 1

    def _open(self, size: tuple[int, int]) -> None:
        import av

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        # faststart: the index goes before the data, so a browser starts playing before the download ends.
        self._container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream(self.encoder, rate=Fraction(self.fps).limit_denominator(1000))
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"  # what browsers decode
        stream.codec_context.thread_count = 1  # small videos; leave the cores to the run being recorded
        if self.encoder == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "medium"}
        self._stream = stream

    def close(self) -> Path:
        """Finish the file; returns its path (the MP4, or the GIF written instead)."""
        if self.frames_written == 0:
            raise ValueError(f"no frames were given for {self.requested}")
        if self.encoder is None:
            if self._gif_frames:
                import imageio.v2 as imageio

                with atomic_path(self.path) as tmp:
                    imageio.mimsave(tmp, self._gif_frames, duration=1000.0 / self.fps, loop=0)
                self._gif_frames = []
            return self.path
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop a half-written file (an error while recording)."""
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None
                self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
        self._gif_frames = []


def write_video(frames: Iterable[Any], path: str | os.PathLike, fps: float = 10.0, every: int = 1) -> Path:
    """Write RGB frames (every `every`-th) as H.264 MP4; returns the path written (a GIF without an encoder)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    with VideoWriter(path, fps=fps) as video:
        for index, frame in enumerate(frames):
            if index % every == 0:
                video.append(frame)
        if video.frames_written == 0:
            raise ValueError(f"write_video got no frames for {path}")
    return video.path


def probe_video(path: str | os.PathLike) -> dict[str, Any]:
    """Codec, profile, pixel format, size, frame rate and the number of frames that decode (PyAV)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        info = {"format": container.format.name, "codec": codec.name, "profile": codec.profile,
                "pix_fmt": codec.pix_fmt, "width": codec.width, "height": codec.height,
                "fps": float(stream.average_rate) if stream.average_rate else None}
        info["frames_decoded"] = sum(1 for _ in container.decode(stream))
    return info


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as RGB uint8 [T, H, W, 3] (PyAV)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
