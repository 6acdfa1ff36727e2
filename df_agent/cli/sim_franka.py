"""`df-agent sim franka`: a simulated Franka (MuJoCo Panda) on the real robot's ROS 2 topics."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from df_agent.atomic_io import write_json_atomic
from df_agent.provenance import command_of, with_provenance

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="robot YAML (default: hardware/configs/robot.yaml)")
    parser.add_argument("--seed", type=int, default=0,
                        help="fruit-swap episode: fruits placed as `eval teleop` episode SEED places them")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument("--bag", type=Path, default=None, help="record what the robot publishes and receives here")
    parser.add_argument("--bag-storage", choices=("sqlite3", "mcap"), default="sqlite3",
                        help="rosbag2 storage of --bag")
    parser.add_argument("--report", type=Path, default=None,
                        help="write final ee pose, step counts and the swap's outcome (stages, success) as JSON")
    parser.add_argument("--video", type=Path, default=None, metavar="PATH",
                        help="H.264 MP4 of the session (front | wrist camera; a GIF beside PATH where no H.264 "
                             "encoder is installed)")
    parser.add_argument("--video-fps", type=float, default=10.0, help="frames per second of --video")
    parser.add_argument("--video-size", type=int, default=240, help="pixels per camera in --video (8-480)")
    parser.add_argument(
        "--ros-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after it goes to ROS (e.g. --ros-args -r __ns:=/arm), as in ros2 run",
    )


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from envs.franka_swap.evaluation import SwapTask
    from hardware.config import load_config
    from hardware.sim_node import SimFrankaNode, make_backend
    from hardware.spin import spin_until_stopped

    if args.video is not None and (args.video_fps <= 0 or not 8 <= args.video_size <= 480):
        raise ValueError("--video-fps must be > 0 and --video-size in 8..480")
    config = load_config(args.config)
    backend = make_backend(config)
    task = SwapTask.for_seed(args.seed) if config.sim.backend == "franka_scene" else None
    video = None
    if args.video is not None:
        from df_agent.media import VideoWriter

        video = VideoWriter(args.video, fps=args.video_fps)
    ros_args = ["df-agent", "--ros-args", *args.ros_args] if args.ros_args else None
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = SimFrankaNode(config, backend, seed=task.scene_seed if task else args.seed,
                             reset_options=task.reset_options if task else None,
                             monitor=task.watch if task else None, bag_path=args.bag,
                             bag_storage=args.bag_storage, video=video, video_fps=args.video_fps,
                             video_size=args.video_size)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        why = spin_until_stopped(executor, args.duration)
        log.info("stopping (%s)", why)
        executor.shutdown(timeout_sec=2.0)
        node.close()
        position, quaternion = backend.ee_pose()
        summary = {
            "steps": node.steps,
            "targets_received": node.targets_received,
            "final_ee_position": [float(v) for v in position],
            "final_ee_quaternion": [float(v) for v in quaternion],
            "bag": str(args.bag) if args.bag else None,
            "bag_messages": dict(node.recorder.counts) if node.recorder else {},
            "video": str(video.path) if video is not None and video.frames_written else None,
            "video_frames": video.frames_written if video is not None else 0,
            "task": task.outcome(backend) if task else None,
        }
        node.destroy_node()
    finally:
        if video is not None:
            video.abort()  # only if an error left it open
        if hasattr(backend, "close"):
            backend.close()
        rclpy.try_shutdown()
    print(json.dumps(summary, indent=2))
    if args.report:
        write_json_atomic(args.report, with_provenance(summary, command_of(args)))
    return 0
