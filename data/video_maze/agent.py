"""An explorer that turns and walks towards the farthest unvisited cell (TECO's DMLab data-collection agent).

World frame: block (row, col) has its centre at x = col, y = row. Heading index h in 0..3 points along
+x, +y, -x, -y (angle h * 90 degrees). The agent moves in discrete frames: a 90-degree turn takes
`steps_per_turn` frames of "turn" actions and crossing one block takes `steps_per_cell` "forward" frames, so
a video frame is rendered at every intermediate pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data.video_maze.maze import bfs, open_cells

ACTION_NAMES: tuple[str, ...] = ("forward", "turn_left", "turn_right")
FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2
_HEADING_STEPS = {(0, 1): 0, (1, 0): 1, (0, -1): 2, (-1, 0): 3}  # (drow, dcol) -> heading index


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    angle: float  # radians, counter-clockwise from +x


class MazeExplorer:
    def __init__(
        self,
        walls: np.ndarray,
        rng: np.random.Generator,
        steps_per_cell: int = 4,
        steps_per_turn: int = 4,
        start: tuple[int, int] | None = None,
        heading: int | None = None,
    ) -> None:
        if steps_per_cell < 1 or steps_per_turn < 1:
            raise ValueError("steps_per_cell and steps_per_turn must be >= 1")
        cells = open_cells(walls)
        if len(cells) < 2:
            raise ValueError("the maze needs at least two open cells for the agent to walk")
        self.walls = walls
        self.rng = rng
        self.steps_per_cell = steps_per_cell
        self.steps_per_turn = steps_per_turn
        self.cell = start if start is not None else cells[rng.integers(len(cells))]
        if walls[self.cell]:
            raise ValueError(f"start cell {self.cell} is a wall")
        self.heading = int(heading if heading is not None else rng.integers(4))
        self.visited = {self.cell}
        self._plan: list[int] = []  # queued primitive actions
        self._progress = 0  # frames into the current primitive (turn or move)
        self._turn_sign = 0  # +1 turning left, -1 right, 0 walking or idle
        self._moving = False

    def pose(self) -> Pose:
        angle = self.heading * math.pi / 2
        x, y = float(self.cell[1]), float(self.cell[0])
        if self._turn_sign:
            angle += self._turn_sign * (math.pi / 2) * self._progress / self.steps_per_turn
        elif self._moving:
            fraction = self._progress / self.steps_per_cell
            x += math.cos(angle) * fraction
            y += math.sin(angle) * fraction
        return Pose(x, y, angle)

    def step(self) -> int:
        """Choose the next action, advance the pose by one frame and return the action index."""
        if not self._turn_sign and not self._moving:
            self._start_next_primitive()
        if self._turn_sign:
            action = TURN_LEFT if self._turn_sign > 0 else TURN_RIGHT
            self._progress += 1
            if self._progress == self.steps_per_turn:
                self.heading = (self.heading + self._turn_sign) % 4
                self._turn_sign, self._progress = 0, 0
            return action
        self._progress += 1
        if self._progress == self.steps_per_cell:
            dr, dc = [(0, 1), (1, 0), (0, -1), (-1, 0)][self.heading]
            self.cell = (self.cell[0] + dr, self.cell[1] + dc)
            self.visited.add(self.cell)
            self._moving, self._progress = False, 0
        return FORWARD

    def _start_next_primitive(self) -> None:
        if not self._plan:
            self._plan = self._plan_to_new_target()
        primitive = self._plan.pop(0)
        if primitive == FORWARD:
            self._moving = True
        else:
            self._turn_sign = 1 if primitive == TURN_LEFT else -1

    def _plan_to_new_target(self) -> list[int]:
        distance, parent = bfs(self.walls, self.cell)
        unvisited = [cell for cell in distance if cell not in self.visited]
        if not unvisited:
            self.visited = {self.cell}
            unvisited = [cell for cell in distance if cell != self.cell]
        farthest = max(distance[cell] for cell in unvisited)
        candidates = [cell for cell in unvisited if distance[cell] == farthest]
        target = candidates[self.rng.integers(len(candidates))]
        path = [target]
        while parent[path[-1]] != self.cell:
            path.append(parent[path[-1]])
        path.reverse()
        actions: list[int] = []
        heading, cell = self.heading, self.cell
        for nxt in path:
            wanted = _HEADING_STEPS[(nxt[0] - cell[0], nxt[1] - cell[1])]
            turn = (wanted - heading) % 4
            if turn == 1:
                actions.append(TURN_LEFT)
            elif turn == 3:
                actions.append(TURN_RIGHT)
            elif turn == 2:
                direction = TURN_LEFT if self.rng.random() < 0.5 else TURN_RIGHT
                actions += [direction, direction]
            actions.append(FORWARD)
            heading, cell = wanted, nxt
        return actions
