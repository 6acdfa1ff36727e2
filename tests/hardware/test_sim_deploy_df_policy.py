"""`df-agent deploy ros2 --checkpoint` runs a DF imitation policy checkpoint against `df-agent sim franka`
over real Fast DDS in a private network namespace: the checkpoint type is found without extra imports, the
policy sees the simulated cameras and proprioception, and the arm follows its (safety-checked) commands."""

from __future__ import annotations

import json
import shlex
import sys

import numpy as np
import pytest

# These run real DDS participants whose timers share one Python executor; on a busy 2-core machine a
# scenario occasionally misses its timing window (the bridge sees stale state and holds), so a failed
# scenario is re-run in a fresh process before it counts as a failure.
pytestmark = [pytest.mark.ros2, pytest.mark.flaky(reruns=2, reruns_delay=1)]

START = np.array([0.497, -0.004, 0.296])  # the simulated Panda's home end-effector position


def test_deploy_runs_a_df_imitation_checkpoint_on_the_simulated_franka(netns_run, tmp_path):
    from df_agent.checkpoint import save_checkpoint
    from tests.imitation.imitation_helpers import fitted_model, tiny_config

    checkpoint = save_checkpoint(tmp_path / "df_policy", fitted_model(tiny_config(image_size=16)))
    cli = f"{shlex.quote(sys.executable)} -m df_agent.cli.main"
    sim_report, deploy_report = tmp_path / "sim.json", tmp_path / "deploy.json"
    script = (
        f"{cli} sim franka --duration 12 --seed 1 --report {sim_report} > {tmp_path}/sim.log 2>&1 & sim=$!; "
        f"{cli} deploy ros2 --checkpoint {checkpoint} --duration 9 "
        f"--report {deploy_report} > {tmp_path}/deploy.log 2>&1; deploy=$?; wait $sim; echo rc $deploy $?"
    )
    proc = netns_run(["bash", "-c", script], timeout=150)
    logs = (tmp_path / "sim.log").read_text()[-3000:] + (tmp_path / "deploy.log").read_text()[-3000:]
    assert proc.stdout.strip().endswith("rc 0 0"), f"{proc.stdout}\n{proc.stderr}\n{logs}"

    sim = json.loads(sim_report.read_text())
    deploy = json.loads(deploy_report.read_text())
    assert deploy["loop"]["commands"] > 5 and sim["targets_received"] > 5, logs
    assert deploy["safety"]["non_finite"] == 0, logs
    # The bridge converts the actions with the policy's own units (the fruit-swap env's), with no --param.
    assert deploy["config"]["resolved"]["bridge"]["action_scale"] == [0.07, 0.2], deploy["config"]
    # The simulator started fruit-swap episode 1 as the env does and reports how far the swap got.
    from envs.franka_swap.evaluation import SwapTask

    assert sim["task"]["initial_layout"] == SwapTask.for_seed(1).initial_layout
    assert sim["task"]["success"] is False and sim["task"]["stages_completed"] == 0
    moved = float(np.linalg.norm(np.asarray(sim["final_ee_position"]) - START))
    assert moved > 0.005, f"the arm did not follow the DF policy's commands (moved {moved:.4f} m)\n{logs}"
