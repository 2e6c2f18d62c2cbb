"""Distillation between models whose inputs are token ids, two tensors or keyword arguments."""

import pytest
import torch

import netshrink
from netshrink import NetshrinkError
from netshrink.data import inputs
from netshrink.distill import DistillConfig, Ensemble, transfer_set
from netshrink.train import TrainConfig, fit

QUICK = TrainConfig(iterations=60, batch_size=32, lr=1e-2, device="cpu", optimizer="adam")


@pytest.fixture(scope="module")
def teachers(any_inputs):
    """{case: a teacher trained with fit on that case's data}."""
    out = {}
    for case, (build, splits) in any_inputs.items():
        torch.manual_seed(10)
        out[case] = build()
        fit(out[case], splits, QUICK, progress=False)
    return out


def agreement(a, b, x) -> float:
    return float((inputs.call(a, x).argmax(1) == inputs.call(b, x).argmax(1)).float().mean())


@pytest.mark.parametrize("case", ["tokens", "pair", "keywords"])
def test_student_learns_the_teacher_with_cached_outputs(any_inputs, teachers, case, tmp_path):
    build, splits = any_inputs[case]
    teacher = teachers[case].eval()
    torch.manual_seed(1)
    student = build()
    x = splits.test.inputs
    before = agreement(student, teacher, x)
    config = DistillConfig(temperature=2.0, alpha=0.9, cache_dir=str(tmp_path))
    result = netshrink.distill(student, teacher, splits, config, QUICK, progress=False)
    assert result.cache == "miss"
    student.eval()
    assert agreement(student, teacher, x) > max(0.8, before + 0.2)
    again = netshrink.distill(build(), teacher, splits, config, QUICK, progress=False)
    assert again.cache == "hit", "the inputs of any shape key the cache"


def test_an_ensemble_of_two_input_teachers(any_inputs, teachers):
    build, splits = any_inputs["pair"]
    torch.manual_seed(2)
    other = build()
    fit(other, splits, QUICK, progress=False)
    ensemble = Ensemble([teachers["pair"], other]).eval()
    a, b = inputs.take(splits.test.inputs, slice(0, 5))
    assert ensemble(a, b).shape == (5, splits.num_classes)
    assert ensemble.member_logits((a, b)).shape == (2, 5, splits.num_classes)
    result = netshrink.distill(build(), [teachers["pair"], other], splits, DistillConfig(),
                               QUICK, progress=False)
    assert result.test_accuracy > 0.6


def test_transfer_sets_of_keyword_inputs(any_inputs):
    _, splits = any_inputs["keywords"]
    x = splits.train.inputs
    extra = inputs.take(x, slice(0, 10))
    t = transfer_set(splits, unlabeled=extra, omit_classes=[1])
    kept = int((splits.train.labels != 1).sum())
    assert len(t.train) == kept + 10 and t.train.inputs["tokens"].dtype == torch.int64
    assert t.train.labels[-10:].eq(-1).all()
    with pytest.raises(NetshrinkError, match="they must match"):
        transfer_set(splits, unlabeled={"features": extra["features"],
                                        "tokens": extra["tokens"].float()})


def test_jitter_refuses_inputs_that_are_not_images(any_inputs, teachers):
    build, splits = any_inputs["pair"]
    with pytest.raises(NetshrinkError, match=r"jitter shifts float image batches.*jitter=0"):
        netshrink.distill(build(), teachers["pair"], splits, DistillConfig(jitter=1), QUICK,
                          progress=False)
