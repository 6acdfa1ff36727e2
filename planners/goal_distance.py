"""Distance to the goal through the space the data visited: a value function for goal guidance.

B.5's goal reward, -sum_t ||p_t - g||, measures the straight line to the goal. Its gradient points through any
wall between a frame and the goal, and our models do not resist that pull (docs/maze2d_results.md, "Plan
feasibility"). This module replaces the straight line by the shortest path to the goal that stays inside the
space the demonstrations visited, as an offline value function learnt from the dataset (Diffuser guides with
a learnt value in the same way):

- the free space is the checkpoint's free-space head (planners/free_space.py, the log density ratio of the
  dataset's positions) above a logit threshold; nothing of the simulator or the maze map is read;
- for each goal, Dijkstra over that space's grid nodes (8 neighbours, Euclidean steps) gives the distance of
  every free node to the goal; a node outside it costs the distance of its nearest free node plus
  `outside_slope` times the way to that node, so the gradient leads a stray frame back into free space before
  it leads it on;
- the field is read with bilinear interpolation, differentiable in the positions (one lookup per frame).

In free space the field's gradient has unit norm like the straight-line distance's, so guidance scales carry
over; it points along the corridors instead of across the walls. Fields are cached per goal (a multi-goal
episode computes one per new goal: about 10 ms on the medium maze).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from planners.free_space import FreeSpaceModel, bilinear_lookup

_NEIGHBOURS = tuple((dr, dc, math.hypot(dr, dc)) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)


def _dijkstra(adjacency: list[list[tuple[int, float]]], sources: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Shortest distances [N] from several sources (node -> start distance) and the source each came from [N]
    (-1 where unreached)."""
    distance = np.full(len(adjacency), np.inf)
    origin = np.full(len(adjacency), -1, dtype=np.int64)
    heap: list[tuple[float, int, int]] = []
    for node, start in sources.items():
        if start < distance[node]:
            distance[node], origin[node] = start, node
            heap.append((start, node, node))
    heapq.heapify(heap)
    while heap:
        d, node, source = heapq.heappop(heap)
        if d > distance[node]:
            continue
        for other, step in adjacency[node]:
            candidate = d + step
            if candidate < distance[other]:
                distance[other], origin[other] = candidate, source
                heapq.heappush(heap, (candidate, other, source))
    return distance, origin


class GoalDistanceField:
    """Geodesic distance to goals through the free space of a `FreeSpaceModel` (logit > free_logit)."""

    def __init__(self, free_space: FreeSpaceModel, free_logit: float = -2.0, outside_slope: float = 2.0,
                 cache_size: int = 1024) -> None:
        if not math.isfinite(free_logit):
            raise ValueError(f"free_logit must be finite, got {free_logit}")
        if not (outside_slope >= 1 and math.isfinite(outside_slope)):
            # Below 1 a path could leave the free space and come back shorter than it stays inside.
            raise ValueError(f"outside_slope must be a finite number >= 1, got {outside_slope}")
        config = free_space.config
        self.low = np.asarray(config.low, dtype=np.float64)
        self.high = np.asarray(config.high, dtype=np.float64)
        self.rows, self.cols = (int(v) for v in config.shape)
        self.spacing = (self.high - self.low) / (np.array([self.cols, self.rows]) - 1)  # (x, y)
        self.free = free_space.logits.detach().cpu().numpy() > free_logit
        if not self.free.any():
            raise ValueError(f"no grid node of the free-space head has a logit above {free_logit}: the "
                             "threshold leaves no free space")
        self.outside_slope = float(outside_slope)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple[float, float], Tensor] = OrderedDict()
        self._node_xy = self.node_xy()
        self._free_graph = self._adjacency(self.free)
        self._free_nodes = np.flatnonzero(self.free.ravel())
        self._free_index = np.full(self.rows * self.cols, -1, dtype=np.int64)
        self._free_index[self._free_nodes] = np.arange(len(self._free_nodes))
        # Goal-independent: every node's nearest free node (over the full grid) and the way to it.
        everything = self._adjacency(np.ones_like(self.free))
        self._to_free, self._nearest_free = _dijkstra(everything, {int(n): 0.0 for n in self._free_nodes})

    def _adjacency(self, mask: np.ndarray) -> list[list[tuple[int, float]]]:
        """8-neighbour graph of the nodes of `mask` (flat node ids over the full grid), steps in env units."""
        adjacency: list[list[tuple[int, float]]] = [[] for _ in range(self.rows * self.cols)]
        rows, cols = np.nonzero(mask)
        dx, dy = self.spacing
        for dr, dc, _ in _NEIGHBOURS:
            r2, c2 = rows + dr, cols + dc
            inside = (r2 >= 0) & (r2 < self.rows) & (c2 >= 0) & (c2 < self.cols)
            inside[inside] &= mask[r2[inside], c2[inside]]
            step = math.hypot(dc * dx, dr * dy)
            for a, b in zip((rows * self.cols + cols)[inside].tolist(), (r2 * self.cols + c2)[inside].tolist()):
                adjacency[a].append((b, step))
        return adjacency

    def node_xy(self) -> np.ndarray:
        """(x, y) of every grid node, [rows, cols, 2]."""
        xs = self.low[0] + self.spacing[0] * np.arange(self.cols)
        ys = self.low[1] + self.spacing[1] * np.arange(self.rows)
        grid_x, grid_y = np.meshgrid(xs, ys)
        return np.stack([grid_x, grid_y], axis=-1)

    def _goal_sources(self, goal: np.ndarray) -> dict[int, float]:
        """Free nodes around the goal with their straight-line distance to it (the goal's own cell of the grid
        and its neighbours); a goal outside the free space starts from its nearest free node."""
        col = int(np.clip(np.rint((goal[0] - self.low[0]) / self.spacing[0]), 0, self.cols - 1))
        row = int(np.clip(np.rint((goal[1] - self.low[1]) / self.spacing[1]), 0, self.rows - 1))
        xy = self._node_xy
        sources: dict[int, float] = {}
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                if 0 <= r < self.rows and 0 <= c < self.cols and self.free[r, c]:
                    sources[r * self.cols + c] = float(np.hypot(*(xy[r, c] - goal)))
        if not sources:
            node = int(self._nearest_free[row * self.cols + col])
            sources[node] = float(np.hypot(*(xy.reshape(-1, 2)[node] - goal)))
        return sources

    def field(self, goal: np.ndarray) -> Tensor:
        """Distance to `goal` (x, y) of every grid node, [rows, cols] (float32), cached per goal."""
        goal = np.asarray(goal, dtype=np.float64).reshape(-1)
        if goal.shape != (2,) or not np.isfinite(goal).all():
            raise ValueError(f"goal must be a finite (x, y), got {goal}")
        key = (round(float(goal[0]), 4), round(float(goal[1]), 4))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        distance, _ = _dijkstra(self._free_graph, self._goal_sources(goal))
        free_distance = distance[self._free_nodes]
        # A free node cut off from the goal is as far as the farthest reached one, plus the grid's diagonal.
        reached = np.isfinite(free_distance)
        unreachable = (free_distance[reached].max() if reached.any() else 0.0) + float(np.hypot(*(self.high -
                                                                                                   self.low)))
        distance[self._free_nodes] = np.where(reached, free_distance, unreachable)
        nearest = self._nearest_free
        values = distance[nearest] + self.outside_slope * self._to_free
        values[self._free_nodes] = distance[self._free_nodes]
        tensor = torch.from_numpy(values.reshape(self.rows, self.cols).astype(np.float32))
        self._cache[key] = tensor
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tensor

    def fields(self, goals: np.ndarray) -> Tensor:
        """Fields of a batch of goals [B, 2] -> [B, rows, cols]."""
        goals = np.asarray(goals, dtype=np.float64)
        if goals.ndim != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must have shape (B, 2), got {goals.shape}")
        return torch.stack([self.field(goal) for goal in goals])


def geodesic_distance(fields: Tensor, low: np.ndarray, high: np.ndarray, outside_slope: float,
                      xy: Tensor) -> Tensor:
    """Distances [B, F] of positions xy [B, F, 2] under per-plan fields [B, rows, cols] on the grid spanning
    low..high; a point beyond the grid costs the border's value plus outside_slope times the way to the grid."""
    points = xy.float()
    clamped = torch.minimum(torch.maximum(points, points.new_tensor(low)), points.new_tensor(high))
    sampled = bilinear_lookup(fields, low, high, clamped)
    beyond = (points - clamped).norm(dim=-1)
    return (sampled + outside_slope * beyond).to(xy.dtype)


def smooth_core(distance: Tensor, radius: float) -> Tensor:
    """d, with its cone at 0 replaced inside `radius` by the quadratic d^2 / (2 radius) (value and slope continuous
    at the radius: beyond it d - radius / 2). radius 0 returns d unchanged."""
    if radius <= 0:
        return distance
    return torch.where(distance < radius, distance.square() / (2 * radius), distance - radius / 2)


def geodesic_goal_reward(field: GoalDistanceField, frames_xy: Tensor, goal: Tensor,
                         fields: Tensor | None = None, core_radius: float = 0.0) -> Tensor:
    """B.5's reward with the geodesic distance: -sum over frames of D_g(p_t). frames_xy [B, F, 2], goal [B, 2];
    `fields` [B, rows, cols] may be passed when already computed for these goals; core_radius > 0 smooths D_g at
    the goal (`smooth_core`)."""
    if fields is None:
        fields = field.fields(goal.detach().cpu().double().numpy())
    distance = geodesic_distance(fields, field.low, field.high, field.outside_slope, frames_xy)
    return -smooth_core(distance, core_radius).sum(dim=1)
