"""Expert maze2d data the way D4RL made it, stored as a local Minari dataset.

One continuing stream: the waypoint controller (value iteration over cells, PD on jittered waypoints,
p 10, d -1) plus N(0, 0.5^2) action noise drives the ball; whenever the current target is reached (or
`episode_steps` pass without reaching it, D4RL's timeout) a new target is drawn uniformly over free cells
(+ U(-0.1, 0.1)) and the ball carries on from where it is. The physics is stepped directly on the env's
MuJoCo model (`FastPointMass`, the same step as the env) so a million steps take well under a minute.

With `hold_steps` H > 0 the expert, after reaching a target, keeps holding it (same PD on the target, same
action noise) for U{0..H} more steps before the next target is drawn. D4RL's expert never rests, so without
holds no demonstration shows a ball kept at a goal, which is what a maze2d episode scores (docs/maze2d_results.md).

The stream is cut into Minari episodes of `segment_steps` steps (the last one shorter), each truncated; the
physics is continuous across the cuts (episode k+1 starts at episode k's last observation).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.maze2d.maps import env_id_for, get_maze

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_STEPS = 10_000
ALGORITHM_NAME = "D4RL waypoint controller (value iteration + PD p=10 d=-1) with N(0, 0.5^2) action noise"


def default_dataset_id(maze: str) -> str:
    get_maze(maze)
    return f"df-agent/maze2d-{maze}-v0"


@dataclass
class ExpertStream:
    maze: str
    observations: np.ndarray  # [steps + 1, 4] float64: o_0 .. o_steps
    actions: np.ndarray  # [steps, 2] float32, clipped to [-1, 1]
    rewards: np.ndarray  # [steps] float64: 1 if o_{t+1} is within 0.5 of the goal in force at step t
    goals: np.ndarray  # [steps + 1, 2] float64: the target in force when o_t was observed
    targets_reached: int
    timeouts: int
    seconds: float


def generate_expert_stream(
    maze: str,
    steps: int,
    seed: int = 0,
    action_noise: float = 0.5,
    progress: bool = True,
    hold_steps: int = 0,
    hold_action_noise: float | None = None,
) -> ExpertStream:
    from envs.maze2d.env import (
        GOAL_POSITION_NOISE,
        GOAL_RADIUS,
        RESET_POSITION_NOISE,
        RESET_VELOCITY_STD,
        Maze2DEnv,
    )
    from envs.maze2d.expert import WaypointController
    from envs.maze2d.fast_sim import FastPointMass

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0, got {action_noise}")
    if hold_steps < 0:
        raise ValueError(f"hold_steps must be >= 0, got {hold_steps}")
    if hold_action_noise is not None and hold_action_noise < 0:
        raise ValueError(f"hold_action_noise must be >= 0, got {hold_action_noise}")
    # Noise while holding, as a fraction of the stream's noise (the draws stay those of the stream without holds).
    hold_noise_ratio = 1.0 if hold_action_noise is None or action_noise == 0 else hold_action_noise / action_noise
    spec = get_maze(maze)
    env = Maze2DEnv(maze, multi_goal=True)
    grid = env.grid
    sim = FastPointMass(env.model)
    rng = np.random.default_rng(seed)
    cells = grid.free_cells

    def random_point(noise: float) -> tuple[float, float]:
        cx, cy = grid.cell_to_xy(cells[int(rng.integers(len(cells)))])
        dx, dy = rng.uniform(-noise, noise, size=2)
        return cx + float(dx), cy + float(dy)

    start = random_point(RESET_POSITION_NOISE)
    sim.set_state(np.array(start), rng.normal(0.0, RESET_VELOCITY_STD, size=2))
    controller = WaypointController(grid, rng)
    x, y, vx, vy = sim.state()
    target = random_point(GOAL_POSITION_NOISE)
    controller.set_target(target, x, y)

    noise = (rng.normal(0.0, action_noise, size=(steps, 2)) if action_noise > 0 else np.zeros((steps, 2))).tolist()
    observations = np.empty((steps + 1, 4))
    goals = np.empty((steps + 1, 2))
    actions = np.empty((steps, 2), dtype=np.float32)
    rewards = np.empty(steps)
    observations[0] = x, y, vx, vy
    goals[0] = target
    radius_sq = GOAL_RADIUS**2
    since_target, reached, timeouts = 0, 0, 0
    holding = -1  # steps left holding a reached target; -1: not holding
    # Hold lengths come from their own generator so that hold_steps=0 reproduces the stream without holds.
    hold_rng = np.random.default_rng([seed, 1])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=f"maze2d-{maze} expert", unit="step", unit_scale=True)
    started = time.perf_counter()
    for t in range(steps):
        ax, ay, solved = controller.act(x, y, vx, vy)
        nx, ny = noise[t]
        if holding > 0:
            nx, ny = nx * hold_noise_ratio, ny * hold_noise_ratio
        ax = min(1.0, max(-1.0, ax + nx))
        ay = min(1.0, max(-1.0, ay + ny))
        actions[t] = ax, ay
        x, y, vx, vy = sim.step(ax, ay)
        observations[t + 1] = x, y, vx, vy
        tx, ty = target
        rewards[t] = 1.0 if (x - tx) ** 2 + (y - ty) ** 2 <= radius_sq else 0.0
        since_target += 1
        timed_out = since_target >= spec.episode_steps
        if holding < 0 and solved:
            reached += 1
            holding = int(hold_rng.integers(hold_steps + 1)) if hold_steps > 0 else 0
        elif holding < 0 and timed_out:
            timeouts += 1
            holding = 0
        if holding > 0:  # keep driving to the reached target; act() steers to it once solved
            holding -= 1
        elif holding == 0:
            holding = -1
            target = random_point(GOAL_POSITION_NOISE)
            controller.set_target(target, x, y)
            since_target = 0
        goals[t + 1] = target
        if bar is not None and (t + 1) % 10_000 == 0:
            bar.update(10_000)
    if bar is not None:
        bar.update(steps - bar.n)
        bar.close()
    env.close()
    seconds = time.perf_counter() - started
    log.info(
        "%d expert steps on %s in %.1f s (%d targets reached, %d timeouts)", steps, maze, seconds, reached, timeouts
    )
    return ExpertStream(maze, observations, actions, rewards, goals, reached, timeouts, seconds)


def _episode_buffers(stream: ExpertStream, segment_steps: int):
    from minari.data_collector import EpisodeBuffer

    steps = len(stream.actions)
    for episode, begin in enumerate(range(0, steps, segment_steps)):
        end = min(begin + segment_steps, steps)
        truncations = np.zeros(end - begin, dtype=bool)
        truncations[-1] = True
        yield EpisodeBuffer(
            id=episode,
            observations=stream.observations[begin : end + 1],
            actions=stream.actions[begin:end],
            rewards=stream.rewards[begin:end],
            terminations=np.zeros(end - begin, dtype=bool),
            truncations=truncations,
            infos={"goal": stream.goals[begin : end + 1]},
        )


def write_minari_dataset(
    stream: ExpertStream,
    dataset_id: str,
    segment_steps: int = DEFAULT_SEGMENT_STEPS,
    overwrite: bool = False,
    extra_metadata: dict | None = None,
) -> Path:
    """Create the Minari dataset in a scratch root, then move it into place (an old copy survives failures)."""
    import warnings

    from df_agent.optional import require

    require("h5py", extra="maze2d-data")  # Minari's HDF5 storage

    import minari
    from minari.storage import get_dataset_path

    import envs  # noqa: F401  (registers the env ids recorded in the dataset's spec)
    from envs.maze2d.reference_scores import reference_scores

    if segment_steps < 1:
        raise ValueError(f"segment_steps must be >= 1, got {segment_steps}")
    final_path = Path(get_dataset_path(dataset_id))
    if final_path.exists() and not overwrite:
        raise FileExistsError(f"Minari dataset {dataset_id!r} already exists at {final_path}; pass --overwrite")
    root = Path(get_dataset_path()).resolve()
    scratch = root / f".tmp-{uuid.uuid4().hex}"
    env_id = env_id_for(stream.maze)
    ref_min, ref_max = reference_scores(stream.maze)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(scratch)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(code_permalink|author_email).*")
            dataset = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=list(_episode_buffers(stream, segment_steps)),
                env=env_id,
                eval_env=env_id,
                algorithm_name=ALGORITHM_NAME,
                author="df-agent",
                description=(
                    f"D4RL-style expert data on {env_id}: one continuing stream of {len(stream.actions)} steps cut "
                    f"into episodes of {segment_steps} steps; infos['goal'] is the target in force."
                ),
                ref_min_score=ref_min,
                ref_max_score=ref_max,
                num_episodes_average_score=100,
            )
            dataset.storage.update_metadata(
                {
                    "maze": stream.maze,
                    "segment_steps": segment_steps,
                    "targets_reached": stream.targets_reached,
                    "target_timeouts": stream.timeouts,
                    "reference_protocol": "d4rl",
                    "ref_max_score_replanning": reference_scores(stream.maze, "replanning")[1],
                    **(extra_metadata or {}),
                }
            )
        built = Path(get_dataset_path(dataset_id))
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    try:
        namespace = dataset_id.rsplit("/", 1)[0] if "/" in dataset_id else None
        if namespace is not None and namespace not in minari.namespace.list_local_namespaces():
            minari.namespace.create_namespace(namespace)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        backup = None
        if final_path.exists():
            backup = final_path.with_name(f".{final_path.name}.old-{uuid.uuid4().hex}")
            os.replace(final_path, backup)
        os.replace(built, final_path)
        if backup is not None:
            shutil.rmtree(backup)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final_path


def generate_maze2d_dataset(
    maze: str,
    steps: int | None = None,
    seed: int = 0,
    action_noise: float = 0.5,
    segment_steps: int = DEFAULT_SEGMENT_STEPS,
    dataset_id: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    hold_steps: int = 0,
    hold_action_noise: float | None = None,
) -> tuple[str, ExpertStream, Path]:
    spec = get_maze(maze)
    dataset_id = dataset_id or default_dataset_id(maze)
    steps = spec.default_dataset_steps if steps is None else steps
    from minari.storage import get_dataset_path

    if Path(get_dataset_path(dataset_id)).exists() and not overwrite:  # fail before minutes of generation
        raise FileExistsError(f"Minari dataset {dataset_id!r} already exists; pass --overwrite to replace it")
    stream = generate_expert_stream(
        maze, steps, seed=seed, action_noise=action_noise, progress=progress, hold_steps=hold_steps,
        hold_action_noise=hold_action_noise,
    )
    path = write_minari_dataset(
        stream,
        dataset_id,
        segment_steps=segment_steps,
        overwrite=overwrite,
        extra_metadata={"generator_seed": seed, "action_noise": action_noise, "hold_steps": hold_steps,
                        "hold_action_noise": action_noise if hold_action_noise is None else hold_action_noise},
    )
    return dataset_id, stream, path
