"""The three D4RL maze2d layouts, their goal cells, episode lengths and D4RL's published reference scores.

Layouts are Gymnasium-Robotics' `maps.py` grids (identical to D4RL's `maze_model.py` strings): row i, column j,
1 = wall, 0 = free. Cells are addressed as (row, col) everywhere in this package, as Gymnasium-Robotics'
`reset(options={"reset_cell": ..., "goal_cell": ...})` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from gymnasium_robotics.envs.maze.maps import LARGE_MAZE, MEDIUM_MAZE, U_MAZE


@dataclass(frozen=True)
class MazeSpec:
    name: str
    layout: tuple[tuple[int, ...], ...]
    goal_cell: tuple[int, int]  # D4RL's "G" cell, as (row, col)
    episode_steps: int  # D4RL max_episode_steps
    default_dataset_steps: int  # D4RL dataset size
    d4rl_ref_min_score: float
    d4rl_ref_max_score: float

    @property
    def free_cells(self) -> list[tuple[int, int]]:
        return [(i, j) for i, row in enumerate(self.layout) for j, cell in enumerate(row) if cell != 1]


def _freeze(layout: list[list]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(cell) for cell in row) for row in layout)


MAZES: dict[str, MazeSpec] = {
    "umaze": MazeSpec("umaze", _freeze(U_MAZE), (1, 1), 300, 1_000_000, 23.85, 161.86),
    "medium": MazeSpec("medium", _freeze(MEDIUM_MAZE), (6, 6), 600, 2_000_000, 13.13, 277.39),
    "large": MazeSpec("large", _freeze(LARGE_MAZE), (7, 9), 800, 4_000_000, 6.7, 273.99),
}


def env_id_for(maze: str, multi_goal: bool = False) -> str:
    return f"maze2d-{maze}{'-multi' if multi_goal else ''}-v0"


# env id -> (maze name, multi_goal)
ENV_IDS: dict[str, tuple[str, bool]] = {
    env_id_for(name, multi): (name, multi) for name in MAZES for multi in (False, True)
}


def parse_env_id(env_id: str) -> tuple[MazeSpec, bool]:
    """Maze spec and multi-goal flag of one of our six ids; a clear error for anything else."""
    if env_id not in ENV_IDS:
        raise ValueError(f"unknown maze2d env id {env_id!r}; known ids: {', '.join(ENV_IDS)}")
    name, multi = ENV_IDS[env_id]
    return MAZES[name], multi


def get_maze(name: str) -> MazeSpec:
    if name not in MAZES:
        raise ValueError(f"unknown maze {name!r}; choose one of {', '.join(MAZES)}")
    return MAZES[name]
