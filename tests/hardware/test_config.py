"""Config loading: the packaged default is valid; every kind of bad value is rejected with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.config import DEFAULT_CONFIG_PATH, ConfigError, RobotConfig, flatten, load_config


def test_packaged_default_matches_the_dataclass_defaults():
    loaded = load_config()
    assert loaded == RobotConfig()
    assert loaded.safety.enabled, "safety must be on by default"
    assert DEFAULT_CONFIG_PATH.is_file()


def test_overrides_use_dotted_keys():
    config = load_config(overrides={"safety.max_translation_per_step": 0.01, "topics.cameras": {"top": "/top/image"}})
    assert config.safety.max_translation_per_step == 0.01
    assert config.topics.cameras == {"top": "/top/image"}


def test_flatten_gives_ros_parameter_names():
    flat = flatten(RobotConfig().to_dict())
    assert flat["safety.workspace_min"] == (0.25, -0.45, 0.03)
    assert flat["topics.cameras.front"] == "camera/front/image_raw"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"safety.max_translation_per_step": -0.01}, "safety.max_translation_per_step must be > 0, got -0.01"),
        ({"safety.max_rotation_per_step": 0}, "safety.max_rotation_per_step must be > 0"),
        ({"safety.state_timeout_s": "fast"}, "safety.state_timeout_s must be a number, got 'fast'"),
        ({"safety.enabled": "yes"}, "safety.enabled must be true or false"),
        ({"safety.workspace_min": [0.1, 0.2]}, "safety.workspace_min must be a list of 3 numbers"),
        ({"safety.workspace_max": [0.1, float("nan"), 0.3]}, "finite"),
        ({"safety.workspace_min": [0.8, -0.4, 0.1]}, "workspace_min[0]=0.8 must be < workspace_max[0]=0.75"),
        ({"safety.camera_stale_s": 2.0}, "camera_stale_s (2.0) must be <= camera_missing_s"),
        ({"safety.max_target_distance": 0.01}, "or every step would be rejected"),
        ({"safety.speed": 1}, "unknown key(s) ['safety.speed']"),
        ({"bridge.control_rate_hz": 0}, "bridge.control_rate_hz must be > 0"),
        ({"bridge.delta_base": "target"}, "bridge.delta_base must be one of"),
        ({"bridge.catch_up_ticks": -1}, "bridge.catch_up_ticks must be >= 0"),
        ({"bridge.image_size": [32, 32.5]}, "bridge.image_size must contain integers only"),
        ({"bridge.noise_levels.stale": 2000}, "need 0 < stale <= missing"),
        ({"bridge.action_scale": [0.05, -1]}, "bridge.action_scale must be positive"),
        ({"qos.cameras.preset": "fastest"}, "qos.cameras.preset must be one of"),
        ({"qos.commands.depth": 0}, "qos.commands.depth must be >= 1"),
        ({"topics.target_pose": "bad topic"}, "'bad topic' is not a valid ROS topic name"),
        ({"topics.joint_states": "camera/front/image_raw"}, "topic names must be distinct"),
        ({"topics.cameras": {}}, "topics.cameras must name at least one camera"),
        ({"topics.cameras": {"proprio": "/x/image"}}, "clashes with an observation key"),
        ({"gripper.backend": "magnet"}, "gripper.backend must be one of"),
        ({"sim.backend": "pybullet"}, "sim.backend must be one of"),
        ({"sim.image_size": 4}, "sim.image_size must be >= 8"),
        ({"frame_id": ""}, "frame_id must be a non-empty string"),
    ],
)
def test_bad_values_are_rejected_naming_key_and_value(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(overrides=overrides)
    assert message in str(error.value)
    assert str(DEFAULT_CONFIG_PATH) in str(error.value), "the error names the file"


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("safety: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listing)
    section = tmp_path / "section.yaml"
    section.write_text("safety: 3\n")
    with pytest.raises(ConfigError, match="safety must be a mapping"):
        load_config(section)
