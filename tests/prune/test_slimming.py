"""Network slimming's BatchNorm L1 penalty joins the training loop as a callback."""

import pytest
import torch

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.prune.slimming import BatchNormSparsity
from netshrink.train import TrainConfig, fit


def _gammas(strength, digits):
    torch.manual_seed(0)
    model = netshrink.models.create("vgg", digits.input_shape, 10, width=4)
    callbacks = [BatchNormSparsity(strength)] if strength else []
    fit(model, digits, TrainConfig(iterations=15, lr=1e-2, seed=0, device="cpu"), callbacks,
        progress=False)
    return torch.cat([m.weight.detach().abs() for m in model.modules()
                      if isinstance(m, torch.nn.BatchNorm2d)])


def test_penalty_shrinks_the_batchnorm_scales(digits):
    assert _gammas(0.5, digits).sum() < 0.9 * _gammas(0.0, digits).sum()


def test_bad_strength_and_models_without_batchnorm_are_refused(digits):
    with pytest.raises(NetshrinkError, match="strength"):
        BatchNormSparsity(0)
    model = netshrink.models.create("lenet300", digits.input_shape, 10)
    with pytest.raises(NetshrinkError, match="no BatchNorm"):
        fit(model, digits, TrainConfig(iterations=1, device="cpu"), [BatchNormSparsity()],
            progress=False)
