"""netshrink.distill.callback: the distillation loss the training loop adds, its teacher
outputs (run or cached), the attention-mask lookup and the student-teacher agreement."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netshrink.distill import DistillConfig
from netshrink.distill.callback import DistillationLoss, agreement, attention_mask
from netshrink.errors import NetshrinkError
from netshrink.train import TrainState


def nets():
    """(student, teacher); no gradients needed to check the loss values."""
    torch.manual_seed(0)
    return nn.Linear(5, 3).requires_grad_(False), nn.Linear(5, 3).requires_grad_(False)


def state(model):
    """The loop's state; the hooks tested here read no optimizer (building one costs torch's
    first-use import of its compiler, seconds)."""
    return TrainState(model, None, None, torch.device("cpu"), total_iterations=1)


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 5, generator=g), torch.tensor([0, 2, -1, 1]), torch.arange(4)


def test_the_kl_loss_is_the_weighted_sum_of_hard_and_soft_terms():
    student, teacher = nets()
    config = DistillConfig(temperature=2.0, alpha=0.75)
    callback = DistillationLoss(teacher, config)
    callback.on_fit_start(state(student))
    x, y, i = batch()
    out, hard = student(x), torch.tensor(1.25)
    total = callback.loss(state(student), x, y, i, out, hard)
    t = 2.0
    kl = F.kl_div(F.log_softmax(out / t, -1), F.softmax(teacher(x) / t, -1),
                  reduction="none").sum(-1)
    weight = torch.tensor([0.75, 0.75, 1.0, 0.75])  # the unlabeled example weighs 1
    assert float(total) == pytest.approx(0.25 * 1.25 + float((weight * t * t * kl).mean()),
                                         rel=1e-5)
    callback.on_fit_end(state(student))


def test_a_student_that_matches_its_teacher_adds_no_soft_loss():
    student, _ = nets()
    callback = DistillationLoss(student, DistillConfig(alpha=0.5))
    x, y, i = batch()
    total = callback.loss(state(student), x, y, i, student(x), torch.tensor(2.0))
    assert float(total) == pytest.approx(1.0, abs=1e-6)


def test_logit_matching_and_output_losses():
    student, teacher = nets()
    x, y, i = batch()
    out = student(x)
    mse = DistillationLoss(teacher, DistillConfig(loss="mse", alpha=1.0))
    z = out - out.mean(-1, keepdim=True)
    v = teacher(x) - teacher(x).mean(-1, keepdim=True)
    expected = ((z - v) ** 2).sum(-1) / 6  # 1/(2N), N = 3 classes
    assert float(mse.loss(state(student), x, y, i, out, torch.tensor(9.0))) == pytest.approx(
        float(expected.mean()), rel=1e-5)
    cosine = DistillationLoss(teacher, DistillConfig(loss="cosine"))
    distance = 1 - F.cosine_similarity(out, teacher(x), dim=-1)
    assert float(cosine.loss(state(student), x, y, i, out, torch.tensor(0.5))) == pytest.approx(
        0.5 + float(distance.mean()), rel=1e-5)


def test_a_teacher_of_other_classes_is_refused():
    student = nn.Linear(5, 3)
    callback = DistillationLoss(nn.Linear(5, 4), DistillConfig())
    x, y, i = batch()
    with pytest.raises(NetshrinkError, match=r"teacher outputs \(4, 4\) but student outputs "
                                             r"\(4, 3\) for this batch"):
        callback.loss(state(student), x, y, i, student(x), torch.tensor(0.0))


def test_cached_teacher_outputs_are_looked_up_by_index_and_guarded():
    student, teacher = nets()
    train_x = torch.randn(6, 5)
    cached = torch.randn(1, 6, 3)
    with pytest.raises(ValueError, match="cached_logits need the train_inputs"):
        DistillationLoss(teacher, DistillConfig(), cached_logits=cached)
    callback = DistillationLoss(teacher, DistillConfig(loss="mse", alpha=1.0),
                                cached_logits=cached, train_inputs=train_x)
    callback.on_fit_start(state(student))
    i = torch.tensor([4, 1])
    got = callback._teacher_logits(train_x[i], i)
    assert torch.equal(got, cached[:, i])
    with pytest.raises(NetshrinkError, match="this batch's inputs differ from the stored "
                                             "training examples"):
        callback._teacher_logits(train_x[i] + 0.01, i)


def test_attention_mask_lookup():
    mask = torch.ones(2, 4)
    assert attention_mask({"input_ids": mask, "attention_mask": mask}, "attention_mask") is mask
    assert attention_mask(torch.zeros(2), None) is None
    with pytest.raises(NetshrinkError, match=r"relation mask='attention_mask': the inputs have "
                                             r"no 'attention_mask' keyword"):
        attention_mask(torch.zeros(2, 4), "attention_mask")
    with pytest.raises(NetshrinkError, match="mask='pad'"):
        attention_mask({"input_ids": mask}, "pad")


def test_agreement_is_the_mean_cosine_in_eval_mode_restored():
    student, teacher = nets()
    x = torch.randn(7, 5)
    assert agreement(teacher, teacher, x, batch_size=3) == pytest.approx(1.0, abs=1e-6)
    student.train()
    expected = float(F.cosine_similarity(student(x), teacher(x), dim=-1).mean())
    assert agreement(student, teacher, x, batch_size=2) == pytest.approx(expected, abs=1e-6)
    assert student.training


def test_on_eval_adds_val_cosine_only_for_output_losses():
    student, teacher = nets()
    x = torch.randn(4, 5)
    metrics = {}
    DistillationLoss(teacher, DistillConfig(loss="cosine"), val_inputs=x).on_eval(
        state(student), metrics)
    assert metrics["val_cosine"] == pytest.approx(agreement(student, teacher, x))
    metrics = {}
    DistillationLoss(teacher, DistillConfig(), val_inputs=x).on_eval(state(student), metrics)
    assert metrics == {}
