"""Iterative structured pruning: rounds that remove a share each, fine-tuned between."""

import pytest

import netshrink
from netshrink.distill import DistillConfig
from netshrink.errors import NetshrinkError
from netshrink.prune import StructuredConfig
from netshrink.prune.structured_schedule import iterative_structured, per_step
from netshrink.train import TrainConfig


def test_rounds_together_remove_the_target():
    assert (1 - per_step(0.75, 2)) ** 2 == pytest.approx(0.25)


@pytest.mark.parametrize("distill", [None, DistillConfig(temperature=2.0)])
def test_two_rounds_with_fine_tuning(digits, distill):
    model = netshrink.models.create("lenet300", digits.input_shape, 10)
    rounds = iterative_structured(model, StructuredConfig(sparsity=0.75), digits,
                                  TrainConfig(iterations=3, device="cpu"), steps=2,
                                  distill=distill)
    assert len(rounds) == 2
    assert [r.changed["1"].after for r, _ in rounds] == [150, 75]
    assert model[1].out_features == 75 and model[3].in_features == 75
    assert 0 <= rounds[-1][1].test_accuracy <= 1


def test_steps_must_be_positive(digits):
    model = netshrink.models.create("lenet300", digits.input_shape, 10)
    with pytest.raises(NetshrinkError, match="steps"):
        iterative_structured(model, StructuredConfig(), digits, TrainConfig(), steps=0)
