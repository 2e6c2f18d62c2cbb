"""Shared test set-up: where MNIST lives in development and CI, and small fixtures."""

import os
import sys
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "NETSHRINK_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["NETSHRINK_DATA"] = str(SHARED_DATA)

torch.set_num_threads(2)
sys.path.insert(0, str(Path(__file__).parent))  # `import user_models`: models users write


def mnist_available() -> bool:
    from netshrink.data import catalog
    from netshrink.errors import DataError

    try:
        catalog.locate("mnist")
    except DataError:
        return False
    return True


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="MNIST files not found")


@pytest.fixture(scope="session")
def digits():
    from netshrink import data

    return data.load("digits")
