"""Every flag of every `df-agent` command says what it does."""

from __future__ import annotations

import argparse
import importlib

import pytest

from df_agent.cli.registry import COMMANDS


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: f"{spec.group} {spec.name}")
def test_every_flag_has_help_text(spec):
    parser = argparse.ArgumentParser()
    importlib.import_module(spec.module).add_arguments(parser)
    undocumented = [action.option_strings or [action.dest] for action in parser._actions if not action.help]
    assert not undocumented, f"df-agent {spec.group} {spec.name}: flags without help {undocumented}"
