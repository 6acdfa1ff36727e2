"""Reader for TECO's released video data: one `.npz` per trajectory with `video` uint8 [T, 64, 64, 3] and
`actions` [T] (TECO, Yan et al. 2023; the DMLab and Minecraft sets used by the paper). Users who have the
real data can convert it into our episode store with `df-agent data video-maze --from-teco DIR`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


def read_teco_npz(path: str | Path) -> dict[str, np.ndarray]:
    """One trajectory as {"video": uint8 [T, H, W, 3], "action": int64 [T]}; raises ValueError naming the problem."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = list(archive.files)
            video = np.asarray(archive["video"]) if "video" in files else None
            actions = np.asarray(archive["actions"]) if "actions" in files else None
    except (OSError, EOFError, ValueError) as error:
        # numpy reports a non-zip file as "pickled data" (ValueError); never unpickle, just name the file.
        raise ValueError(f"{path}: not a readable npz file ({error})") from None
    if video is None:
        raise ValueError(f"{path}: no 'video' array (has {files})")
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"{path}: 'video' must be [T, H, W, 3], got shape {video.shape}")
    if video.dtype != np.uint8:
        raise ValueError(f"{path}: 'video' must be uint8, got {video.dtype}")
    if actions is None:
        raise ValueError(f"{path}: no 'actions' array")
    actions = actions.reshape(len(actions), -1)
    if len(actions) != len(video):
        raise ValueError(f"{path}: 'actions' has {len(actions)} steps but 'video' has {len(video)} frames")
    if actions.shape[1] != 1:
        raise ValueError(f"{path}: expected one discrete action per frame, got shape {actions.shape}")
    return {"video": video, "action": actions[:, 0].astype(np.int64)}


def iter_teco_directory(directory: str | Path) -> Iterator[dict[str, np.ndarray]]:
    directory = Path(directory)
    files = sorted(directory.rglob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz files under {directory}")
    for file in files:
        yield read_teco_npz(file)
