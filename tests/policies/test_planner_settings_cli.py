"""A planner setting travels from the command line to the sampler as one typed value: `--guidance-scale` given
once reaches `sample`'s SamplerConfig; not given, the checkpoint's `metadata.planner_defaults` apply."""

from __future__ import annotations

import json
import shutil

import pytest

import planners.df_planner
from df_agent.cli.main import main
from envs.maze2d.policies import default_checkpoint


@pytest.fixture
def sampler_configs(monkeypatch):
    """Every SamplerConfig the planner hands to `df_agent.sampler.sample` during the test."""
    seen = []
    real = planners.df_planner.sample

    def recording(model, levels, z_start, *args, config=None, **kwargs):
        seen.append(config)
        return real(model, levels, z_start, *args, config=config, **kwargs)

    monkeypatch.setattr(planners.df_planner, "sample", recording)
    return seen


@pytest.fixture
def tuned_checkpoint(tmp_path):
    """The shipped umaze checkpoint with planner_defaults {guidance_scale: 0.07, mcg_samples: 2}."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(default_checkpoint("maze2d-umaze-v0"), checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["metadata"]["planner_defaults"] = {"guidance_scale": 0.07, "mcg_samples": 2}
    (checkpoint / "config.json").write_text(json.dumps(config))
    return checkpoint


def eval_args(checkpoint, out, *extra):
    return ["eval", "maze2d", "--env", "maze2d-umaze-v0", "--policy", str(checkpoint), "--episodes", "1",
            "--num-envs", "1", "--sampling-steps", "1", "--max-horizon", "1", "--out", str(out), "--no-progress",
            *extra]


def test_guidance_scale_flag_reaches_the_sampler(tuned_checkpoint, tmp_path, sampler_configs, capsys):
    out = tmp_path / "r.json"
    assert main(eval_args(tuned_checkpoint, out, "--guidance-scale", "0.123", "--repair-level", "0")) == 0
    assert sampler_configs and {config.guidance_scale for config in sampler_configs} == {0.123}
    # The flag replaces the checkpoint's tuned guidance scale only; its other tuned setting stays.
    assert {config.mcg_samples for config in sampler_configs} == {2}
    result = json.loads(out.read_text())
    planner = result["planner"]
    assert planner["guidance_scale"] == 0.123 and planner["config"]["sampler"]["guidance_scale"] == 0.123
    assert "planner           df g0.123" in capsys.readouterr().out  # the printed table names the planner
    # The results file names what produced it.
    assert result["produced_by"]["command"].startswith("df-agent eval maze2d --env maze2d-umaze-v0")
    assert "--guidance-scale 0.123" in result["produced_by"]["command"]
    assert {"version", "git_commit", "created_utc"} <= set(result["produced_by"])


def test_without_the_flag_the_checkpoint_planner_defaults_apply(tuned_checkpoint, tmp_path, sampler_configs):
    out = tmp_path / "r.json"
    assert main(eval_args(tuned_checkpoint, out)) == 0
    assert sampler_configs and {(c.guidance_scale, c.mcg_samples) for c in sampler_configs} == {(0.07, 2)}
    assert json.loads(out.read_text())["planner"]["config"]["sampler"]["guidance_scale"] == 0.07


def test_every_planner_setting_flag_has_help_and_no_second_default():
    import argparse

    from df_agent.cli import eval_maze2d

    parser = argparse.ArgumentParser()
    eval_maze2d.add_arguments(parser)
    settings = eval_maze2d.planner_settings_from_args(parser.parse_args(["--env", "maze2d-umaze-v0"]))
    assert {"guidance_scale", "mcg_samples", "sampling_steps", "precision", "selection_samples"} <= set(settings)
    assert all(value is None for value in settings.values())  # the one default lives in the dataclass
    assert all(action.help for action in parser._actions)


def test_stall_backoff_flags_reach_the_policy_and_bad_values_name_the_flag(tuned_checkpoint, tmp_path, monkeypatch,
                                                                           capsys):
    from policies.mpc import MPCPolicy

    built = []
    real_init = MPCPolicy.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(MPCPolicy, "__init__", recording_init)
    out = tmp_path / "r.json"
    assert main(eval_args(tuned_checkpoint, out, "--stall-backoff", "0.3", "--stall-floor", "0.2")) == 0
    rule = built[-1].stall_backoff
    assert (rule.factor, rule.floor, rule.stuck_distance) == (0.3, 0.2, 0.1)
    assert json.loads(out.read_text())["planner"]["stall_backoff"] == {"factor": 0.3, "floor": 0.2}
    assert main(eval_args(tuned_checkpoint, out)) == 0
    assert built[-1].stall_backoff is None  # off unless asked for (or in the checkpoint's planner_defaults)
    capsys.readouterr()
    assert main(eval_args(tuned_checkpoint, out, "--stall-backoff", "1.5")) == 1
    assert "--stall-*: stall back-off factor must be in (0, 1)" in capsys.readouterr().err
    assert main(eval_args(tuned_checkpoint, out, "--stall-backoff", "0", "--stall-floor", "0.2")) == 1
    assert "takes no other --stall" in capsys.readouterr().err
