"""Shared fixtures: the scikit-learn digits (1,797 8x8 images) and a small trained teacher."""

import pytest
import torch

from netshrink import data, models
from netshrink.train import TrainConfig, fit


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a small shared machine more threads only fight each other."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="session")
def trained_teacher(digits):
    """An MLP trained for a few epochs (about 95% test accuracy); do not modify it."""
    from netshrink.measure import threads

    teacher = models.create("mlp", digits.input_shape, digits.num_classes, widths=[128])
    with threads(1):
        fit(teacher, digits, TrainConfig(epochs=15, lr=3e-3, batch_size=64, device="cpu", seed=0),
            progress=False)
    return teacher.eval()


def student(splits, seed=0, **kw):
    """A small MLP student for the digits."""
    from netshrink.train import seed_everything

    seed_everything(seed)
    return models.create("mlp", splits.input_shape, splits.num_classes, **{"widths": [32], **kw})
