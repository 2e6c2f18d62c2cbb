"""Distillation between models whose inputs are token ids, two tensors or keyword arguments."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink import NetshrinkError
from netshrink.data import Examples, Splits, inputs
from netshrink.distill import DistillConfig, Ensemble, transfer_set
from netshrink.train import Callback, TrainConfig, fit

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


class TinyAttention(nn.Module):
    """Embedding + one TransformerEncoderLayer over (input_ids, attention_mask), mean-pooled."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(16, 2)

    def forward(self, input_ids, attention_mask):
        h = self.layer(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        mask = attention_mask[..., None].float()
        return self.out((h * mask).sum(1) / mask.sum(1))


class CutToLongest(Callback):
    """Each batch cut to its longest sentence: with bucket=True, most padding goes."""

    def on_batch(self, state, x, targets, indices):
        longest = int(x["attention_mask"].sum(1).max())
        return {k: v[:, :longest] for k, v in x.items()}, targets


def _token_splits() -> Splits:
    def part(n, seed):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(1, 21, (n,), generator=g)
        labels = torch.randint(0, 2, (n,), generator=g)
        mask = (torch.arange(20) < lengths[:, None]).long()
        ids = (torch.randint(1, 25, (n, 20), generator=g) + 24 * labels[:, None]) * mask
        return Examples({"input_ids": ids, "attention_mask": mask}, labels)

    return Splits("tokens", part(320, 0), part(64, 1), part(128, 2), 2, (20,))


def test_bucketed_batches_meet_their_own_cached_teacher_outputs(tmp_path):
    """The cache is read by example index and bucketing reorders the examples: a cached and a
    live teacher train the same student. A batch cut to its longest sentence is not the stored
    example, so the cache refuses it by name; the live teacher takes it."""
    splits = _token_splits()
    torch.manual_seed(3)
    teacher = TinyAttention()
    fit(teacher, splits, QUICK, progress=False)
    teacher.eval()
    config = TrainConfig(iterations=30, batch_size=16, lr=1e-2, device="cpu", bucket=True)
    students = []
    for cache_dir in (None, str(tmp_path)):
        torch.manual_seed(4)
        students.append(TinyAttention())
        result = netshrink.distill(students[-1], teacher, splits,
                                   DistillConfig(temperature=2.0, alpha=0.9, cache_dir=cache_dir),
                                   config, progress=False)
    assert result.cache == "miss"
    for a, b in zip(*(s.state_dict().values() for s in students), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    cached_config = DistillConfig(temperature=2.0, alpha=0.9, cache_dir=str(tmp_path))
    with pytest.raises(NetshrinkError, match="differ from the stored training examples"):
        netshrink.distill(TinyAttention(), teacher, splits, cached_config, config,
                          [CutToLongest()], progress=False)
    torch.manual_seed(4)
    cut = TinyAttention()
    netshrink.distill(cut, teacher, splits, DistillConfig(temperature=2.0, alpha=0.9), config,
                      [CutToLongest()], progress=False)
    for model in (students[1], cut):
        assert agreement(model.eval(), teacher, splits.test.inputs) > 0.9
