"""A free-space map learnt from the training data's positions, and the guidance cost built on it.

Goal guidance pulls every planned frame towards the goal, the straight line through any wall; our DF models
have not learnt the walls well enough to resist that pull (docs/maze2d_results.md, "Plan feasibility"). The
data itself says where the ball can be: its positions never enter a wall. This head is the log density ratio
of the data's positions against a uniform draw over their bounding box, log p_data(x) / p_uniform(x), estimated
on a grid (a histogram smoothed by a Gaussian kernel) and read with bilinear interpolation, so it is
differentiable in the positions and costs one lookup per point. It is high where the demonstrations went and
very negative inside walls (and in free space the data never visits). It is fitted from the same offline
dataset as the DF model, ships in the checkpoint beside it, and uses nothing of the simulator or the map.

The guidance cost of a plan is the sum over its positions, and over points interpolated between consecutive
frames (so that a plan cannot jump across a wall between two free frames), of softplus(margin - logit): about 0
in well-visited space, growing linearly with how unlikely a point is. `DFPlanner` subtracts it, times
`free_space_weight`, from the goal reward, so one guidance gradient pulls towards the goal and out of the walls.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn import functional as F

from df_agent.atomic_io import atomic_path, write_text_atomic

WEIGHTS_FILE = "free_space.safetensors"
CONFIG_FILE = "free_space.json"
FORMAT = "df-agent-free-space"
# Floor of the density ratio, so an unvisited node has a finite logit. It is low enough that the Gaussian
# tail (a log density falling quadratically with the distance to the data) still has a slope deep in a wall.
DENSITY_FLOOR = 1e-12


@dataclass(frozen=True)
class FreeSpaceConfig:
    low: tuple[float, float]  # (x, y) of the grid's first node, env units
    high: tuple[float, float]  # (x, y) of its last node
    shape: tuple[int, int]  # nodes along (y, x)

    def __post_init__(self) -> None:
        if len(self.low) != 2 or len(self.high) != 2 or len(self.shape) != 2:
            raise ValueError(f"free-space grid needs (x, y) low/high and a (rows, cols) shape, got {self.low}, "
                             f"{self.high}, {self.shape}")
        if not all(h > lo for lo, h in zip(self.low, self.high)) or min(self.shape) < 2:
            raise ValueError(f"free-space grid needs high > low and at least 2 x 2 nodes, got {self.low}, "
                             f"{self.high}, {self.shape}")


class FreeSpaceModel(nn.Module):
    """logit(x, y) = log of how much more often the data visits (x, y) than a uniform draw over its box.
    Outside the grid the border value holds (the padded border is unvisited, so it is low)."""

    def __init__(self, config: FreeSpaceConfig, logits: Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        grid = torch.zeros(config.shape) if logits is None else torch.as_tensor(logits, dtype=torch.float32)
        if tuple(grid.shape) != tuple(config.shape):
            raise ValueError(f"free-space logits must have shape {tuple(config.shape)}, got {tuple(grid.shape)}")
        self.register_buffer("logits", grid.clone())

    def forward(self, xy: Tensor) -> Tensor:
        """Positions [..., 2] in env units -> logits [...] (bilinear, differentiable in xy)."""
        if xy.shape[-1] != 2:
            raise ValueError(f"free-space head takes positions [..., 2], got shape {tuple(xy.shape)}")
        sampled = bilinear_lookup(self.logits[None], self.config.low, self.config.high, xy.reshape(1, -1, 2))
        return sampled.reshape(xy.shape[:-1]).to(xy.dtype)


def bilinear_lookup(grids: Tensor, low, high, xy: Tensor) -> Tensor:
    """Values [G, P] of grids [G, rows, cols] whose nodes span low..high (x, y) at positions xy [G, P, 2],
    bilinear and differentiable in xy; beyond the grid the border value holds."""
    low_t = xy.new_tensor(low, dtype=torch.float32)
    high_t = xy.new_tensor(high, dtype=torch.float32)
    unit = (xy.float() - low_t) / (high_t - low_t) * 2 - 1  # grid_sample's [-1, 1] coordinates, (x, y) order
    return F.grid_sample(grids[:, None].to(unit.device), unit[:, None], mode="bilinear", padding_mode="border",
                         align_corners=True)[:, 0, 0]


def free_space_cost(model: FreeSpaceModel, frames_xy: Tensor, margin: float = 2.0, interpolation: int = 3) -> Tensor:
    """Per-plan cost [B] of positions [B, F, 2]: sum of softplus(margin - logit) over the frames and over
    `interpolation` points evenly spaced inside each segment between consecutive frames."""
    points = [frames_xy]
    if interpolation > 0 and frames_xy.shape[1] > 1:
        start, end = frames_xy[:, :-1], frames_xy[:, 1:]
        for i in range(1, interpolation + 1):
            fraction = i / (interpolation + 1)
            points.append(start + fraction * (end - start))
    xy = torch.cat(points, dim=1)
    return F.softplus(margin - model(xy)).sum(dim=1)


@dataclass
class FreeSpaceFitReport:
    positions: int
    seconds: float
    visited_fraction: float  # grid nodes whose logit is above 0 (visited more often than uniform)


def _gaussian_blur(image: Tensor, sigma_nodes: float) -> Tensor:
    radius = max(1, math.ceil(3 * sigma_nodes))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma_nodes) ** 2)
    kernel = (kernel / kernel.sum()).to(image.dtype)
    blurred = F.conv2d(image[None, None], kernel.reshape(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(blurred, kernel.reshape(1, 1, -1, 1), padding=(radius, 0))[0, 0]


def fit_free_space(positions: np.ndarray, resolution: float = 0.05, bandwidth: float = 0.1,
                   padding: float = 0.5, floor: float = DENSITY_FLOOR) -> tuple[FreeSpaceModel, FreeSpaceFitReport]:
    """The head of data positions [N, 2] (env units): a histogram at `resolution` over their box padded by
    `padding`, smoothed by a Gaussian of std `bandwidth`, as log(density / uniform density)."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) < 100:
        raise ValueError(f"positions must have shape (N >= 100, 2), got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError("positions contain NaN or inf")
    if not 0 < floor < 1:
        raise ValueError(f"floor must be in (0, 1), got {floor}")
    if not (resolution > 0 and bandwidth > 0 and padding >= 0):
        raise ValueError(f"need resolution > 0, bandwidth > 0, padding >= 0, got {resolution}, {bandwidth}, "
                         f"{padding}")
    started = time.perf_counter()
    low = positions.min(axis=0) - padding
    high = positions.max(axis=0) + padding
    cols, rows = (np.ceil((high - low) / resolution).astype(int) + 1).tolist()
    high = low + resolution * (np.array([cols, rows]) - 1)
    # Nearest-node histogram: node (r, c) sits at (low_x + c * res, low_y + r * res).
    index = np.rint((positions - low) / resolution).astype(np.int64)
    counts = np.bincount(index[:, 1] * cols + index[:, 0], minlength=rows * cols).reshape(rows, cols)
    density = _gaussian_blur(torch.from_numpy(counts.astype(np.float64)), bandwidth / resolution)
    ratio = density / density.mean()  # a uniform draw over the box has ratio 1 everywhere
    logits = torch.log(ratio.clamp(min=floor)).float()
    config = FreeSpaceConfig(low=tuple(float(v) for v in low), high=tuple(float(v) for v in high),
                             shape=(rows, cols))
    model = FreeSpaceModel(config, logits)
    report = FreeSpaceFitReport(positions=len(positions), seconds=time.perf_counter() - started,
                                visited_fraction=float((logits > 0).float().mean()))
    return model.eval(), report


def save_free_space(model: FreeSpaceModel, directory: Path, metadata: dict | None = None) -> None:
    """Write free_space.safetensors + free_space.json into a checkpoint directory, each atomically (weights
    first, so a failed write never leaves a config that points at missing weights)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, str(tmp))
    document = {"format": FORMAT, "format_version": 1, "config": asdict(model.config), "metadata": metadata or {}}
    write_text_atomic(directory / CONFIG_FILE, json.dumps(document, indent=2) + "\n")


def has_free_space(directory: Path) -> bool:
    return (Path(directory) / CONFIG_FILE).exists()


def load_free_space(directory: Path) -> FreeSpaceModel:
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.exists() or not weights_path.exists():
        raise FileNotFoundError(f"{directory} has no free-space head ({CONFIG_FILE} + {WEIGHTS_FILE}); fit one "
                                f"with `python scripts/maze2d_free_space.py`")
    try:
        document = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    if document.get("format") != FORMAT:
        raise ValueError(f"{config_path}: format must be {FORMAT!r}, got {document.get('format')!r}")
    raw = document.get("config", {})
    try:
        config = FreeSpaceConfig(low=tuple(raw["low"]), high=tuple(raw["high"]), shape=tuple(raw["shape"]))
    except (TypeError, KeyError) as error:
        raise ValueError(f"{config_path}: bad free-space config {raw}: {error}") from None
    model = FreeSpaceModel(config)
    state = load_file(str(weights_path))
    missing, unexpected = set(model.state_dict()) - set(state), set(state) - set(model.state_dict())
    if missing or unexpected:
        raise ValueError(f"{weights_path}: weights do not match the config (missing {sorted(missing)}, "
                         f"unexpected {sorted(unexpected)})")
    for name, tensor in model.state_dict().items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ValueError(f"{weights_path}: {name} has shape {tuple(state[name].shape)}, the config wants "
                             f"{tuple(tensor.shape)}")
    if not bool(torch.isfinite(state["logits"]).all()):
        raise ValueError(f"{weights_path}: logits contain NaN or inf")
    model.load_state_dict(state)
    return model.eval()
