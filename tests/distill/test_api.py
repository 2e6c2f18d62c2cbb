"""netshrink.distill end to end on the digits: it teaches, in the shared loop, leaves no trace."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.distill import DistillConfig, transfer_set
from netshrink.errors import NetshrinkError
from netshrink.train import TrainConfig, evaluate

from .conftest import student

FAST = TrainConfig(epochs=8, lr=3e-3, batch_size=64, device="cpu", seed=0)


def test_soft_targets_alone_teach_an_unlabeled_student(digits, trained_teacher):
    """No label at all in the transfer set: the student can only learn from the teacher."""
    unlabeled = transfer_set(digits, drop_labels=True)
    result = netshrink.distill(student(digits), trained_teacher, unlabeled,
                               DistillConfig(temperature=2.0, alpha=1.0), FAST, progress=False)
    teacher_acc = evaluate(trained_teacher, digits.test)[1]
    assert teacher_acc > 0.9
    assert result.test_accuracy > 0.8  # chance is 0.1


def test_cached_and_live_teacher_train_the_same_student(tmp_path, digits, trained_teacher):
    config = DistillConfig(temperature=4.0, alpha=0.7)
    live = student(digits)
    netshrink.distill(live, trained_teacher, digits, config, FAST, progress=False)
    cached = student(digits)
    result = netshrink.distill(cached, trained_teacher, digits,
                               DistillConfig(temperature=4.0, alpha=0.7, cache_dir=str(tmp_path)),
                               FAST, progress=False)
    assert result.cache == "miss"
    for a, b in zip(live.state_dict().values(), cached.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    again = netshrink.distill(student(digits), trained_teacher, digits,
                              DistillConfig(temperature=1.0, cache_dir=str(tmp_path)),
                              TrainConfig(iterations=2, device="cpu"), progress=False)
    assert again.cache == "hit"  # another student at another temperature reuses the entry


def test_teacher_is_left_unchanged_and_hooks_removed(digits, trained_teacher):
    before = copy.deepcopy(trained_teacher.state_dict())
    trained_teacher.train()
    s = student(digits)
    config = DistillConfig(hints=[("1", "1")], loss="mse")  # 128 -> 32 features: a projection
    netshrink.distill(s, trained_teacher, digits, config, TrainConfig(iterations=3, device="cpu"),
                      progress=False)
    assert trained_teacher.training
    trained_teacher.eval()
    for key, value in trained_teacher.state_dict().items():
        assert torch.equal(value, before[key])
    for model in (s, trained_teacher):
        assert all(not m._forward_hooks for m in model.modules())


def test_hint_projection_is_trained(digits, trained_teacher):
    from netshrink.distill.callback import DistillationLoss

    made = []
    original = DistillationLoss.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    DistillationLoss.__init__ = spy
    try:
        netshrink.distill(student(digits), trained_teacher, digits,
                          DistillConfig(hints=[("1", "1")], hint_weight=1.0),
                          TrainConfig(iterations=1, device="cpu"), progress=False)
        initial = copy.deepcopy(made[0].projections.state_dict())
        made.clear()
        netshrink.distill(student(digits), trained_teacher, digits,
                          DistillConfig(hints=[("1", "1")], hint_weight=1.0),
                          TrainConfig(iterations=20, device="cpu"), progress=False)
    finally:
        DistillationLoss.__init__ = original
    trained = made[0].projections.state_dict()
    assert trained["0.1.weight"].shape == (128, 32)
    assert not torch.equal(trained["0.1.weight"], initial["0.1.weight"])


def test_hooks_are_removed_when_training_fails(digits, trained_teacher):
    from netshrink.train import Callback

    class Boom(Callback):
        def after_step(self, state):
            raise RuntimeError("boom")

    s = student(digits)
    with pytest.raises(RuntimeError, match="boom"):
        netshrink.distill(s, trained_teacher, digits, DistillConfig(hints=[("1", "1")]),
                          TrainConfig(iterations=3, device="cpu"), callbacks=[Boom()],
                          progress=False)
    assert all(not m._forward_hooks for m in list(s.modules()) + list(trained_teacher.modules()))


def test_different_class_counts_are_one_clear_error(digits, trained_teacher):
    seven = models.create("mlp", digits.input_shape, num_classes=7, widths=[8])
    with pytest.raises(NetshrinkError, match="teacher predicts 10 classes but the student 7"):
        netshrink.distill(seven, trained_teacher, digits, progress=False)


def test_missing_hint_module_is_one_clear_error(digits, trained_teacher):
    with pytest.raises(NetshrinkError, match="student module 'features'"):
        netshrink.distill(student(digits), trained_teacher, digits,
                          DistillConfig(hints=[("1", "features")]), progress=False)


def test_ensemble_teacher_and_callable_module(digits, trained_teacher):
    other = copy.deepcopy(trained_teacher)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.9)
    result = netshrink.distill(student(digits), [trained_teacher, other], digits,
                               DistillConfig(temperature=2.0),
                               TrainConfig(iterations=5, device="cpu"), progress=False)
    assert result.iterations == 5
    assert netshrink.distill.DistillConfig is DistillConfig
    with pytest.raises(NetshrinkError, match=r"nn\.Module"):
        netshrink.distill("student", trained_teacher, digits)
    with pytest.raises(NetshrinkError, match="Splits"):
        netshrink.distill(student(digits), trained_teacher, (torch.zeros(2, 64), None))
    assert isinstance(trained_teacher, nn.Module)
