"""Bias correction for a left-out class."""

import torch
from torch import nn

from netshrink.distill.bias import best_class_bias, shift_class_bias, sweep_class_bias


def test_best_shift_recovers_a_known_bias_deficit():
    torch.manual_seed(0)
    labels = torch.arange(5).repeat(40)
    logits = torch.nn.functional.one_hot(labels, 5).float() * 3 + 0.3 * torch.randn(200, 5)
    logits[:, 2] -= 4.0  # class 2's bias far too low: its examples are all misclassified
    before = sweep_class_bias(logits, labels, 2, torch.tensor([0.0]))
    assert int(before[0]) >= 35
    delta = best_class_bias(logits, labels, 2)
    shifted = logits.clone()
    shifted[:, 2] += delta
    assert int((shifted.argmax(1) != labels).sum()) <= 2
    assert 2.0 < delta < 7.0


def test_shift_writes_into_the_output_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 5))
    x = torch.randn(2, 3)
    before = model(x)
    shift_class_bias(model, 3, 1.5)
    after = model(x)
    torch.testing.assert_close(after[:, 3], before[:, 3] + 1.5)
    torch.testing.assert_close(after[:, :3], before[:, :3])
