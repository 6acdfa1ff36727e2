"""Gymnasium environment: swap an apple and an orange between slots A and B using the empty slot C.

As in the paper (sections 4.4 and F.3), the apple starts in A or B at random, the orange in the other one,
each jittered inside its slot circle; only one fruit may be moved at a time. Because the scripted (and the
human) solution passes through the same intermediate arrangement from both initial layouts, the right next
move depends on the initial configuration: a policy needs memory.

Action (``float32 [7]``): end-effector translation delta (3, in units of ``pos_scale`` metres), rotation
delta (3, a world-frame rotation vector in units of ``rot_scale`` radians), gripper command in [0, 1]
(1 = open). The delta moves the *commanded* target pose (as a VR teleoperator moves the impedance
controller's target, and as the ROS 2 bridge does with ``delta_base: commanded``), not the measured pose:
with a compliant, lagging arm, deltas from the measured pose would under-travel every step and demos would
not replay. The target is then held for ``frame_skip`` control periods of the scene. So that it cannot wind
up while the arm is blocked, the target is kept within ``max_target_lead`` metres of the measured pose.
Defaults fit the scripted demos resampled at 10 Hz: ``pos_scale`` 7 cm per step (twice their fastest step, 3.6 cm:
``scripts/measure_demo_motion.py``),
``rot_scale`` 0.2 rad.
Observation: ``{"front": uint8 [H, W, 3], "wrist": uint8 [H, W, 3], "proprio": float32 [8], "corrupted": int8 [2]}``,
proprio = end-effector position (3), orientation quaternion w, x, y, z (4), gripper width in metres (1).
``info["commanded_target"]`` holds the commanded target pose (position 3, quaternion w, x, y, z 4).

Robustness evaluation (paper 4.4): ``corruption="distractor"`` shows a purple box drifting through the
workspace (visual only, no collisions), ``corruption="occlusion"`` covers three quarters of one camera's
frame, both in windows of ``corruption_steps`` env steps that start with probability ``corruption_rate`` per
step. ``obs["corrupted"]`` (int8 [2], front and wrist) marks the affected frames, so an evaluation can tell a
Diffusion Forcing policy they are noisy (k > 0) or not tell it. With ``"none"`` it is always zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from df_agent.geometry import quaternion_conjugate, quaternion_multiply, quaternion_to_rotvec, rotvec_to_quaternion
from envs.franka_swap.scene import FRUIT_NAMES, FRUIT_RADIUS, SLOT_POSITIONS, SLOT_RADIUS, FrankaScene

PROPRIO_DIM = 8
DEFAULT_SLOT_JITTER = 0.025  # metres: radius of the disc a fruit starts in, around its slot centre
CORRUPTIONS = ("none", "distractor", "occlusion")
# Position inside the robot's reach, unit quaternion, gripper width 0..0.08 m (with margin).
PROPRIO_LOW = np.array([-1.5, -1.5, -0.5, -1, -1, -1, -1, 0.0], dtype=np.float32)
PROPRIO_HIGH = np.array([1.5, 1.5, 1.5, 1, 1, 1, 1, 0.1], dtype=np.float32)


@dataclass(frozen=True)
class EpisodeStart:
    layout: dict[str, str]  # fruit -> slot ("A" or "B")
    fruit_positions: dict[str, list[float]]  # fruit -> (x, y) on the table, world frame
    scene_seed: int  # seeds the scene's own reset noise


def draw_episode_start(rng: np.random.Generator, slot_jitter: float,
                       layout: dict[str, str] | None = None) -> EpisodeStart:
    """The initial layout (apple in A or B at random, the orange in the other slot; or `layout`), each fruit
    uniform over a disc of radius `slot_jitter` in its slot, and the scene seed: the draws `reset` makes, so a
    simulator outside the env (`df-agent sim franka --seed S`) can start episode S exactly as the env does."""
    if layout is None:
        apple_slot = "A" if rng.random() < 0.5 else "B"
        layout = {"apple": apple_slot, "orange": "B" if apple_slot == "A" else "A"}
    if set(layout) != set(FRUIT_NAMES) or sorted(layout.values()) != ["A", "B"]:
        raise ValueError(f"layout must put the apple and the orange in slots A and B, got {layout}")
    positions = {}
    for fruit in FRUIT_NAMES:
        # Uniform over a disc: the fruit is anywhere in its slot, not only near the centre.
        radius = slot_jitter * np.sqrt(rng.random())
        angle = rng.uniform(0, 2 * np.pi)
        centre = SLOT_POSITIONS[layout[fruit]]
        positions[fruit] = [float(centre[0] + radius * np.cos(angle)), float(centre[1] + radius * np.sin(angle))]
    return EpisodeStart(dict(layout), positions, int(rng.integers(2**31)))


def episode_start(seed: int, slot_jitter: float = DEFAULT_SLOT_JITTER) -> EpisodeStart:
    """The start of the env's episode `reset(seed=seed)` (default options)."""
    from gymnasium.utils import seeding

    rng, _ = seeding.np_random(seed)
    return draw_episode_start(rng, slot_jitter)


def swap_succeeded(scene: FrankaScene, initial_layout: dict[str, str]) -> bool:
    """Both fruits rest (on the table, released) in the slot the other one started in."""
    if not initial_layout:
        return False
    layout = {fruit: scene.slot_of(fruit) for fruit in FRUIT_NAMES}
    if not (layout["apple"] == initial_layout["orange"] and layout["orange"] == initial_layout["apple"]):
        return False
    # "Released": the gripper is open wider than the fruit it could be holding.
    return scene.gripper_width() > 2 * max(FRUIT_RADIUS.values()) + 0.005


# The env's short names for the shared quaternion helpers (teleop and tests import them from here).
rotvec_to_quat = rotvec_to_quaternion
quat_multiply = quaternion_multiply
quat_to_rotvec = quaternion_to_rotvec
quat_conjugate = quaternion_conjugate


class FrankaFruitSwapEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        image_size: int = 32,
        control_dt: float = 0.05,
        frame_skip: int = 2,
        pos_scale: float = 0.07,
        rot_scale: float = 0.2,
        slot_jitter: float = DEFAULT_SLOT_JITTER,
        max_target_lead: float = 0.10,
        corruption: str = "none",
        corruption_rate: float = 0.05,
        corruption_steps: tuple[int, int] = (5, 15),
        render_mode: str | None = None,
    ) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if not 0.0 <= slot_jitter <= SLOT_RADIUS:
            raise ValueError(f"slot_jitter must be in [0, {SLOT_RADIUS}], got {slot_jitter}")
        if corruption not in CORRUPTIONS:
            raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}")
        if not 0.0 <= corruption_rate <= 1.0:
            raise ValueError(f"corruption_rate must be in [0, 1], got {corruption_rate}")
        if not 1 <= corruption_steps[0] <= corruption_steps[1]:
            raise ValueError(f"corruption_steps must be (min, max) with 1 <= min <= max, got {corruption_steps}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.scene = FrankaScene(image_size=image_size, control_dt=control_dt)
        self.frame_skip = int(frame_skip)
        self.pos_scale = float(pos_scale)
        self.rot_scale = float(rot_scale)
        self.slot_jitter = float(slot_jitter)
        self.max_target_lead = float(max_target_lead)
        self.target_position = np.zeros(3)
        self.target_quaternion = np.array([1.0, 0.0, 0.0, 0.0])
        self.corruption = corruption
        self.corruption_rate = float(corruption_rate)
        self.corruption_steps = (int(corruption_steps[0]), int(corruption_steps[1]))
        self._corruption_left = 0  # env steps left in the current corruption window
        self._corrupted_camera = "front"
        self._distractor_path = (np.zeros(3), np.zeros(3))
        self._corruption_step = 0
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": round(1.0 / (self.scene.dt * self.frame_skip))}
        image = spaces.Box(0, 255, shape=(image_size, image_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {
                "front": image,
                "wrist": image,
                "proprio": spaces.Box(PROPRIO_LOW, PROPRIO_HIGH, dtype=np.float32),
                # 1 where that camera's frame (front, wrist) is corrupted: what a policy may be told (k > 0).
                "corrupted": spaces.MultiBinary(2),
            }
        )
        low = np.array([-1.0] * 6 + [0.0], dtype=np.float32)
        self.action_space = spaces.Box(low, np.ones(7, dtype=np.float32), dtype=np.float32)
        self.initial_layout: dict[str, str] = {}

    @property
    def dt(self) -> float:
        return self.scene.dt * self.frame_skip

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """``options``: ``{"layout": {"apple": "A"|"B", "orange": "B"|"A"}}`` fixes the initial slots,
        ``{"jitter": False}`` puts the fruits at slot centres."""
        super().reset(seed=seed)
        options = dict(options or {})
        jitter = self.slot_jitter if options.get("jitter", True) else 0.0
        start = draw_episode_start(self.np_random, jitter, options.get("layout"))
        self.scene.reset(seed=start.scene_seed, options={"fruit_positions": start.fruit_positions})
        self.target_position, self.target_quaternion = self.scene.ee_pose()
        self._corruption_left = 0
        self.scene.set_distractor(None)
        self.initial_layout = dict(start.layout)
        return self._observation(), self._info()

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (7,):
            raise ValueError(f"action must have 7 numbers (dpos 3, drot 3, gripper 1), got shape {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        action = np.clip(action, self.action_space.low, self.action_space.high)
        pos, _ = self.scene.ee_pose()
        target = self.target_position + action[:3] * self.pos_scale
        lead = float(np.linalg.norm(target - pos))
        if lead > self.max_target_lead:
            target = pos + (target - pos) * (self.max_target_lead / lead)
        target_quat = quat_multiply(rotvec_to_quat(action[3:6] * self.rot_scale), self.target_quaternion)
        self.target_position, self.target_quaternion = target, target_quat / np.linalg.norm(target_quat)
        self.scene.set_target_pose(self.target_position, self.target_quaternion)
        self.scene.set_gripper(action[6])
        for _ in range(self.frame_skip):
            self.scene.step()
        self._advance_corruption()
        success = self.is_success()
        return self._observation(), float(success), success, False, self._info()

    def action_towards(self, target_pos: np.ndarray, target_quat: np.ndarray, gripper: float) -> np.ndarray:
        """The action (unclipped) that moves the commanded target to an absolute pose."""
        rot = quat_to_rotvec(quat_multiply(target_quat, quat_conjugate(self.target_quaternion)))
        dpos = (np.asarray(target_pos) - self.target_position) / self.pos_scale
        return np.concatenate([dpos, rot / self.rot_scale, [gripper]]).astype(np.float32)

    def current_layout(self) -> dict[str, str | None]:
        return {fruit: self.scene.slot_of(fruit) for fruit in FRUIT_NAMES}

    def is_success(self) -> bool:
        """Both fruits rest (on the table, released) in the slot the other one started in."""
        return swap_succeeded(self.scene, self.initial_layout)

    # ------------------------------------------------------------------ corruption (robustness evaluation)
    def _advance_corruption(self) -> None:
        """Start, continue or end a window of corrupted frames (paper 4.4: distractors, occlusion)."""
        if self.corruption == "none":
            return
        if self._corruption_left == 0 and self.np_random.random() < self.corruption_rate:
            low, high = self.corruption_steps
            self._corruption_left = int(self.np_random.integers(low, high + 1))
            self._corruption_step = 0
            self._corrupted_camera = "front" if self.np_random.random() < 0.5 else "wrist"
            # The distractor drifts across the workspace, between the slots and the cameras.
            start = np.array([self.np_random.uniform(0.35, 0.65), self.np_random.uniform(-0.3, 0.3), 0.0])
            end = np.array([self.np_random.uniform(0.35, 0.65), self.np_random.uniform(-0.3, 0.3), 0.0])
            start[2], end[2] = self.np_random.uniform(0.08, 0.25, size=2)
            self._distractor_path = (start, end)
        elif self._corruption_left > 0:
            self._corruption_left -= 1
            self._corruption_step += 1
        if self.corruption == "distractor":
            if self._corruption_left > 0:
                start, end = self._distractor_path
                alpha = self._corruption_step / max(1, self.corruption_steps[1])
                self.scene.set_distractor(start + (end - start) * min(1.0, alpha))
            else:
                self.scene.set_distractor(None)

    def corrupted_cameras(self) -> np.ndarray:
        """int8 [2]: (front, wrist) frames of the current observation that are corrupted."""
        flags = np.zeros(2, dtype=np.int8)
        if self._corruption_left > 0:
            if self.corruption == "distractor":
                flags[:] = 1  # the box may show in either view
            elif self.corruption == "occlusion":
                flags[0 if self._corrupted_camera == "front" else 1] = 1
        return flags

    def _observation(self) -> dict[str, np.ndarray]:
        pos, quat = self.scene.ee_pose()
        proprio = np.concatenate([pos, quat, [self.scene.gripper_width()]]).astype(np.float32)
        front, wrist = self.scene.render("front"), self.scene.render("wrist")
        flags = self.corrupted_cameras()
        if self.corruption == "occlusion" and flags.any():
            # Something covers the lens: most of the frame is a flat dark patch.
            occluded = front if flags[0] else wrist
            size = occluded.shape[0]
            occluded[: size * 3 // 4, :] = 20
        return {"front": front, "wrist": wrist, "proprio": proprio, "corrupted": flags}

    def _info(self) -> dict[str, Any]:
        return {
            "initial_layout": dict(self.initial_layout),
            "layout": self.current_layout(),
            "is_success": self.is_success(),
            "commanded_target": np.concatenate([self.target_position, self.target_quaternion]),
        }

    def render(self):
        if self.render_mode == "rgb_array":
            return self.scene.render("front")
        return None

    def close(self) -> None:
        self.scene.close()
