"""maze2d runs without the optional dependencies and without Gymnasium-Robotics' import-time notice."""

from __future__ import annotations

import json
import subprocess
import sys

BLOCK = "import sys\nfor name in ('cv2', 'h5py', 'rosbags'):\n    sys.modules[name] = None\n"


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_importing_maze2d_prints_nothing(tmp_path):
    done = run_python("import envs.maze2d.env", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_eval_maze2d_needs_no_opencv_h5py_or_rosbags(tmp_path):
    out = tmp_path / "r.json"
    code = BLOCK + (
        "from df_agent.cli.main import main\n"
        f"sys.exit(main(['-q', 'eval', 'maze2d', '--env', 'maze2d-umaze-v0', '--policy', 'expert', '--episodes', '1',"
        f" '--num-envs', '1', '--no-progress', '--out', {str(out)!r}]))\n")
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["episodes"] == 1
    assert "Adroit" not in done.stderr
