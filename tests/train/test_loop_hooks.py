"""The loop's on_batch and trainable_parameters hooks (added for distillation)."""

import torch
from torch import nn

from netshrink.data import from_tensors
from netshrink.train import Callback, TrainConfig, fit


def _data():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 2, 2)
    return from_tensors((x, (x.flatten(1).sum(1) > 0).long()), val_size=8)


class Flip(Callback):
    """Negates the inputs and records what the loss hook then sees."""

    def __init__(self):
        self.param = nn.Parameter(torch.zeros(1))
        self.ok = []

    def trainable_parameters(self):
        return [self.param]

    def on_batch(self, state, inputs, targets, indices):
        self.original = inputs
        return -inputs, targets

    def loss(self, state, inputs, targets, indices, outputs, loss):
        self.ok.append(torch.equal(inputs, -self.original))
        return loss + (self.param - 1.0).pow(2).sum()


def test_on_batch_feeds_the_forward_pass_and_owned_parameters_train():
    cb = Flip()
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    fit(model, _data(), TrainConfig(iterations=30, lr=0.05, device="cpu"), [cb], progress=False)
    assert len(cb.ok) == 30 and all(cb.ok)
    assert 0.5 < float(cb.param.detach()) < 1.5  # moved from 0 towards 1 by the optimizer
