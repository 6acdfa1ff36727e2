"""A tiny DF model trained a few hundred steps learns a stochastic sequence task, end to end."""

from __future__ import annotations

import json

import torch

from df_agent.checkpoint import load_checkpoint
from df_agent.cli.main import main
from df_agent.model import DFModel
from df_agent.toy import SinusoidTask, ToyRunConfig, fit_normalizers, sample_sequences, score_table, train_and_score
from df_agent.training import TensorBatchSource, TrainConfig, train


def test_trained_samples_beat_an_untrained_model(tmp_path):
    torch.set_num_threads(1)
    task = SinusoidTask()
    data = task.generate(8000, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = DFModel(task.model_config("fast", 48))
    fit_normalizers(model, data)
    untrained = DFModel(task.model_config("fast", 48))
    fit_normalizers(untrained, data)
    config = TrainConfig(steps=300, batch_size=64, lr=2e-3, warmup_steps=30, ema_decay=0.99, device="cpu",
                         checkpoint_every=0, progress=False, log_every=100)
    result = train(model, TensorBatchSource(data), config, tmp_path / "run")
    trained = load_checkpoint(result.final_checkpoint)

    evaluation = task.generate(256, torch.Generator().manual_seed(1))
    context = evaluation["context"]
    errors = {}
    for name, candidate in (("trained", trained), ("untrained", untrained)):
        samples = sample_sequences(candidate, context, task.num_tokens, generator=torch.Generator().manual_seed(2))
        assert samples.shape == evaluation["tokens"].shape
        errors[name] = (
            float(task.sinusoid_residual(samples).mean()),
            float(task.amplitude_error(samples).mean()),
            float(task.context_error(samples, context).mean()),
        )
    (residual, amplitude, start), (residual_0, amplitude_0, start_0) = errors["trained"], errors["untrained"]
    # An untrained model emits flat, smooth curves (small residual, amplitude far off): judge the sum.
    assert residual + amplitude < 0.3 * (residual_0 + amplitude_0), errors
    assert residual < 0.1 and amplitude < 0.1, errors  # the data itself scores ~0.02 and ~0.005
    assert start < 0.5 * start_0, errors
    # Both phases consistent with the context must appear: the model learned a distribution.
    rising = (samples_first_step := sample_sequences(trained, torch.zeros(200, 1), task.num_tokens,
                                                     generator=torch.Generator().manual_seed(3))[:, 0, 0]) > 0
    assert 0.15 < float(rising.float().mean()) < 0.85, samples_first_step[:10]


def test_train_toy_cli_writes_results(tmp_path, capsys):
    torch.set_num_threads(1)
    code = main(["-q", "train", "toy", "--out", str(tmp_path / "toy"), "--steps", "20", "--samples", "16",
                 "--device", "cpu"])
    assert code == 0
    report = json.loads((tmp_path / "toy" / "toy_results.json").read_text())
    assert set(report["scores"]) == {"trained", "untrained", "data"}
    assert (tmp_path / "toy" / "final" / "model.safetensors").exists()
    assert "residual" in capsys.readouterr().out


def test_the_task_scores_its_own_data_near_the_noise_level():
    task = SinusoidTask()
    data = task.generate(512, torch.Generator().manual_seed(0))
    scores = task.scores(data["tokens"], data["context"])
    assert set(scores) == {"residual", "amplitude", "context"}
    assert scores["residual"] < 0.03 and scores["amplitude"] < 0.02 and scores["context"] < 0.05, scores
    flat = task.scores(torch.zeros_like(data["tokens"]), data["context"])
    assert flat["amplitude"] > 0.9  # a flat line is a smooth curve of amplitude 0, not 1


def test_train_and_score_reports_every_source_and_the_checkpoint(tmp_path):
    torch.set_num_threads(1)
    report = train_and_score(ToyRunConfig(out=tmp_path / "toy", steps=5, samples=8, device="cpu", width=16))
    assert report["steps"] == 5 and set(report["scores"]) == {"trained", "untrained", "data"}
    assert (tmp_path / "toy" / "final" / "model.safetensors").exists()
    assert report["checkpoint"] == str(tmp_path / "toy" / "final")
    table = score_table(report["scores"]).splitlines()
    assert "residual" in table[0] and [line.split()[0] for line in table[1:]] == ["trained", "untrained", "data"]
