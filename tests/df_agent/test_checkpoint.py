"""Checkpoint directories: round trip, atomic replacement, and clear refusal of every kind of bad input."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_testkit import TinyDenoiser, fitted_tiny_model

from df_agent import checkpoint as ckpt
from df_agent.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    load_checkpoint,
    read_checkpoint_config,
    register_model_type,
    registered_model_types,
    resolve_model_class,
    save_checkpoint,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch):
    """Any unpickling during these tests is a failure: loading a checkpoint must never execute code."""

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint loader called pickle/torch.load")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


def _rewrite_config(directory: Path, change) -> None:
    config = json.loads((directory / "config.json").read_text())
    change(config)
    (directory / "config.json").write_text(json.dumps(config))


def test_round_trip_keeps_weights_normalisers_and_metadata(tmp_path):
    model = fitted_tiny_model()
    path = save_checkpoint(tmp_path / "ckpt", model, {"step": 7, "data": {"source": "sines"}})
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]

    loaded = load_checkpoint(path)
    assert type(loaded) is TinyDenoiser and not loaded.training
    _assert_same_state(model, loaded)
    assert bool(loaded.token_normalizer.fitted) and torch.equal(loaded.token_normalizer.scale,
                                                                model.token_normalizer.scale)

    config = read_checkpoint_config(path)
    assert config["model_type"] == "test_tiny_denoiser"
    assert config["model_config"] == model.config_dict()
    assert config["metadata"] == {"step": 7, "data": {"source": "sines"}}
    assert config["versions"]["torch"] == torch.__version__
    assert len(config["files"]["model.safetensors"]["sha256"]) == 64
    # Also accepted: the path of a file inside the checkpoint.
    _assert_same_state(model, load_checkpoint(path / "model.safetensors"))


def test_overwrite_replaces_atomically_and_leaves_no_temp_dirs(tmp_path):
    first, second = fitted_tiny_model(seed=1), fitted_tiny_model(seed=2)
    save_checkpoint(tmp_path / "ckpt", first)
    save_checkpoint(tmp_path / "ckpt", second)
    _assert_same_state(second, load_checkpoint(tmp_path / "ckpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_failed_write_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    old = fitted_tiny_model(seed=1)
    save_checkpoint(tmp_path / "ckpt", old)

    def crash(tmp_dir: Path) -> None:
        assert (tmp_dir / "model.safetensors").exists()  # the new weights were already written
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path / "ckpt", fitted_tiny_model(seed=2), write_extra=crash)
    _assert_same_state(old, load_checkpoint(tmp_path / "ckpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_process_killed_mid_write_leaves_previous_checkpoint(tmp_path):
    """A real crash (os._exit, no cleanup handlers) while the new checkpoint is half written."""
    old = fitted_tiny_model(seed=1)
    save_checkpoint(tmp_path / "ckpt", old)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from training_testkit import fitted_tiny_model
        from df_agent.checkpoint import save_checkpoint
        def die(tmp_dir):
            (tmp_dir / "model.safetensors").write_bytes(b"half")
            os._exit(9)
        save_checkpoint({str(tmp_path / "ckpt")!r}, fitted_tiny_model(seed=2), write_extra=die)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
    assert result.returncode == 9, result.stderr.decode()
    assert any(p.name.startswith(".ckpt.tmp-") for p in tmp_path.iterdir())  # the crash left its temp dir
    _assert_same_state(old, load_checkpoint(tmp_path / "ckpt"))
    # The next save clears the dead process's leftovers.
    save_checkpoint(tmp_path / "ckpt", old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_missing_directory_and_files(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model())
    (path / "config.json").unlink()
    with pytest.raises(CheckpointNotFoundError, match=r"config\.json does not exist"):
        load_checkpoint(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match=r"model\.safetensors does not exist"):
        load_checkpoint(path)


def test_truncated_weights_are_reported(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model())
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated"):
        load_checkpoint(path)
    weights.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="shorter than the 8-byte header"):
        load_checkpoint(path)
    weights.write_bytes(data[:60])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_corrupted_weights_are_reported(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model())
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit inside the tensor data: structurally fine, caught by the checksum
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)
    data = bytearray(weights.read_bytes())
    data[8:12] = b"\x00\xff{{"  # garbage in the JSON header
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        load_checkpoint(path)


def test_invalid_json_config(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model())
    (path / "config.json").write_text('{"format": "df-agent-checkpoint", "model_type": ')
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON: .* line 1"):
        load_checkpoint(path)
    (path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="must hold a JSON object"):
        load_checkpoint(path)


def test_unknown_model_type(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model())
    _rewrite_config(path, lambda c: c.update(model_type="no_such_model"))
    with pytest.raises(CheckpointError, match=r"unknown model_type 'no_such_model' \(registered: .*df_lowdim"):
        load_checkpoint(path)


def test_config_that_does_not_match_the_weights(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", fitted_tiny_model(hidden=32))
    _rewrite_config(path, lambda c: c["model_config"].update(hidden=16))
    expected = r"shape mismatch .*encoder\.0\.weight: file \[32, 2\] vs model \[16, 2\]"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)
    _rewrite_config(path, lambda c: c["model_config"].update(hidden=32, bogus=1))
    with pytest.raises(CheckpointError, match=r"model_config is not valid for TinyDenoiser .*bogus"):
        load_checkpoint(path)


def test_missing_and_unexpected_tensors(tmp_path):
    model = fitted_tiny_model()
    state = dict(model.state_dict())
    state.pop("net.2.bias")
    state["extra.weight"] = torch.zeros(3)
    path = save_checkpoint(tmp_path / "ckpt", model, state_dict=state)
    expected = r"missing tensors \[net\.2\.bias\]; unexpected tensors \[extra\.weight\]"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)


def test_pickle_files_are_refused_without_being_opened(tmp_path):
    model = fitted_tiny_model()
    pt_file = tmp_path / "model.pt"
    with open(pt_file, "wb") as handle:
        pickle.dump({"weights": [1, 2, 3]}, handle)
    with pytest.raises(CheckpointError, match=r"model\.pt is a pickle-based file .*execute arbitrary code"):
        load_checkpoint(pt_file)

    # A pickle without a telling suffix is recognised by its content.
    disguised = tmp_path / "weights"
    disguised.write_bytes(pt_file.read_bytes())
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_checkpoint(disguised)

    # A directory holding only torch.save output.
    directory = tmp_path / "old_style"
    directory.mkdir()
    (directory / "checkpoint.ckpt").write_bytes(pt_file.read_bytes())
    with pytest.raises(CheckpointError, match=r"checkpoint\.ckpt .*refused because loading them can execute"):
        load_checkpoint(directory)

    # A pickle renamed to model.safetensors inside an otherwise valid checkpoint.
    path = save_checkpoint(tmp_path / "ckpt", model)
    (path / "model.safetensors").write_bytes(pt_file.read_bytes())
    with pytest.raises(CheckpointError, match=r"pickle/torch\.save file renamed"):
        load_checkpoint(path)


@pytest.mark.parametrize("header_len", [640, 896, 1152, 1408])
def test_safetensors_whose_header_length_looks_like_a_pickle_opcode_still_load(tmp_path, header_len):
    # A header of 640 bytes starts the file with 0x80 0x02: a pickle's protocol-2 opcode. Such files are valid
    # safetensors (training-state files of small models hit this) and must not be refused as pickles.
    import struct

    from safetensors.torch import load_file

    from df_agent.checkpoint import read_safetensors_header

    values = torch.arange(4, dtype=torch.float32)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    header = header + b" " * (header_len - len(header))
    path = tmp_path / "weights.safetensors"
    path.write_bytes(struct.pack("<Q", header_len) + header + values.numpy().tobytes())
    assert path.read_bytes()[:1] == b"\x80"
    assert read_safetensors_header(path)["w"]["shape"] == [4]
    assert torch.equal(load_file(str(path))["w"], values)


def test_registry_resolves_lazily_and_checks_targets(tmp_path):
    assert registered_model_types()["df_lowdim"] == "df_agent.model:DFModel"
    register_model_type("test_by_path", "df_agent.normalizer:Normalizer", overwrite=True)
    from df_agent.normalizer import Normalizer

    assert resolve_model_class("test_by_path") is Normalizer
    register_model_type("test_broken", "df_agent.no_such_module:Thing", overwrite=True)
    with pytest.raises(CheckpointError, match="cannot be imported"):
        resolve_model_class("test_broken")
    with pytest.raises(ValueError, match="already registered"):
        register_model_type("test_tiny_denoiser", "df_agent.normalizer:Normalizer")
    with pytest.raises(ValueError, match="module:ClassName"):
        register_model_type("test_bad_path", "df_agent.normalizer.Normalizer")
    with pytest.raises(CheckpointError, match="no class attribute `model_type`"):
        save_checkpoint(tmp_path / "x", torch.nn.Linear(2, 2))


def test_saving_tied_weights(tmp_path):
    model = fitted_tiny_model()
    state = dict(model.state_dict())
    state["tied_copy"] = state["net.0.weight"]  # shares memory, which safetensors refuses unless copied
    path = save_checkpoint(tmp_path / "ckpt", model, state_dict=state)
    assert ckpt.read_safetensors_header(path / "model.safetensors")["tied_copy"]["shape"] == [32, 36]


def test_dfmodel_round_trip_through_the_default_registry_in_a_fresh_process(tmp_path):
    """"df_lowdim" resolves lazily to df_agent.model:DFModel in a process that never imported it."""
    from df_agent.model import DFModel, DFModelConfig

    model = DFModel(DFModelConfig(token_dim=3, context_dim=2, latent_dim=16, hidden_dim=32, mlp_layers=2,
                                  num_levels=100, token_spec={"obs": [0, 2]}))
    model.token_normalizer.fit(torch.randn(100, 3) * 3 + 1)
    model.context_normalizer.fit(torch.randn(100, 2))
    path = save_checkpoint(tmp_path / "df", model, {"step": 1})
    loaded = load_checkpoint(path)
    assert type(loaded) is DFModel and loaded.config == model.config
    _assert_same_state(model, loaded)

    script = textwrap.dedent(f"""
        import sys, torch
        from df_agent.checkpoint import load_checkpoint
        assert "df_agent.model" not in sys.modules
        model = load_checkpoint({str(path)!r})
        print(type(model).__module__, type(model).__name__, float(model.token_normalizer.shift.sum()))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    module, name, shift_sum = result.stdout.split()
    assert (module, name) == ("df_agent.model", "DFModel")
    assert float(shift_sum) == pytest.approx(float(model.token_normalizer.shift.sum()))


@pytest.mark.parametrize("model_type", sorted(ckpt.DEFAULT_MODEL_TYPES))
def test_every_default_model_type_resolves_to_its_class(model_type):
    assert resolve_model_class(model_type).model_type == model_type
