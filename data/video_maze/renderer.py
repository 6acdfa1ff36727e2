"""First-person MuJoCo rendering of a block maze (offscreen; set MUJOCO_GL=egl on headless machines).

Every wall block is a static box whose material depends on its quadrant, so the view tells roughly where
in the maze the agent is (as DMLab's per-region wall textures do). The camera is MuJoCo's free camera placed
at eye height and looking along the agent's heading; nothing is simulated, so no physics step is needed.
"""

from __future__ import annotations

import math
import os

import numpy as np

from data.video_maze.agent import Pose
from data.video_maze.maze import quadrant

# (light, dark) checker colours of the walls in quadrants 0..3: red brick, teal, ochre, violet.
QUADRANT_COLOURS: tuple[tuple[str, str], ...] = (
    (".80 .32 .25", ".55 .20 .16"),
    (".25 .65 .70", ".14 .42 .48"),
    (".85 .72 .30", ".60 .48 .16"),
    (".58 .38 .78", ".38 .22 .55"),
)
WALL_HEIGHT = 1.0
EYE_HEIGHT = 0.5
# Segmentation classes returned by `MazeRenderer.segment`.
SKY, FLOOR, WALL = 0, 1, 2


def maze_mjcf(walls: np.ndarray, fovy_degrees: float = 75.0, resolution: int = 64) -> str:
    rows, cols = walls.shape
    materials = "".join(
        f'<texture name="wall{q}" type="2d" builtin="checker" rgb1="{light}" rgb2="{dark}" width="16" height="16"/>'
        f'<material name="wall{q}" texture="wall{q}" texrepeat="1 1" texuniform="true"/>'
        for q, (light, dark) in enumerate(QUADRANT_COLOURS)
    )
    boxes = "".join(
        f'<geom name="wall_{r}_{c}" type="box" pos="{c} {r} {WALL_HEIGHT / 2}" '
        f'size=".5 .5 {WALL_HEIGHT / 2}" material="wall{quadrant(walls.shape, (r, c))}"/>'
        for r in range(rows)
        for c in range(cols)
        if walls[r, c]
    )
    size = max(rows, cols)
    return f"""<mujoco model="video_maze">
  <statistic extent="{size}" center="{(cols - 1) / 2} {(rows - 1) / 2} 0"/>
  <visual>
    <global fovy="{fovy_degrees}" offwidth="{resolution}" offheight="{resolution}"/>
    <quality shadowsize="0"/>
    <map znear="0.005" zfar="4"/>
    <headlight ambient=".45 .45 .45" diffuse=".5 .5 .5" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1=".55 .70 .95" rgb2=".15 .25 .55" width="64" height="64"/>
    <texture name="floor" type="2d" builtin="checker" rgb1=".45 .42 .38" rgb2=".32 .30 .27" width="32" height="32"/>
    <material name="floor" texture="floor" texrepeat="{cols} {rows}"/>
    {materials}
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 5" dir=".3 .2 -1" diffuse=".4 .4 .4" specular="0 0 0"/>
    <geom name="floor" type="plane" pos="{(cols - 1) / 2} {(rows - 1) / 2} 0" size="{cols / 2} {rows / 2} .1"
      material="floor"/>
    {boxes}
  </worldbody>
</mujoco>"""


class MazeRenderer:
    """Renders `Pose`s inside one maze. Reuse one instance for a whole trajectory (building it compiles a model)."""

    def __init__(self, walls: np.ndarray, resolution: int = 64, fovy_degrees: float = 75.0) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")
        import mujoco

        if resolution < 8:
            raise ValueError(f"resolution must be >= 8 pixels, got {resolution}")
        self._mujoco = mujoco
        self.walls = np.asarray(walls, dtype=bool)
        self.resolution = resolution
        self.model = mujoco.MjModel.from_xml_string(maze_mjcf(self.walls, fovy_degrees, resolution))
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)  # static geoms get their world poses here
        self._renderer = mujoco.Renderer(self.model, resolution, resolution)
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self._camera.elevation = 0.0
        self._camera.distance = 1e-3  # the free camera orbits `lookat`; a tiny radius makes it a first-person eye
        self._floor_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "floor")

    def _place_camera(self, pose: Pose) -> None:
        distance = self._camera.distance
        self._camera.lookat[:] = (
            pose.x + distance * math.cos(pose.angle),
            pose.y + distance * math.sin(pose.angle),
            EYE_HEIGHT,
        )
        self._camera.azimuth = math.degrees(pose.angle)
        self._renderer.update_scene(self.data, camera=self._camera)

    def render(self, pose: Pose) -> np.ndarray:
        """RGB uint8 `[resolution, resolution, 3]` seen from `pose`."""
        self._place_camera(pose)
        return self._renderer.render().copy()

    def segment(self, pose: Pose) -> np.ndarray:
        """Per-pixel class (SKY, FLOOR or WALL) seen from `pose`, from MuJoCo's segmentation pass."""
        self._place_camera(pose)
        self._renderer.enable_segmentation_rendering()
        try:
            ids = self._renderer.render()[..., 0].copy()
        finally:
            self._renderer.disable_segmentation_rendering()
        classes = np.full(ids.shape, WALL, dtype=np.uint8)
        classes[ids < 0] = SKY
        classes[ids == self._floor_id] = FLOOR
        return classes

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> MazeRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
