"""Every `df-agent GROUP NAME` subcommand, mapped to the module that implements it.

A command module defines `add_arguments(parser)` and `run(args) -> int`; it is imported only when its
command is invoked (or asked for `--help`), so `df-agent --help` stays fast and optional dependencies
(rclpy, gluonts, rendering) are never touched by commands that do not need them.
Add one `CommandSpec` line per new command; keep each group's entries together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    group: str
    name: str
    module: str
    help: str


GROUP_HELP: dict[str, str] = {
    "train": "train a Diffusion Forcing model",
    "eval": "evaluate a trained model or a baseline policy",
    "data": "generate, import and inspect datasets",
    "deploy": "run a trained policy on a robot",
    "sim": "run simulated robots that speak the real robot's topics",
    "forecast": "probabilistic time-series forecasting (train / eval)",
    "bench": "speed benchmarks of the model and planners",
}

COMMANDS: list[CommandSpec] = [
    CommandSpec("train", "toy", "df_agent.cli.train_toy", "train a small DF model on a synthetic sequence task"),
    CommandSpec("data", "video-maze", "df_agent.cli.data_video_maze", "render first-person maze videos into zarr"),
    CommandSpec("train", "video", "df_agent.cli.train_video", "train the video head (DF or a baseline) on maze videos"),
    CommandSpec("eval", "video", "df_agent.cli.eval_video", "long video rollouts: PSNR/SSIM, stability vs baselines"),
    CommandSpec("deploy", "ros2", "df_agent.cli.deploy_ros2", "run a policy on a Franka over ROS 2 (df_agent_policy)"),
    CommandSpec("sim", "franka", "df_agent.cli.sim_franka", "simulated Franka (MuJoCo Panda) on ROS 2 topics"),
    CommandSpec("forecast", "train", "df_agent.cli.forecast_train", "train the time-series DF model (GluonTS data)"),
    CommandSpec("forecast", "eval", "df_agent.cli.forecast_eval", "CRPS-sum of forecasting checkpoints on a test set"),
    CommandSpec("data", "maze2d", "df_agent.cli.data_maze2d", "generate the D4RL-style expert maze2d dataset (Minari)"),
    CommandSpec("train", "maze2d", "df_agent.cli.train_maze2d", "train the DF planning model of a maze (Minari data)"),
    CommandSpec("eval", "maze2d", "df_agent.cli.eval_maze2d", "score a policy on a maze2d env: normalised score, JSON"),
    CommandSpec("data", "import-bags", "df_agent.cli.data_import_bags", "rosbag2 demos -> zarr replay buffer"),
    CommandSpec("data", "teleop-demos", "df_agent.cli.data_teleop_demos", "scripted fruit-swap demos as rosbags"),
    CommandSpec("train", "teleop", "df_agent.cli.train_teleop", "train the DF imitation policy on teleop demos (zarr)"),
    CommandSpec("eval", "teleop", "df_agent.cli.eval_teleop", "fruit-swap success rate of a DF imitation policy"),
]
