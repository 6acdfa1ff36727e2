"""The training loop: it learns, it checkpoints, and an interrupted run resumes bit-for-bit."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_testkit import NoisySines, TinyDenoiser, fitted_tiny_model

from df_agent.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_config
from df_agent.model import DFModel, DFModelConfig
from df_agent.training import TensorBatchSource, TrainConfig, iterate_metrics, train
from df_agent.training.ema import EMA
from df_agent.training.lr_schedule import lr_factor
from df_agent.training.state import optimizer_state_from_flat, optimizer_state_to_flat


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: intra-op threads only add synchronisation overhead (badly so on a loaded 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**changes) -> TrainConfig:
    base = dict(steps=24, batch_size=16, lr=3e-3, warmup_steps=5, lr_schedule="cosine", min_lr_ratio=0.1,
                grad_clip_norm=1.0, ema_decay=0.9, checkpoint_every=8, keep_checkpoints=2, log_every=4,
                device="cpu", progress=False, seed=3)
    base.update(changes)
    return TrainConfig(**base)


class _Recorder:
    """on_step hook: records every loss; raises at `crash_at` to simulate a process dying mid-run."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.losses: dict[int, torch.Tensor] = {}
        self.crash_at = crash_at

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        self.losses[step] = loss.clone()
        if step == self.crash_at:
            raise KeyboardInterrupt("simulated crash")


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_interrupted_and_resumed_run_equals_uninterrupted_run_bitwise(tmp_path):
    data = NoisySines()
    reference = _Recorder()
    result = train(fitted_tiny_model(seed=0), data, _config(), tmp_path / "straight", on_step=reference)
    assert result.steps_completed == 24 and len(reference.losses) == 24
    assert result.losses == [reference.losses[s].item() for s in range(1, 25)]

    crashed = _Recorder(crash_at=13)
    with pytest.raises(KeyboardInterrupt):
        train(fitted_tiny_model(seed=0), data, _config(), tmp_path / "resumed", on_step=crashed)
    assert max(crashed.losses) == 13
    # Resume into a model with different initial weights: everything must come from the checkpoint.
    resumed = _Recorder()
    result = train(fitted_tiny_model(seed=5), data, _config(), tmp_path / "resumed", resume="auto", on_step=resumed)
    assert result.start_step == 8 and min(resumed.losses) == 9 and result.steps_completed == 24

    for step in range(1, 25):
        expected = reference.losses[step]
        got = crashed.losses[step] if step <= 8 else resumed.losses[step]
        assert torch.equal(got, expected), f"step {step}: {got.item()!r} != {expected.item()!r}"
    for step in range(9, 14):  # the steps the crash lost were replayed identically
        assert torch.equal(crashed.losses[step], resumed.losses[step])

    straight_final = load_checkpoint(tmp_path / "straight" / "final")
    resumed_final = load_checkpoint(tmp_path / "resumed" / "final")
    assert _state_equal(straight_final, resumed_final)

    # metrics.jsonl of the resumed run: the replayed steps appear once, in order.
    steps = [r["step"] for r in iterate_metrics(tmp_path / "resumed") if "loss" in r]
    assert steps == [4, 8, 12, 16, 20, 24]
    straight_records = [r["loss"] for r in iterate_metrics(tmp_path / "straight") if "loss" in r]
    resumed_records = [r["loss"] for r in iterate_metrics(tmp_path / "resumed") if "loss" in r]
    assert straight_records == resumed_records


def test_training_learns_and_writes_checkpoints(tmp_path):
    data = NoisySines()
    untrained = fitted_tiny_model(seed=0)
    config = _config(steps=80, batch_size=32, checkpoint_every=20, log_every=20, validate_every=40,
                     lr_schedule="constant", ema_decay=0.95)
    result = train(fitted_tiny_model(seed=0), data, config, tmp_path, metadata={"experiment": "sines"})

    # Compare held-out loss of the shipped (EMA) weights against the untrained model, same noise draws.
    shipped = load_checkpoint(result.final_checkpoint)
    generator = torch.Generator().manual_seed(777)
    batch = data.sample_batch(512, generator)
    batch["alpha_bar"] = torch.rand(batch["tokens"].shape[:2], generator=generator)
    batch["noise"] = torch.randn(batch["tokens"].shape, generator=generator)
    with torch.no_grad():
        trained_loss = shipped.loss(batch)[0].item()
        untrained_loss = untrained.loss(batch)[0].item()
    assert trained_loss < 0.65 * untrained_loss, (trained_loss, untrained_loss)  # reaches ~0.45 in 60 steps

    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["step_00000060", "step_00000080"]  # keep_checkpoints=2 pruned steps 20 and 40
    assert sorted(p.name for p in result.final_checkpoint.iterdir()) == ["config.json", "model.safetensors"]
    assert (result.last_checkpoint / "training_state" / "optimizer.safetensors").is_file()
    metadata = read_checkpoint_config(result.final_checkpoint)["metadata"]
    assert metadata["step"] == 80 and metadata["weights"] == "ema" and metadata["experiment"] == "sines"
    assert metadata["data"]["source"] == "NoisySines" and metadata["train_config"]["batch_size"] == 32

    records = list(iterate_metrics(tmp_path))
    train_records = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_records] == [20, 40, 60, 80]
    assert all(r["tokens_per_s"] > 0 and math.isfinite(r["loss"]) for r in train_records)
    assert all(r["model/mse"] == pytest.approx(r["loss"]) for r in train_records)  # the model's own metrics
    assert all(r["grad_norm_max"] >= r["grad_norm"] > 0 for r in train_records)
    assert [r["step"] for r in records if "val_loss" in r] == [40, 80]
    assert json.loads((tmp_path / "train_config.json").read_text())["steps"] == 80


def test_stop_request_writes_resumable_checkpoint(tmp_path):
    result = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path,
                   on_step=lambda step, loss: step == 6)
    assert result.stopped_early and result.steps_completed == 6 and result.final_checkpoint is None
    assert result.last_checkpoint.name == "step_00000006"
    result = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path, resume=True)
    assert result.start_step == 6 and result.steps_completed == 24 and result.final_checkpoint.is_dir()


def test_fresh_run_refuses_a_run_dir_with_checkpoints(tmp_path):
    train(fitted_tiny_model(), NoisySines(), _config(steps=4, checkpoint_every=2), tmp_path)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(fitted_tiny_model(), NoisySines(), _config(steps=4), tmp_path)


def test_resume_into_a_different_architecture_is_refused(tmp_path):
    train(fitted_tiny_model(hidden=32), NoisySines(), _config(steps=4, checkpoint_every=2), tmp_path)
    with pytest.raises(CheckpointError, match=r"does not match the model being trained: shape mismatch"):
        train(TinyDenoiser(hidden=16), NoisySines(), _config(steps=8), tmp_path, resume="auto")


def test_non_finite_loss_stops_with_the_step(tmp_path):
    tokens = torch.randn(64, 8, 3)
    tokens[5, 2, 1] = float("nan")
    data = TensorBatchSource({"tokens": tokens, "context": torch.randn(64, 2)})
    with pytest.raises(RuntimeError, match=r"non-finite at step \d+"):
        train(TinyDenoiser(), data, _config(steps=40, batch_size=32, log_every=10), tmp_path)


def test_fp16_falls_back_to_fp32_on_cpu(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="df_agent.training.loop"):
        result = train(fitted_tiny_model(), NoisySines(), _config(steps=2, precision="fp16"), tmp_path)
    assert "needs CUDA" in caplog.text
    assert read_checkpoint_config(result.final_checkpoint)["metadata"]["precision"] == "fp32"


def test_bf16_autocast_trains_on_cpu(tmp_path):
    model = DFModel(DFModelConfig(token_dim=3, context_dim=2, latent_dim=16, hidden_dim=32, mlp_layers=2,
                                  backbone="fast"))
    model.token_normalizer.fit(torch.randn(100, 3))
    model.context_normalizer.fit(torch.randn(100, 2))
    data = TensorBatchSource({"tokens": torch.randn(64, 6, 3), "context": torch.randn(64, 2)})
    result = train(model, data, _config(steps=30, precision="bf16"), tmp_path)
    assert read_checkpoint_config(result.final_checkpoint)["metadata"]["precision"] == "bf16"
    assert all(torch.isfinite(torch.tensor(loss)) for loss in result.losses)
    assert result.losses[-1] < result.losses[0]


def test_tensor_batch_source_and_validation(tmp_path):
    tokens, context = torch.randn(40, 8, 3), torch.randn(40, 2)
    mask = torch.ones(40, 8, dtype=torch.bool)
    mask[:, 6:] = False
    source = TensorBatchSource({"tokens": tokens, "context": context, "mask": mask},
                               validation={"tokens": tokens[:10], "context": context[:10], "mask": mask[:10]},
                               validation_batch_size=4)
    first = source.sample_batch(5, torch.Generator().manual_seed(1))
    again = source.sample_batch(5, torch.Generator().manual_seed(1))
    assert all(torch.equal(first[k], again[k]) for k in first) and first["tokens"].shape == (5, 8, 3)
    assert [b["tokens"].shape[0] for b in source.validation_batches()] == [4, 4, 2]
    with pytest.raises(ValueError, match="same non-zero first dimension"):
        TensorBatchSource({"tokens": tokens, "context": context[:3]})
    train(TinyDenoiser(), source, _config(steps=4, batch_size=8, validate_every=2), tmp_path)
    records = list(iterate_metrics(tmp_path))
    assert [r["step"] for r in records if "val_loss" in r] == [2, 4]
    # The mask makes throughput count real tokens only: 8 rows x 6 real tokens per step.
    per_step = [r["tokens_per_s"] / r["steps_per_s"] for r in records if "loss" in r]
    assert per_step == pytest.approx([48.0] * len(per_step))


def test_lr_schedule():
    kwargs = dict(warmup_steps=10, total_steps=110)
    assert lr_factor(0, **kwargs) == pytest.approx(0.1)
    assert lr_factor(9, **kwargs) == pytest.approx(1.0)
    assert lr_factor(50, **kwargs) == 1.0
    assert lr_factor(10, schedule="cosine", min_ratio=0.2, **kwargs) == pytest.approx(1.0)
    assert lr_factor(60, schedule="cosine", min_ratio=0.2, **kwargs) == pytest.approx(0.6)
    assert lr_factor(110, schedule="cosine", min_ratio=0.2, **kwargs) == pytest.approx(0.2)
    assert lr_factor(500, schedule="cosine", min_ratio=0.2, **kwargs) == pytest.approx(0.2)
    assert lr_factor(0, warmup_steps=0, total_steps=5) == 1.0
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor(20, schedule="step", **kwargs)


def test_ema_follows_the_formula_with_warmup():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.99, warmup=True)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=1)
    decay = 1 / 10  # (1 + 0) / (10 + 0) < 0.99
    assert torch.allclose(ema.model.weight, decay * start + (1 - decay) * model.weight)
    ema.num_updates = 10_000
    assert ema.current_decay() == 0.99
    held = ema.model.weight.detach().clone()
    ema_late = EMA(model, decay=0.5, warmup=False, start_step=3)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema_late.update(model, step=2)  # before start_step: copies
    assert torch.equal(ema_late.model.weight, model.weight) and ema_late.num_updates == 0
    assert not torch.equal(held, model.weight)


def test_optimizer_state_round_trips_without_pickle():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95), weight_decay=0.1)
    inputs, targets = torch.randn(16, 4), torch.randn(16, 1)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
    tensors, meta = optimizer_state_to_flat(optimizer)
    json.dumps(meta)  # the non-tensor part is plain JSON
    assert set(tensors) >= {"state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"}

    twin.load_state_dict(model.state_dict())
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=1.0)
    optimizer_state_from_flat(twin_optimizer, tensors, json.loads(json.dumps(meta)))
    assert twin_optimizer.param_groups[0]["betas"] == (0.8, 0.95)
    for net, opt in ((model, optimizer), (twin, twin_optimizer)):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(inputs), targets).backward()
        opt.step()
    assert _state_equal(model, twin)

    wrong = torch.optim.AdamW(torch.nn.Linear(4, 3).parameters())
    with pytest.raises(CheckpointError, match="parameters saved"):
        optimizer_state_from_flat(wrong, tensors, meta)


def test_train_config_validation_and_round_trip():
    config = _config()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match=r"precision must be one of .*; device must be"):
        TrainConfig(precision="fp8", device="tpu")


def _fitted_dfmodel(backbone: str, seed: int):
    from df_agent.model import DFModel, DFModelConfig

    torch.manual_seed(seed)
    model = DFModel(DFModelConfig(token_dim=3, context_dim=2, latent_dim=16, hidden_dim=32, mlp_layers=2,
                                  num_levels=100, backbone=backbone))
    batch = NoisySines().sample_batch(256, torch.Generator().manual_seed(99))
    model.token_normalizer.fit(batch["tokens"])
    model.context_normalizer.fit(batch["context"])
    return model


@pytest.mark.parametrize("backbone", ["paper", "fast"])
def test_dfmodel_resume_is_bitwise_exact(tmp_path, backbone):
    config = _config(steps=12, checkpoint_every=4, log_every=4, warmup_steps=3)
    reference = _Recorder()
    train(_fitted_dfmodel(backbone, 0), NoisySines(), config, tmp_path / "straight", on_step=reference)
    crashed = _Recorder(crash_at=6)
    with pytest.raises(KeyboardInterrupt):
        train(_fitted_dfmodel(backbone, 0), NoisySines(), config, tmp_path / "resumed", on_step=crashed)
    resumed = _Recorder()
    result = train(_fitted_dfmodel(backbone, 7), NoisySines(), config, tmp_path / "resumed", resume="auto",
                   on_step=resumed)
    assert result.start_step == 4
    trajectory = [crashed.losses[s] for s in range(1, 5)] + [resumed.losses[s] for s in range(5, 13)]
    assert all(torch.equal(a, b) for a, b in zip(trajectory, [reference.losses[s] for s in range(1, 13)]))
    shipped = load_checkpoint(result.final_checkpoint)
    assert type(shipped).__name__ == "DFModel" and bool(shipped.token_normalizer.fitted)
    assert _state_equal(shipped, load_checkpoint(tmp_path / "straight" / "final"))


def test_command_line_flags_cover_every_field_and_take_precedence(tmp_path):
    import argparse
    import dataclasses

    from df_agent.training import cli_args

    assert cli_args._covered_fields() == {f.name for f in dataclasses.fields(TrainConfig)}
    parser = argparse.ArgumentParser()
    defaults = TrainConfig(steps=500, lr=1e-3)
    cli_args.add_train_arguments(parser, defaults)
    (tmp_path / "cfg.yaml").write_text("steps: 700\nbatch_size: 64\nlr_schedule: cosine\n")
    args = parser.parse_args(["--run-dir", str(tmp_path), "--train-config", str(tmp_path / "cfg.yaml"),
                              "--batch-size", "32", "--grad-clip-norm", "none", "--no-progress",
                              "--betas", "0.8", "0.9", "--resume"])
    config = cli_args.train_config_from_args(args, defaults)
    assert (config.steps, config.batch_size, config.lr, config.lr_schedule) == (700, 32, 1e-3, "cosine")
    assert config.grad_clip_norm is None and config.progress is False and config.betas == (0.8, 0.9)
    assert config.ema_decay == defaults.ema_decay and args.resume == "auto" and args.run_dir == tmp_path
    (tmp_path / "bad.json").write_text('{"stepz": 3}')
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['stepz'\]"):
        cli_args.train_config_from_args(parser.parse_args(["--run-dir", "x", "--train-config",
                                                           str(tmp_path / "bad.json")]))


def test_sigterm_stops_cleanly_with_a_resumable_checkpoint(tmp_path):
    import os
    import signal

    def send_sigterm(step: int, loss: torch.Tensor) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    result = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path, on_step=send_sigterm)
    assert signal.getsignal(signal.SIGTERM) is previous  # the loop's handler is gone again
    assert result.stopped_early and result.steps_completed == 4  # stops at the next logged step (log_every=4)
    assert result.final_checkpoint is None and result.last_checkpoint.name == "step_00000004"
    result = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path, resume="auto")
    assert result.start_step == 4 and result.steps_completed == 24


def test_time_limit_stops_with_a_final_checkpoint(tmp_path):
    result = train(fitted_tiny_model(), NoisySines(), _config(time_limit_s=1e-6), tmp_path)
    assert result.stopped_early and result.steps_completed == 4
    assert read_checkpoint_config(result.final_checkpoint)["metadata"]["step"] == 4
    assert result.last_checkpoint.name == "step_00000004"


def test_training_state_restores_rng_streams_and_optimizer(tmp_path):
    import random

    import numpy as np

    from df_agent.training.state import load_training_state, read_training_state_json, write_training_state

    model = fitted_tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.loss(NoisySines().sample_batch(4, torch.Generator().manual_seed(0)))[0].backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    torch.rand(3, generator=generator)
    torch.manual_seed(11)
    np.random.seed(12)
    random.seed(13)
    write_training_state(tmp_path, step=42, model=model, optimizer=optimizer, train_config=_config().to_dict(),
                         ema_state=None, scaler_state=None, data_generator=generator)
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)],
                torch.rand(4, generator=generator))

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    other_generator = torch.Generator().manual_seed(0)
    twin = TinyDenoiser()
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    state = load_training_state(tmp_path, model=twin, optimizer=twin_optimizer, data_generator=other_generator)
    assert state.step == 42 and read_training_state_json(tmp_path)["optimizer"]["class"] == "AdamW"
    assert torch.equal(torch.rand(4), expected[0]) and np.array_equal(np.random.rand(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]
    assert torch.equal(torch.rand(4, generator=other_generator), expected[3])
    assert _state_equal(model, twin)
    saved, restored = optimizer.state_dict()["state"][0], twin_optimizer.state_dict()["state"][0]
    assert torch.equal(saved["exp_avg"], restored["exp_avg"]) and torch.equal(saved["step"], restored["step"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_trains_checkpoints_and_resumes(tmp_path, precision):
    config = _config(steps=12, checkpoint_every=4, device="cuda", precision=precision)
    reference = _Recorder()
    train(fitted_tiny_model(), NoisySines(), config, tmp_path / "straight", on_step=reference)
    crashed = _Recorder(crash_at=6)
    with pytest.raises(KeyboardInterrupt):
        train(fitted_tiny_model(), NoisySines(), config, tmp_path / "resumed", on_step=crashed)
    resumed = _Recorder()
    result = train(fitted_tiny_model(seed=5), NoisySines(), config, tmp_path / "resumed", resume="auto",
                   on_step=resumed)
    assert result.start_step == 4 and result.steps_completed == 12
    # GPU kernels need not be bitwise reproducible; the resumed trajectory must still follow the reference.
    got = torch.stack([resumed.losses[s] for s in range(5, 13)]).float().cpu()
    want = torch.stack([reference.losses[s] for s in range(5, 13)]).float().cpu()
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)
    assert read_checkpoint_config(result.final_checkpoint)["metadata"]["precision"] == precision
    state = json.loads((result.last_checkpoint / "training_state" / "state.json").read_text())
    assert (state["grad_scaler"] is not None) == (precision == "fp16")
    shipped = load_checkpoint(result.final_checkpoint, map_location="cuda")
    assert next(shipped.parameters()).is_cuda


def test_training_time_adds_up_over_resumed_invocations(tmp_path):
    first = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path,
                  on_step=lambda step, loss: step == 20)
    assert first.final_checkpoint is None and first.train_seconds > 0.0
    state = json.loads((first.last_checkpoint / "training_state" / "state.json").read_text())
    carried = state["info"]["train_seconds"]
    assert 0.0 < carried <= first.train_seconds
    # The resumed invocation (4 more steps) reports the first one's time plus its own; the model records it.
    second = train(fitted_tiny_model(), NoisySines(), _config(checkpoint_every=0), tmp_path, resume=True)
    assert second.start_step == 20 and second.train_seconds > carried
    recorded = read_checkpoint_config(second.final_checkpoint)["metadata"]["train_seconds"]
    assert carried < recorded <= second.train_seconds + 1e-3
