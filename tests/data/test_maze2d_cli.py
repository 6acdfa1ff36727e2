"""Smoke tests of the real `df-agent data maze2d` entry point with a tiny budget."""

from __future__ import annotations

from df_agent.cli.main import main


def test_data_maze2d_cli(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    args = ["data", "maze2d", "--maze", "umaze", "--steps", "600", "--segment-steps", "250", "--no-progress"]
    assert main(args) == 0
    assert "df-agent/maze2d-umaze-v0" in capsys.readouterr().out
    from data.maze2d.dataset import load_maze2d_episodes

    assert [len(a) for a in load_maze2d_episodes("df-agent/maze2d-umaze-v0").actions] == [250, 250, 100]
    assert main(args) == 1  # exists already: refused with a clear message, not a traceback
    assert main([*args, "--overwrite", "--steps", "100"]) == 0
    assert main(["data", "maze2d", "--maze", "umaze", "--steps", "0"]) == 1
