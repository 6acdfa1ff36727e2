"""Fast checks of the simulated Franka scene and the fruit-swap gymnasium env (real MuJoCo physics)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs.franka_swap  # noqa: F401  (registers FrankaFruitSwap-v0)
from envs.franka_swap.env import FrankaFruitSwapEnv, quat_multiply, quat_to_rotvec, rotvec_to_quat
from envs.franka_swap.scene import DOWN_QUAT_WXYZ, SLOT_POSITIONS, FrankaScene


@pytest.fixture(scope="module")
def scene() -> FrankaScene:
    scene = FrankaScene(image_size=32)
    yield scene
    scene.close()


def _quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.arccos(min(1.0, abs(float(np.dot(a, b))))))


def test_scene_loads_with_api(scene: FrankaScene) -> None:
    scene.reset()
    assert scene.dt == pytest.approx(0.05)
    assert len(scene.joint_names) == 9
    assert scene.joint_positions().shape == (9,)
    assert scene.joint_velocities().shape == (9,)
    pos, quat = scene.ee_pose()
    assert pos.shape == (3,) and quat.shape == (4,)
    assert np.linalg.norm(quat) == pytest.approx(1.0)
    # Home: above slot B, pointing down, gripper open.
    np.testing.assert_allclose(pos, [0.5, 0.0, 0.3], atol=0.01)
    assert _quat_angle(quat, DOWN_QUAT_WXYZ) < 0.02
    assert scene.gripper_width() == pytest.approx(0.08, abs=1e-3)


def test_arm_reaches_target_pose(scene: FrankaScene) -> None:
    scene.reset()
    yaw = rotvec_to_quat(np.array([0.0, 0.0, 0.4]))
    target_quat = quat_multiply(yaw, DOWN_QUAT_WXYZ)
    target = np.array([0.45, 0.15, 0.15])
    scene.set_target_pose(target, target_quat)
    for _ in range(60):  # 3 s
        scene.step()
    pos, quat = scene.ee_pose()
    assert np.linalg.norm(pos - target) < 0.005
    assert _quat_angle(quat, target_quat) < 0.02
    assert np.abs(scene.joint_velocities()[:7]).max() < 0.05  # settled, not oscillating


def test_gripper_opens_and_closes(scene: FrankaScene) -> None:
    scene.reset()
    scene.set_gripper(0.0)
    for _ in range(30):
        scene.step()
    assert scene.gripper_width() < 0.005
    scene.set_gripper(1.0)
    for _ in range(30):
        scene.step()
    assert scene.gripper_width() > 0.075
    with pytest.raises(ValueError, match="finite"):
        scene.set_gripper(float("nan"))


def _move(scene: FrankaScene, goal, steps: int) -> None:
    start = scene.target_position.copy()
    for i in range(steps):
        alpha = 0.5 - 0.5 * np.cos(np.pi * (i + 1) / steps)
        scene.set_target_pose(start + (np.asarray(goal) - start) * alpha, DOWN_QUAT_WXYZ)
        scene.step()


def test_fruit_is_grasped_and_carried_by_contact(scene: FrankaScene) -> None:
    scene.reset(options={"layout": {"apple": "A", "orange": "B"}})
    apple = scene.fruit_position("apple")
    _move(scene, [apple[0], apple[1], 0.15], 30)
    _move(scene, [apple[0], apple[1], 0.045], 20)
    scene.set_gripper(0.0)
    _move(scene, [apple[0], apple[1], 0.045], 15)
    assert 0.05 < scene.gripper_width() < 0.06  # fingers stopped by the apple, not closed
    _move(scene, [apple[0], apple[1], 0.18], 20)
    assert scene.fruit_position("apple")[2] > 0.12  # lifted by friction alone
    slot_c = SLOT_POSITIONS["C"]
    _move(scene, [slot_c[0], slot_c[1], 0.18], 30)
    _move(scene, [slot_c[0], slot_c[1], 0.05], 20)
    scene.set_gripper(1.0)
    _move(scene, [slot_c[0], slot_c[1], 0.05], 10)
    _move(scene, [slot_c[0], slot_c[1], 0.18], 20)
    assert scene.slot_of("apple") == "C"
    assert scene.slot_of("orange") == "B"


def test_render_shapes(scene: FrankaScene) -> None:
    scene.reset()
    for camera in ("front", "wrist"):
        image = scene.render(camera)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert image.std() > 5  # not a blank frame
    assert not np.array_equal(scene.render("front"), scene.render("wrist"))
    with pytest.raises(ValueError, match="unknown camera"):
        scene.render("top")


def test_render_and_step_from_other_threads(scene: FrankaScene) -> None:
    """The ROS 2 sim node steps and renders from executor threads; an EGL context must not stick to one."""
    import threading

    scene.reset()
    expected = scene.render("front")
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(scene.render("front"))
        except BaseException as error:  # reported below
            errors.append(error)

    for _ in range(2):
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
    assert not errors, errors
    for image in results:
        np.testing.assert_array_equal(image, expected)
    np.testing.assert_array_equal(scene.render("front"), expected)


def test_bad_targets_rejected(scene: FrankaScene) -> None:
    with pytest.raises(ValueError, match="finite"):
        scene.set_target_pose([0.5, np.nan, 0.2], DOWN_QUAT_WXYZ)
    with pytest.raises(ValueError, match="position\\[3\\]"):
        scene.set_target_pose([0.5, 0.2], DOWN_QUAT_WXYZ)
    with pytest.raises(ValueError, match="zero norm"):
        scene.set_target_pose([0.5, 0.0, 0.2], [0, 0, 0, 0])


def test_scene_seeded_reset_is_deterministic() -> None:
    runs = []
    for _ in range(2):
        scene = FrankaScene(image_size=16)
        scene.reset(seed=7)
        scene.set_target_pose([0.45, -0.1, 0.2], DOWN_QUAT_WXYZ)
        for _ in range(10):
            scene.step()
        runs.append((scene.joint_positions(), scene.render("front")))
        scene.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_env_seeded_reset_and_spaces() -> None:
    env = gym.make("FrankaFruitSwap-v0")
    obs_a, info_a = env.reset(seed=11)
    obs_b, info_b = env.reset(seed=11)
    for key in ("front", "wrist", "proprio"):
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    assert info_a["initial_layout"] == info_b["initial_layout"]
    assert env.observation_space.contains(obs_a)
    layouts = {env.reset(seed=s)[1]["initial_layout"]["apple"] for s in range(12)}
    assert layouts == {"A", "B"}  # both initial configurations occur
    obs, reward, terminated, _truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert reward == 0.0 and not terminated and not info["is_success"]
    with pytest.raises(ValueError, match="7 numbers"):
        env.step(np.zeros(3))
    env.close()


def test_env_delta_action_moves_commanded_target() -> None:
    env = FrankaFruitSwapEnv()
    env.reset(seed=0, options={"jitter": False})
    start = env.scene.ee_pose()[0]
    for _ in range(10):
        env.step(np.array([0, 0, -0.3, 0, 0, 0, 1], dtype=np.float32))
    for _ in range(10):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    # The deltas add up on the commanded target (10 x 0.3 x pos_scale down), and the arm gets there.
    expected = start + np.array([0.0, 0.0, -3.0 * env.pos_scale])
    np.testing.assert_allclose(env.target_position, expected, atol=1e-9)
    np.testing.assert_allclose(env.scene.ee_pose()[0], expected, atol=0.005)
    # A target far ahead is pulled back to within max_target_lead of the measured pose (no wind-up).
    for _ in range(5):
        env.step(np.array([1, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    assert np.linalg.norm(env.target_position - env.scene.ee_pose()[0]) <= env.max_target_lead + 1e-9
    env.close()


def test_rotation_helpers_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        rotvec = rng.uniform(-1, 1, 3)
        np.testing.assert_allclose(quat_to_rotvec(rotvec_to_quat(rotvec)), rotvec, atol=1e-9)


@pytest.mark.parametrize("corruption", ["distractor", "occlusion"])
def test_env_corruption_windows_are_flagged(corruption: str) -> None:
    clean = FrankaFruitSwapEnv(image_size=16)
    corrupt = FrankaFruitSwapEnv(image_size=16, corruption=corruption, corruption_rate=0.3)
    clean.reset(seed=4)
    corrupt.reset(seed=4)
    hold = np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32)
    flagged = differing = 0
    for _ in range(25):
        obs_clean, *_ = clean.step(hold)
        obs, *_ = corrupt.step(hold)
        np.testing.assert_allclose(obs["proprio"], obs_clean["proprio"], atol=1e-6)  # only the images change
        for camera_index, camera in enumerate(("front", "wrist")):
            changed = not np.array_equal(obs[camera], obs_clean[camera])
            if obs["corrupted"][camera_index]:
                flagged += 1
                differing += changed
            else:
                assert not changed, "an unflagged frame must be clean"
    assert flagged > 0 and differing > 0
    assert corrupt.observation_space.contains(obs)
    clean.close()
    corrupt.close()
    with pytest.raises(ValueError, match="corruption"):
        FrankaFruitSwapEnv(corruption="rain")
