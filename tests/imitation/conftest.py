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


@pytest.fixture(autouse=True)
def _restore_policy_loaders():
    # Importing policies.df_imitation registers its ROS 2 loader process-wide; undo that after each test so
    # other test folders see the loader table they expect whatever order pytest runs them in.
    from hardware import policy_loader

    saved = dict(policy_loader._LOADERS)
    yield
    policy_loader._LOADERS.clear()
    policy_loader._LOADERS.update(saved)
