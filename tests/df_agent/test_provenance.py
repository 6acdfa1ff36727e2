"""Results files name their producer; optional dependencies fail with the extra to install."""

from __future__ import annotations

import datetime
import re

import pytest

from df_agent import __version__
from df_agent.optional import MissingDependencyError, require
from df_agent.provenance import PROVENANCE_KEY, provenance, with_provenance


def test_provenance_names_version_commit_command_and_time():
    record = provenance(["df-agent", "eval", "maze2d", "--guidance-scale", "0.1", "--out", "a b.json"])
    assert record["package"] == "df-agent" and record["version"] == __version__
    assert record["command"] == "df-agent eval maze2d --guidance-scale 0.1 --out 'a b.json'"
    assert record["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
    assert record["git_dirty"] in (None, True, False)
    created = datetime.datetime.fromisoformat(record["created_utc"])
    assert created.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 60


def test_with_provenance_adds_the_record_once():
    data = with_provenance({"score": 1.0}, ["df-agent", "x"])
    assert data["score"] == 1.0 and data[PROVENANCE_KEY]["command"] == "df-agent x"
    assert with_provenance(data, ["other"])[PROVENANCE_KEY]["command"] == "df-agent x"


def test_a_missing_optional_dependency_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"opencv-python-headless.*df-agent\[video\]"):
        require("cv2", extra="video")
    require("json", extra="none")  # present: nothing happens
