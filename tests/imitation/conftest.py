import sys
from pathlib import Path

import pytest

# Make imitation_helpers importable under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # These models are tiny: on a loaded 2-core machine a second intra-op thread only adds waiting.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

