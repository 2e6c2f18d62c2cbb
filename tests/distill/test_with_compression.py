"""Distillation combined with pruning and quantization: the student keeps its zeros, trains
with fake quantization, and converts to integer layers afterwards."""

import copy

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.distill import DistillConfig
from netshrink.errors import NetshrinkError
from netshrink.prune.mask import density, masked_parameters
from netshrink.quant import QAT, QuantLinear, convert
from netshrink.quant.qat import QATLinear
from netshrink.train import TrainConfig, evaluate, fit

from .conftest import student

FAST = TrainConfig(epochs=6, lr=3e-3, batch_size=64, device="cpu", seed=0)


@pytest.fixture(scope="module")
def trained_student(digits):
    model = student(digits)
    fit(model, digits, FAST, progress=False)
    return model


def test_a_pruned_student_keeps_its_zeros_while_distilled(digits, trained_teacher,
                                                          trained_student):
    pruned = copy.deepcopy(trained_student)
    netshrink.prune_(pruned, "magnitude", sparsity=0.8)
    zeros = {n: (w == 0).clone() for n, w in masked_parameters(pruned).items()}
    after_pruning = evaluate(pruned, digits.test)[1]
    result = netshrink.distill(pruned, trained_teacher, digits,
                               DistillConfig(temperature=4.0, alpha=0.9), FAST, progress=False)
    assert density(pruned) == pytest.approx(0.2, abs=0.01)
    for name, weight in masked_parameters(pruned).items():
        assert torch.all(weight[zeros[name]] == 0), name
    assert result.test_accuracy > after_pruning  # distillation retrained the survivors


def test_a_qat_student_distilled_then_converted_runs_integer_layers(digits, trained_teacher,
                                                                   trained_student):
    model = copy.deepcopy(trained_student)
    netshrink.quantize_(model, QAT(bits=4), data=digits)
    assert any(isinstance(m, QATLinear) for m in model.modules())
    netshrink.distill(model, trained_teacher, digits, DistillConfig(temperature=4.0, alpha=0.9),
                      TrainConfig(epochs=2, lr=1e-3, batch_size=64, device="cpu", seed=0),
                      progress=False)
    fake_quant = evaluate(model, digits.test)[1]
    convert(model)
    integer = evaluate(model, digits.test)[1]
    assert all(not isinstance(m, QATLinear) for m in model.modules())
    assert any(isinstance(m, QuantLinear) for m in model.modules())
    assert integer > 0.8 and abs(integer - fake_quant) < 0.03


def test_a_student_for_other_images_is_one_clear_error(digits, trained_teacher):
    wrong = models.create("mlp", (1, 28, 28), digits.num_classes, widths=[8])
    with pytest.raises(NetshrinkError, match="student does not fit the inputs of 'digits'"):
        netshrink.distill(wrong, trained_teacher, digits, progress=False)
    with pytest.raises(NetshrinkError, match="teacher does not fit the inputs of 'digits'"):
        netshrink.distill(student(digits), wrong, digits, progress=False)
