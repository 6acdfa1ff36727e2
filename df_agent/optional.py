"""Optional dependencies: imported only by the commands that use them, with an error that says how to install.

    require("cv2", extra="video")   # before `import cv2` in a function that writes videos

| extra         | packages                             | needed by                                           |
|---------------|--------------------------------------|-----------------------------------------------------|
| `video`       | opencv-python-headless, imageio, av  | `--video` (av: H.264 MP4), `data video-maze`, `eval video` |
| `teleop`      | rosbags, opencv-python-headless      | `data teleop-demos`, `data import-bags`              |
| `maze2d-data` | h5py (Minari's HDF5 storage)         | `data maze2d`, `train maze2d`                        |
| `ros2`        | rclpy, ROS messages, rosbags, opencv | `deploy ros2`, `sim franka`                          |
(imageio is also a dependency of gymnasium-robotics, so it is installed whatever the extras.)
"""

from __future__ import annotations

import importlib

# import name -> the distribution pip installs it from
DISTRIBUTIONS = {"cv2": "opencv-python-headless", "imageio": "imageio", "av": "av", "h5py": "h5py",
                 "rosbags": "rosbags", "rclpy": "ros-jazzy-rclpy"}


class MissingDependencyError(RuntimeError):
    """An optional dependency a command needs is not installed (`df-agent` prints this one line)."""


def require(*modules: str, extra: str) -> None:
    """Raise MissingDependencyError naming the pip extra when one of `modules` cannot be imported."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            distribution = DISTRIBUTIONS.get(module, module)
            raise MissingDependencyError(
                f"this needs the optional package {distribution} (import {module}): "
                f"pip install 'df-agent[{extra}]'") from error
