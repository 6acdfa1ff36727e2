"""MuJoCo tabletop scene: a Franka Panda, three slots A/B/C, an apple and an orange, two cameras.

The Panda model and meshes are the ones shipped in gymnasium-robotics' ``kitchen_franka`` assets
(Copyright 2020 Google LLC and Vikash Kumar, Apache License 2.0; see ``envs/franka_swap/NOTICE``). They are
read from the installed ``gymnasium_robotics`` package at run time and handed to MuJoCo through its virtual
file system, so nothing is copied into this repository. Two small edits are made to the robot's XML text in
memory: a wrist camera is attached to the last link, and a tool-centre-point site is added between the
finger pads.

Control. The kitchen model drives the seven arm joints and the two fingers with position actuators, so a
target end-effector pose is followed by damped-least-squares differential IK: every control period the pose
error is mapped through the site Jacobian to a joint-space step, which (limited per period) becomes the
position actuators' set point. Gravity compensation on the arm bodies (MuJoCo ``gravcomp``) plays the role
of the real robot's model-based compensation, so the position servos do not sag. Fruits are free bodies:
they are grasped and carried purely by finger contact and friction (no weld).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import pathlib
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SLOT_NAMES: tuple[str, ...] = ("A", "B", "C")
# Slot centres on the table (metres, world frame; the robot base is at the origin, the table top is z = 0).
SLOT_POSITIONS: dict[str, np.ndarray] = {
    "A": np.array([0.50, -0.20, 0.0]),
    "B": np.array([0.50, 0.00, 0.0]),
    "C": np.array([0.50, 0.20, 0.0]),
}
FRUIT_NAMES: tuple[str, ...] = ("apple", "orange")
FRUIT_RADIUS: dict[str, float] = {"apple": 0.028, "orange": 0.030}
# "Each circular region is designed to be about double the diameter of a fruit" (paper, F.3).
SLOT_RADIUS = 0.06
HOME_JOINTS = np.array([0.044, -0.121, -0.042, -2.263, -0.006, 0.573, 0.007])  # TCP at (0.5, 0, 0.3), pointing down
# End effector pointing straight down (tool z axis = world -z), fingers opening along world y.
DOWN_QUAT_WXYZ = np.array([0.0, 1.0, 0.0, 0.0])
DISTRACTOR_PARKED = (0.0, 0.0, -1.0)  # under the table: invisible to both cameras
FINGER_OPEN = 0.04  # metres per finger (kitchen model's actuator range is [0, 0.04])

ARM_JOINTS: tuple[str, ...] = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS: tuple[str, ...] = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
# Names as a real Franka publishes them on /joint_states (franka_ros2).
PUBLIC_JOINT_NAMES: tuple[str, ...] = (
    *(f"fr3_joint{i}" for i in range(1, 8)),
    "fr3_finger_joint1",
    "fr3_finger_joint2",
)


def kitchen_franka_dir() -> pathlib.Path:
    """Directory of the installed gymnasium-robotics ``kitchen_franka/franka_assets``."""
    # find_spec, not import: importing gymnasium_robotics registers every env and prints warnings.
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("gymnasium-robotics is not installed; the Franka model comes from its kitchen assets")
    package = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = package / "envs" / "assets" / "kitchen_franka" / "franka_assets"
    if not (path / "chain.xml").is_file():
        raise FileNotFoundError(f"gymnasium-robotics kitchen_franka assets not found at {path}")
    return path


def _look_at_xyaxes(position: np.ndarray, target: np.ndarray, right: np.ndarray) -> str:
    """MJCF ``xyaxes`` of a camera at ``position`` looking at ``target``, image x axis close to ``right``."""
    forward = target - position
    forward /= np.linalg.norm(forward)
    x_axis = right - np.dot(right, forward) * forward
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(-forward, x_axis)  # camera looks along its -z, so z = -forward and y = z cross x
    return " ".join(f"{v:.5f}" for v in (*x_axis, *y_axis))


# Wrist camera, in link7's frame (z along the tool; the hand is turned -45 degrees about z, fingers open along
# the hand's y axis). It sits on the back of the hand and looks past the fingers at the table.
_HAND_X = np.array([np.cos(-np.pi / 4), np.sin(-np.pi / 4), 0.0])
_HAND_Y = np.array([-np.sin(-np.pi / 4), np.cos(-np.pi / 4), 0.0])
_WRIST_CAMERA_POS = 0.065 * _HAND_X + np.array([0.0, 0.0, 0.12])
WRIST_CAMERA_XML = (
    f"<camera name='wrist' pos='{' '.join(f'{v:.5f}' for v in _WRIST_CAMERA_POS)}' fovy='70' "
    f"xyaxes='{_look_at_xyaxes(_WRIST_CAMERA_POS, np.array([0.0, 0.0, 0.42]), _HAND_Y)}'/>\n"
    "<site name='tcp' pos='0 0 0.22' size='0.005' euler='0 0 -0.785398' rgba='1 0 0 0' group='4'/>\n"
)
FRONT_CAMERA_POS = np.array([1.10, 0.0, 0.72])
FRONT_CAMERA_XML = (
    f"<camera name='front' pos='{' '.join(f'{v:.5f}' for v in FRONT_CAMERA_POS)}' fovy='45' "
    f"xyaxes='{_look_at_xyaxes(FRONT_CAMERA_POS, np.array([0.40, 0.0, 0.10]), np.array([0.0, 1.0, 0.0]))}'/>"
)
_CHAIN_ANCHOR = "<site name='end_effector'"


def _robot_assets(visual_meshes: bool) -> dict[str, bytes]:
    """Kitchen Franka XML and meshes keyed by the names the scene XML uses (MuJoCo's virtual file system).

    ``visual_meshes=False`` draws the robot with its collision meshes (~250 faces per link instead of ~15k):
    at 32x32 pixels the images look the same and software (EGL/Mesa) rendering is several times faster.
    """
    root = kitchen_franka_dir()
    assets: dict[str, bytes] = {}
    # MuJoCo's virtual file system keys files by base name, and the collision and visual meshes share base
    # names, so they are registered as "collision_link0.stl" etc. and the XML references rewritten to match.
    for mesh in sorted((root / "meshes").rglob("*.stl")):
        assets[f"{mesh.parent.name}_{mesh.name}"] = mesh.read_bytes()
    chain = (root / "chain.xml").read_text()
    if _CHAIN_ANCHOR not in chain:
        raise RuntimeError(f"{root / 'chain.xml'}: no {_CHAIN_ANCHOR!r} to attach the wrist camera to")
    chain = chain.replace(_CHAIN_ANCHOR, WRIST_CAMERA_XML + _CHAIN_ANCHOR, 1)
    # The real robot compensates gravity in its controller; without it the position servos sag by centimetres.
    # (gravcomp must be in the XML: MuJoCo counts gravity-compensated bodies at compile time.)
    chain = chain.replace('<body name="panda0_', '<body gravcomp="1" name="panda0_')
    assets["franka_chain.xml"] = chain.encode()
    robot_assets = (root / "assets.xml").read_text()
    robot_assets = re.sub(r"meshdir=['\"][^'\"]*['\"]", "", robot_assets)
    robot_assets = robot_assets.replace('file="collision/', 'file="collision_')
    robot_assets = robot_assets.replace('file="visual/', 'file="visual_' if visual_meshes else 'file="collision_')
    assets["franka_assets.xml"] = robot_assets.encode()
    assets["franka_actuator.xml"] = (root / "actuator.xml").read_bytes()
    return assets


def _scene_xml() -> str:
    slot_geoms = "\n".join(
        f"<geom name='slot_{name}' type='cylinder' size='{SLOT_RADIUS} 0.0005' pos='{p[0]} {p[1]} 0.0005' "
        f"rgba='{rgba}' contype='0' conaffinity='0'/>"
        for (name, p), rgba in zip(SLOT_POSITIONS.items(), ("0.2 0.4 0.9 1", "0.2 0.8 0.3 1", "0.9 0.8 0.2 1"))
    )
    fruits = "\n".join(
        f"""<body name='{name}' pos='0.5 {0.6 + 0.1 * i} {FRUIT_RADIUS[name]}'>
              <freejoint name='{name}_joint'/>
              <geom name='{name}_geom' type='sphere' size='{FRUIT_RADIUS[name]}' mass='0.08' rgba='{rgba}'
                    friction='1.2 0.02 0.002' condim='6' solref='0.005 1' priority='1'/>
              <geom name='{name}_stem' type='cylinder' size='0.003 0.006' pos='0 0 {FRUIT_RADIUS[name] + 0.004}'
                    rgba='0.35 0.22 0.1 1' contype='0' conaffinity='0' mass='0.001'/>
            </body>"""
        for i, (name, rgba) in enumerate(zip(FRUIT_NAMES, ("0.8 0.05 0.05 1", "1.0 0.55 0.0 1")))
    )
    return f"""
<mujoco model='franka_fruit_swap'>
  <include file='franka_assets.xml'/>
  <compiler angle='radian' autolimits='true'/>
  <option timestep='0.002' integrator='implicitfast' cone='elliptic' impratio='5'/>
  <visual><global offwidth='640' offheight='480'/><quality shadowsize='0'/></visual>
  <asset>
    <texture name='table_tex' type='2d' builtin='checker' rgb1='.62 .5 .38' rgb2='.58 .46 .35'
             width='256' height='256'/>
    <material name='table_mat' texture='table_tex' texrepeat='4 4'/>
  </asset>
  <worldbody>
    <light directional='true' diffuse='.7 .7 .7' specular='0.1 0.1 0.1' pos='0 0 3' dir='0 0 -1'/>
    <light directional='false' diffuse='.4 .4 .4' specular='0 0 0' pos='1.5 0 1.5' dir='-1 0 -1'/>
    <geom name='table' type='plane' size='1.5 1.5 0.05' material='table_mat' contype='1' conaffinity='1'
          friction='1 0.02 0.002'/>
    {slot_geoms}
    {FRONT_CAMERA_XML}
    <body name='robot_base' pos='0 0 0'>
      <include file='franka_chain.xml'/>
    </body>
    {fruits}
    <!-- Visual distractor for robustness tests: no collisions, parked under the table until placed. -->
    <body name='distractor' mocap='true' pos='{DISTRACTOR_PARKED[0]} {DISTRACTOR_PARKED[1]} {DISTRACTOR_PARKED[2]}'>
      <geom name='distractor_geom' type='box' size='0.045 0.035 0.03' rgba='0.55 0.1 0.85 1'
            contype='0' conaffinity='0' mass='0.01'/>
    </body>
  </worldbody>
  <include file='franka_actuator.xml'/>
</mujoco>
"""


def _locked(method):
    """Run a scene method under the scene's lock: MuJoCo's MjData is not thread-safe, and the ROS 2 simulated
    robot steps, renders and reads the scene from different executor threads."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def _release_egl_context() -> None:
    """Unbind the EGL context from this thread after rendering.

    The renderer binds its context to the calling thread on every render; an EGL context still bound to one
    thread cannot be bound in another (EGL_BAD_ACCESS). Releasing it lets any thread render (the ROS 2 sim
    node renders from executor threads) and lets any thread close the renderer.
    """
    if os.environ.get("MUJOCO_GL", "").lower() != "egl":
        return
    from mujoco import egl

    if egl.EGL_DISPLAY is not None:
        egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_CONTEXT)


@dataclass(frozen=True)
class IKGains:
    """Differential-IK settings (why: the position servos need a joint-space set point)."""

    damping: float = 0.05  # damped least squares lambda
    max_joint_step: float = 0.12  # rad per control period, keeps set points near the robot
    nullspace_gain: float = 0.2  # pull towards HOME_JOINTS in the Jacobian's null space


class FrankaScene:
    """A simulated Franka Panda on a tabletop, following Cartesian target poses.

    ``step()`` advances one control period of ``dt`` seconds (``substeps`` physics steps of the model's
    timestep). Targets are world-frame positions and (w, x, y, z) quaternions of the tool centre point
    (``tcp`` site, between the finger pads, z axis along the fingers).
    """

    def __init__(
        self,
        image_size: int = 32,
        control_dt: float = 0.05,
        ik: IKGains | None = None,
        visual_meshes: bool = False,
    ) -> None:
        # Offscreen rendering without a display: EGL unless the user chose a backend (before mujoco is imported).
        os.environ.setdefault("MUJOCO_GL", "egl")
        import mujoco

        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_string(_scene_xml(), _robot_assets(visual_meshes))
        self.data = mujoco.MjData(self.model)
        self.image_size = int(image_size)
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.substeps = max(1, round(control_dt / self.model.opt.timestep))
        self.dt = self.substeps * self.model.opt.timestep
        self.ik = ik or IKGains()
        self.joint_names: tuple[str, ...] = PUBLIC_JOINT_NAMES
        m = self.model
        self._arm_qpos = np.array([m.jnt_qposadr[m.joint(j).id] for j in ARM_JOINTS])
        self._arm_dof = np.array([m.jnt_dofadr[m.joint(j).id] for j in ARM_JOINTS])
        self._finger_qpos = np.array([m.jnt_qposadr[m.joint(j).id] for j in FINGER_JOINTS])
        self._finger_dof = np.array([m.jnt_dofadr[m.joint(j).id] for j in FINGER_JOINTS])
        self._arm_act = np.array([m.actuator(f"panda0_joint{i}").id for i in range(1, 8)])
        self._finger_act = np.array([m.actuator("r_gripper_finger_joint").id, m.actuator("l_gripper_finger_joint").id])
        self._joint_low = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 0]
        self._joint_high = m.jnt_range[[m.joint(j).id for j in ARM_JOINTS], 1]
        self._tcp = m.site("tcp").id
        self._fruit_qpos = {f: m.jnt_qposadr[m.joint(f"{f}_joint").id] for f in FRUIT_NAMES}
        self._fruit_dof = {f: m.jnt_dofadr[m.joint(f"{f}_joint").id] for f in FRUIT_NAMES}
        self._lock = threading.RLock()
        self._renderers: dict[int, Any] = {}  # one per image size
        self._scene_option = mujoco.MjvOption()
        self._scene_option.sitegroup[:] = 0  # sites are markers for code, not things a camera sees
        self._jac_pos = np.zeros((3, m.nv))
        self._jac_rot = np.zeros((3, m.nv))
        self.target_position = np.zeros(3)
        self.target_quaternion = DOWN_QUAT_WXYZ.copy()
        self.gripper_command = 1.0
        self.time = 0.0
        self.reset()

    # ------------------------------------------------------------------ state
    @_locked
    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Put the arm at home, gripper open; fruits where ``options`` says (default: apple in A, orange in B).

        ``options``: ``{"fruit_positions": {"apple": xyz-or-xy, "orange": xyz-or-xy}}`` in world coordinates,
        or ``{"layout": {"apple": "A", "orange": "B"}}`` (slot centres). ``seed`` only seeds the (tiny) joint
        noise that makes resets non-identical; the same seed gives the same state.
        """
        options = dict(options or {})
        rng = np.random.default_rng(seed)
        self._mj.mj_resetData(self.model, self.data)
        joints = HOME_JOINTS + (rng.uniform(-0.02, 0.02, size=7) if seed is not None else 0.0)
        self.data.qpos[self._arm_qpos] = joints
        self.data.qpos[self._finger_qpos] = FINGER_OPEN
        positions = dict(options.get("fruit_positions") or {})
        layout = options.get("layout") or {"apple": "A", "orange": "B"}
        for fruit in FRUIT_NAMES:
            if fruit in positions:
                xyz = np.asarray(positions[fruit], dtype=float)
            elif fruit in layout:
                if layout[fruit] not in SLOT_POSITIONS:
                    raise ValueError(f"layout[{fruit!r}] = {layout[fruit]!r} is not a slot {SLOT_NAMES}")
                xyz = SLOT_POSITIONS[layout[fruit]][:2]
            else:
                raise ValueError(f"no position for {fruit!r} in options {options}")
            if xyz.shape == (2,):
                xyz = np.array([xyz[0], xyz[1], FRUIT_RADIUS[fruit]])
            if xyz.shape != (3,) or not np.all(np.isfinite(xyz)):
                raise ValueError(f"position of {fruit!r} must be 2 or 3 finite numbers, got {positions.get(fruit)}")
            adr = self._fruit_qpos[fruit]
            self.data.qpos[adr : adr + 3] = xyz
            self.data.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0)
        self.data.ctrl[self._arm_act] = joints
        self.data.ctrl[self._finger_act] = FINGER_OPEN
        self._mj.mj_forward(self.model, self.data)
        self.target_position, self.target_quaternion = self.ee_pose()
        self.gripper_command = 1.0
        self.time = 0.0

    @_locked
    def set_target_pose(self, position, quaternion_wxyz) -> None:
        """Cartesian target of the tool centre point (world frame); followed from the next ``step()`` on."""
        position = np.asarray(position, dtype=float).reshape(-1)
        quat = np.asarray(quaternion_wxyz, dtype=float).reshape(-1)
        if position.shape != (3,) or quat.shape != (4,):
            raise ValueError(f"target needs position[3] and quaternion_wxyz[4], got {position.shape}, {quat.shape}")
        if not (np.all(np.isfinite(position)) and np.all(np.isfinite(quat))):
            raise ValueError(f"target pose must be finite, got {position}, {quat}")
        norm = np.linalg.norm(quat)
        if norm < 1e-6:
            raise ValueError(f"target quaternion has zero norm: {quat}")
        self.target_position = position.copy()
        self.target_quaternion = quat / norm

    @_locked
    def set_gripper(self, command: float) -> None:
        """Gripper command in [0, 1]: 1 = fully open, 0 = closed (squeezes whatever is between the fingers)."""
        command = float(command)
        if not np.isfinite(command):
            raise ValueError(f"gripper command must be finite, got {command}")
        self.gripper_command = float(np.clip(command, 0.0, 1.0))

    @_locked
    def step(self) -> None:
        """Advance one control period: one IK update of the joint set points, then ``substeps`` physics steps."""
        self.data.ctrl[self._arm_act] = self._ik_joint_targets()
        self.data.ctrl[self._finger_act] = self.gripper_command * FINGER_OPEN
        self._mj.mj_step(self.model, self.data, nstep=self.substeps)
        self.time += self.dt

    def _ik_joint_targets(self) -> np.ndarray:
        mj, m, d = self._mj, self.model, self.data
        pos, quat = self.ee_pose()
        pos_err = self.target_position - pos
        rot_err = np.zeros(3)
        # Rotation taking the current orientation to the target, as a world-frame rotation vector.
        quat_err = np.zeros(4)
        conj = np.zeros(4)
        mj.mju_negQuat(conj, quat)
        mj.mju_mulQuat(quat_err, self.target_quaternion, conj)
        mj.mju_quat2Vel(rot_err, quat_err, 1.0)
        error = np.concatenate([pos_err, rot_err])
        mj.mj_jacSite(m, d, self._jac_pos, self._jac_rot, self._tcp)
        jac = np.vstack([self._jac_pos[:, self._arm_dof], self._jac_rot[:, self._arm_dof]])
        lam = self.ik.damping
        jjt = jac @ jac.T + lam**2 * np.eye(6)
        pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
        q = d.qpos[self._arm_qpos].copy()
        dq = pinv @ error
        null = np.eye(7) - pinv @ jac
        dq += null @ (self.ik.nullspace_gain * (HOME_JOINTS - q))
        step = np.max(np.abs(dq))
        if step > self.ik.max_joint_step:
            dq *= self.ik.max_joint_step / step
        return np.clip(q + dq, self._joint_low, self._joint_high)

    # ------------------------------------------------------------ read-outs
    @_locked
    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Tool-centre-point position [3] and orientation (w, x, y, z) [4] in the world frame."""
        pos = self.data.site_xpos[self._tcp].copy()
        quat = np.zeros(4)
        self._mj.mju_mat2Quat(quat, self.data.site_xmat[self._tcp])
        if quat[0] < 0:  # canonical hemisphere, so consecutive poses do not flip sign
            quat = -quat
        return pos, quat

    @_locked
    def joint_positions(self) -> np.ndarray:
        """Seven arm joints then the two finger joints (metres), ordered as ``joint_names``."""
        return np.concatenate([self.data.qpos[self._arm_qpos], self.data.qpos[self._finger_qpos]]).copy()

    @_locked
    def joint_velocities(self) -> np.ndarray:
        return np.concatenate([self.data.qvel[self._arm_dof], self.data.qvel[self._finger_dof]]).copy()

    @_locked
    def gripper_width(self) -> float:
        """Distance between the fingers (metres, 0.08 fully open)."""
        return float(np.sum(self.data.qpos[self._finger_qpos]))

    @_locked
    def fruit_position(self, fruit: str) -> np.ndarray:
        if fruit not in self._fruit_qpos:
            raise KeyError(f"unknown fruit {fruit!r}; fruits are {FRUIT_NAMES}")
        adr = self._fruit_qpos[fruit]
        return self.data.qpos[adr : adr + 3].copy()

    @_locked
    def set_distractor(self, position) -> None:
        """Show the visual distractor (a purple box, no collisions) at ``position`` [3], or hide it (None)."""
        body = self.model.body("distractor").mocapid[0]
        if position is None:
            self.data.mocap_pos[body] = DISTRACTOR_PARKED
        else:
            position = np.asarray(position, dtype=float).reshape(-1)
            if position.shape != (3,) or not np.all(np.isfinite(position)):
                raise ValueError(f"distractor position must be 3 finite numbers, got {position}")
            self.data.mocap_pos[body] = position
        self._mj.mj_kinematics(self.model, self.data)  # update the pose the renderer reads

    def fruit_radius(self, fruit: str) -> float:
        if fruit not in FRUIT_RADIUS:
            raise KeyError(f"unknown fruit {fruit!r}; fruits are {FRUIT_NAMES}")
        return FRUIT_RADIUS[fruit]

    def slot_of(self, fruit: str, tolerance: float = SLOT_RADIUS) -> str | None:
        """The slot whose circle holds the fruit's centre (fruit resting on the table), or None."""
        pos = self.fruit_position(fruit)
        if pos[2] > FRUIT_RADIUS[fruit] + 0.015:
            return None
        for name, centre in SLOT_POSITIONS.items():
            if np.linalg.norm(pos[:2] - centre[:2]) <= tolerance:
                return name
        return None

    @_locked
    def render(self, camera: str, size: int | None = None) -> np.ndarray:
        """RGB image ``uint8 [size, size, 3]`` from camera ``"front"`` or ``"wrist"``; ``size`` defaults to
        ``image_size`` (what a policy sees); a larger one (up to 480) is for videos."""
        if camera not in ("front", "wrist"):
            raise ValueError(f"unknown camera {camera!r}; cameras are 'front', 'wrist'")
        size = self.image_size if size is None else int(size)
        if not 8 <= size <= 480:
            raise ValueError(f"render size must be in 8..480 (the scene's offscreen buffer), got {size}")
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = self._mj.Renderer(self.model, size, size)
        renderer.update_scene(self.data, camera=camera, scene_option=self._scene_option)
        image = renderer.render().copy()
        _release_egl_context()
        return image

    @_locked
    def close(self) -> None:
        if self._renderers:
            for renderer in self._renderers.values():
                renderer.close()
            self._renderers = {}
            _release_egl_context()

    def __del__(self) -> None:  # renderer holds a GL context
        with contextlib.suppress(Exception):  # interpreter shutdown may have torn GL down already
            self.close()
