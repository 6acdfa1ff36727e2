"""maze2d on Gymnasium-Robotics PointMaze with D4RL semantics: maps, env, expert, reference scores."""

from envs.maze2d.maps import ENV_IDS, MAZES, MazeSpec, env_id_for, get_maze, parse_env_id

__all__ = ["ENV_IDS", "MAZES", "MazeSpec", "env_id_for", "get_maze", "parse_env_id"]
