"""Maze layouts on a block grid, carved by depth-first search (the DMLab / TECO recipe).

A layout is a boolean array `walls[row, col]` (True = a solid block). Rooms sit on odd coordinates inside a
solid border; depth-first search knocks out the block between neighbouring rooms, then a fraction of the
remaining interior walls is removed so that the maze has loops (DMLab mazes are not perfect trees).
"""

from __future__ import annotations

import numpy as np


def carve_maze(size: int, rng: np.random.Generator, removal_fraction: float = 0.15) -> np.ndarray:
    """Return a `[size, size]` bool wall grid; `size` must be odd and >= 5 so that rooms fit inside the border."""
    if size < 5 or size % 2 == 0:
        raise ValueError(f"maze size must be odd and >= 5, got {size}")
    if not 0.0 <= removal_fraction <= 1.0:
        raise ValueError(f"removal_fraction must be in [0, 1], got {removal_fraction}")
    walls = np.ones((size, size), dtype=bool)
    rooms = [(r, c) for r in range(1, size - 1, 2) for c in range(1, size - 1, 2)]
    start = rooms[rng.integers(len(rooms))]
    walls[start] = False
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for dr, dc in ((2, 0), (-2, 0), (0, 2), (0, -2))
            if 0 < r + dr < size - 1 and 0 < c + dc < size - 1 and walls[r + dr, c + dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[rng.integers(len(options))]
        walls[(r + nr) // 2, (c + nc) // 2] = False
        walls[nr, nc] = False
        stack.append((nr, nc))
    # Interior blocks that separate two rooms (odd/even mixed coordinates) and are still standing.
    separators = [
        (r, c)
        for r in range(1, size - 1)
        for c in range(1, size - 1)
        if walls[r, c] and (r % 2) != (c % 2)
    ]
    n_remove = round(removal_fraction * len(separators))
    for index in rng.permutation(len(separators))[:n_remove]:
        walls[separators[index]] = False
    return walls


def open_cells(walls: np.ndarray) -> list[tuple[int, int]]:
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(~walls))]


def neighbours(walls: np.ndarray, cell: tuple[int, int]) -> list[tuple[int, int]]:
    r, c = cell
    result = []
    for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        nr, nc = r + dr, c + dc
        if 0 <= nr < walls.shape[0] and 0 <= nc < walls.shape[1] and not walls[nr, nc]:
            result.append((nr, nc))
    return result


def bfs(walls: np.ndarray, start: tuple[int, int]) -> tuple[dict[tuple[int, int], int], dict]:
    """Breadth-first distances and parents from `start` over open cells."""
    distance = {start: 0}
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    frontier = [start]
    while frontier:
        next_frontier = []
        for cell in frontier:
            for nb in neighbours(walls, cell):
                if nb not in distance:
                    distance[nb] = distance[cell] + 1
                    parent[nb] = cell
                    next_frontier.append(nb)
        frontier = next_frontier
    return distance, parent


def quadrant(walls_shape: tuple[int, int], cell: tuple[int, int]) -> int:
    """Quadrant index 0..3 of a block (row half * 2 + column half); the centre line belongs to the low half."""
    rows, cols = walls_shape
    return int(cell[0] > (rows - 1) // 2) * 2 + int(cell[1] > (cols - 1) // 2)
