"""Import Gymnasium-Robotics without the release notice it prints to stderr on every import.

`import gymnasium_robotics` prints a Farama notification (about Adroit reward changes, unrelated to maze2d)
to stderr, so every `df-agent` command touching maze2d showed it even with `-q`. The package is imported
here once with stderr captured; what it printed goes to the debug log instead (`df-agent -v -v` shows it).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
from types import ModuleType

log = logging.getLogger(__name__)


def import_gymnasium_robotics() -> ModuleType:
    if "gymnasium_robotics" in sys.modules:
        return sys.modules["gymnasium_robotics"]
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        module = importlib.import_module("gymnasium_robotics")
    if captured.getvalue().strip():
        log.debug("gymnasium_robotics printed on import: %s", captured.getvalue().strip())
    return module
