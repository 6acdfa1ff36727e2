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
]
