"""Cell geometry of a maze and value iteration over its cells (the planner inside the waypoint expert).

Coordinates follow Gymnasium-Robotics PointMaze (maze_size_scaling 1): the maze is centred on the origin,
x grows with the column index and y shrinks with the row index:
    x = (col + 0.5) - n_cols / 2,   y = n_rows / 2 - (row + 0.5).
"""

from __future__ import annotations

import math

import numpy as np

from envs.maze2d.maps import MazeSpec

# Grid moves in the order D4RL's gridcraft uses for its Q-iteration (stay first, so ties keep the agent still
# only when it is already at the target).
_MOVES: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class MazeGrid:
    """Free cells, cell <-> xy conversion and a next-cell table towards every target cell."""

    def __init__(self, spec: MazeSpec, discount: float = 0.99) -> None:
        self.spec = spec
        self.layout = np.asarray(spec.layout, dtype=np.int64)
        self.n_rows, self.n_cols = self.layout.shape
        self.discount = discount
        self.free_cells: list[tuple[int, int]] = spec.free_cells
        self._free_set = set(self.free_cells)
        self._tables: dict[tuple[int, int], dict[tuple[int, int], tuple[int, int]]] = {}

    def is_free(self, cell: tuple[int, int]) -> bool:
        return tuple(cell) in self._free_set

    def cell_to_xy(self, cell: tuple[int, int]) -> tuple[float, float]:
        row, col = cell
        return (col + 0.5) - self.n_cols / 2, self.n_rows / 2 - (row + 0.5)

    def xy_to_cell(self, x: float, y: float) -> tuple[int, int]:
        row = math.floor(self.n_rows / 2 - y)
        col = math.floor(x + self.n_cols / 2)
        return row, col

    def in_wall(self, xy: np.ndarray) -> np.ndarray:
        """Boolean mask [...] of the points xy [..., 2] whose cell is a wall (or lies outside the layout)."""
        xy = np.asarray(xy, dtype=np.float64)
        if xy.shape[-1:] != (2,):
            raise ValueError(f"xy must have a last axis of size 2 (x, y), got shape {xy.shape}")
        rows = np.floor(self.n_rows / 2 - xy[..., 1])
        cols = np.floor(xy[..., 0] + self.n_cols / 2)
        inside = (rows >= 0) & (rows < self.n_rows) & (cols >= 0) & (cols < self.n_cols) & np.isfinite(rows + cols)
        safe_rows = np.where(inside, rows, 0).astype(np.int64)
        safe_cols = np.where(inside, cols, 0).astype(np.int64)
        return ~inside | (self.layout[safe_rows, safe_cols] == 1)

    def nearest_free_cell(self, x: float, y: float) -> tuple[int, int]:
        """The cell under (x, y); if that is a wall (the ball touching a wall edge), the nearest free cell."""
        cell = self.xy_to_cell(x, y)
        if cell in self._free_set:
            return cell
        return min(self.free_cells, key=lambda c: (self.cell_to_xy(c)[0] - x) ** 2 + (self.cell_to_xy(c)[1] - y) ** 2)

    def values(self, target: tuple[int, int]) -> dict[tuple[int, int], float]:
        """Value iteration over free cells with reward 1 for being at `target` (D4RL's gridcraft Q-iteration)."""
        target = tuple(target)
        if target not in self._free_set:
            raise ValueError(f"target cell {target} is not a free cell of maze {self.spec.name!r}")
        value = dict.fromkeys(self.free_cells, 0.0)
        for _ in range(4 * len(self.free_cells) + 10):
            new_value = {}
            for cell in self.free_cells:
                best = -math.inf
                for d_row, d_col in _MOVES:
                    nxt = (cell[0] + d_row, cell[1] + d_col)
                    if nxt not in self._free_set:
                        nxt = cell  # bumping into a wall keeps the agent where it is
                    best = max(best, (1.0 if nxt == target else 0.0) + self.discount * value[nxt])
                new_value[cell] = best
            converged = max(abs(new_value[c] - value[c]) for c in self.free_cells) < 1e-9
            value = new_value
            if converged:
                break
        return value

    def next_cell_table(self, target: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int]]:
        """Greedy successor of every free cell on the value function of `target` (computed once per target)."""
        target = tuple(target)
        if target not in self._tables:
            value = self.values(target)
            table = {}
            for cell in self.free_cells:
                best_cell, best_q = cell, -math.inf
                for d_row, d_col in _MOVES:
                    nxt = (cell[0] + d_row, cell[1] + d_col)
                    if nxt not in self._free_set:
                        nxt = cell
                    q = (1.0 if nxt == target else 0.0) + self.discount * value[nxt]
                    if q > best_q + 1e-12:  # first maximiser wins, as np.argmax in D4RL
                        best_cell, best_q = nxt, q
                table[cell] = best_cell
            self._tables[target] = table
        return self._tables[target]

    def path(self, start: tuple[int, int], target: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells visited greedily on the value function from `start` (excluded) to `target` (included)."""
        table = self.next_cell_table(target)
        cells, cell = [], tuple(start)
        for _ in range(len(self.free_cells) + 1):
            cell = table[cell]
            cells.append(cell)
            if cell == tuple(target):
                return cells
        raise RuntimeError(f"value iteration found no path from {start} to {target} in maze {self.spec.name!r}")
