"""Training refuses NaN / infinite inputs by name and stops, naming the learning rate, as soon
as the loss becomes NaN or infinite, instead of saving NaN weights."""

import re

import pytest
import torch

from netshrink import models
from netshrink.data.splits import from_tensors
from netshrink.errors import DataError, NetshrinkError
from netshrink.train import TrainConfig, fit


def _model():
    torch.manual_seed(0)
    return models.create("mlp", (1, 4, 4), 3, widths=[8])


def _data(scale=1.0, poison=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 4, 4, generator=g) * scale
    if poison is not None:
        x[5, 0, 1, 1] = poison
    return from_tensors((x, torch.randint(0, 3, (64,), generator=g)))


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_infinite_training_inputs_are_refused_before_a_step(poison):
    model = _model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(DataError, match="the training inputs hold 1 NaN or infinite values"):
        fit(model, _data(poison=poison), TrainConfig(iterations=5, batch_size=8),
            progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("lr", [1e15, 1e30])
def test_a_diverging_run_stops_naming_the_learning_rate(lr):
    words = "training diverged: the loss became nan .* " + re.escape(f"(lr={lr:g} with sgd): "
                                                                      "lower it")
    with pytest.raises(NetshrinkError, match=words):
        fit(_model(), _data(scale=100), TrainConfig(iterations=60, batch_size=8, lr=lr,
                                                    optimizer="sgd"), progress=False)
