"""Data-parallel training under torchrun with 2 gloo processes on CPU (loopback only)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import fixed_batch
from training_testkit import fitted_tiny_model

from df_agent.checkpoint import read_checkpoint_config
from df_agent.training.distributed import DistributedContext, env_ranks, wrap_for_training

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def torchrun_output(tmp_path_factory) -> Path:
    """One torchrun launch of 2 CPU ranks shared by the tests below (process start-up dominates their cost)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(WORKER), str(out)]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return out


def test_ddp_gradients_equal_single_process_gradients_on_the_whole_batch(torchrun_output):
    reference = fitted_tiny_model(seed=0)
    loss, _ = wrap_for_training(reference, torch.device("cpu"), DistributedContext())(fixed_batch())
    loss.backward()
    for rank in (0, 1):
        grads = load_file(str(torchrun_output / f"grads_rank{rank}.safetensors"))
        assert grads.keys() == dict(reference.named_parameters()).keys()
        for name, param in reference.named_parameters():
            torch.testing.assert_close(grads[name], param.grad, rtol=1e-5, atol=1e-7, msg=f"rank {rank}: {name}")


def test_torchrun_training_run_completes_in_sync_and_resumes(torchrun_output):
    reports = [json.loads((torchrun_output / f"train_rank{rank}.json").read_text()) for rank in (0, 1)]
    run = torchrun_output / "run"
    assert reports[0]["first"]["done"] == 6 and reports[1]["first"]["done"] == 6
    assert reports[0]["first"]["final"] == str(run / "final") and reports[1]["first"]["final"] == "None"
    assert [r["second"]["start"] for r in reports] == [6, 6] and [r["second"]["done"] for r in reports] == [9, 9]
    # Each rank trained on its own shard of the batch, so their local losses differ.
    assert reports[0]["first"]["losses"] != reports[1]["first"]["losses"]
    # Ranks started from different weights (and rank 1 resumed from rank 0's files) yet ended identical.
    weights = [load_file(str(torchrun_output / f"weights_rank{rank}.safetensors")) for rank in (0, 1)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    trained = load_file(str(run / "checkpoints" / "step_00000009" / "training_state" / "model.safetensors"))
    assert all(torch.equal(weights[0][k], trained[k]) for k in trained)
    # Only rank 0 wrote: one set of checkpoints, recording the world size.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000006", "step_00000009"]
    metadata = read_checkpoint_config(run / "final")["metadata"]
    assert metadata["world_size"] == 2 and metadata["step"] == 9
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]


def test_dfmodel_trains_under_ddp(torchrun_output):
    reports = [json.loads((torchrun_output / f"dfmodel_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["done"] for r in reports] == [3, 3] and all(len(r["losses"]) == 3 for r in reports)
    assert read_checkpoint_config(torchrun_output / "dfmodel_run" / "final")["model_type"] == "df_lowdim"


def test_env_ranks_reads_the_launcher_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert env_ranks() is None
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_ranks() == (3, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="inconsistent launcher environment"):
        env_ranks()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x' is not an integer"):
        env_ranks()
