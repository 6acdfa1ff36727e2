"""bf16 is flagged where the device has no native bf16 arithmetic (it is emulated and slower there)."""

from __future__ import annotations

import logging

import torch

from df_agent.precision import bf16_is_fast, warn_if_slow_bf16


def test_probe_agrees_with_onednn_on_this_cpu():
    assert bf16_is_fast("cpu") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_warns_only_for_bf16_without_native_support(caplog):
    with caplog.at_level(logging.WARNING, logger="df_agent.precision"):
        assert warn_if_slow_bf16("bf16", "cpu", "training", fast=False)
        assert not warn_if_slow_bf16("bf16", "cpu", "training", fast=True)
        assert not warn_if_slow_bf16("fp32", "cpu", "training", fast=False)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "training in bf16" in messages[0] and "--precision fp32" in messages[0]


def test_the_planner_warns_on_this_cpu_exactly_when_bf16_is_emulated(caplog):
    from df_agent.checkpoint import load_checkpoint, shipped_checkpoint
    from planners.df_planner import DFPlanner, DFPlannerConfig

    model = load_checkpoint(shipped_checkpoint("maze2d-umaze"))
    with caplog.at_level(logging.WARNING, logger="df_agent.precision"):
        DFPlanner(model, DFPlannerConfig(precision="bf16"))
        DFPlanner(model, DFPlannerConfig(precision="fp32"))
    assert len(caplog.records) == (0 if bf16_is_fast("cpu") else 1)
