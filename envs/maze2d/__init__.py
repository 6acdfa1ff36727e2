"""maze2d on Gymnasium-Robotics PointMaze with D4RL semantics: maps, env, expert, reference scores."""

from envs.maze2d.quiet_import import import_gymnasium_robotics

import_gymnasium_robotics()  # before maps imports from it, so its import-time notice is not printed

from envs.maze2d.maps import ENV_IDS, MAZES, MazeSpec, env_id_for, get_maze, parse_env_id  # noqa: E402

__all__ = ["ENV_IDS", "MAZES", "MazeSpec", "env_id_for", "get_maze", "parse_env_id"]
