import pytest
import torch

from netshrink.distill import DistillConfig, Relation
from netshrink.distill.relations import relation_loss
from netshrink.errors import NetshrinkError


def _qkv(batch=2, tokens=6, width=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, tokens, width, generator=g) for _ in range(3))


def test_a_student_equal_to_its_teacher_has_zero_loss():
    qkv = _qkv()
    assert float(relation_loss(qkv, qkv, heads=4)) == pytest.approx(0.0, abs=1e-6)
    assert float(relation_loss(qkv, _qkv(seed=1), heads=4)) > 0.01


def test_a_narrower_student_is_compared_by_its_relations():
    teacher, student = _qkv(width=24), _qkv(width=8, seed=2)
    assert float(relation_loss(teacher, student, heads=4)) > 0
    with pytest.raises(NetshrinkError, match="divisible"):
        relation_loss(teacher, student, heads=3)


def test_padded_positions_do_not_count():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    teacher, student = _qkv(), _qkv(seed=3)
    changed = tuple(s.clone() for s in student)
    for s in changed:
        s[0, 4:] = 100.0  # the first sentence's padding
    a = relation_loss(teacher, student, heads=4, mask=mask)
    b = relation_loss(teacher, changed, heads=4, mask=mask)
    assert float(a) == pytest.approx(float(b), rel=1e-5)
    assert float(relation_loss(teacher, changed, heads=4)) != pytest.approx(float(a))


def test_gradients_reach_the_student_only():
    teacher = tuple(t.requires_grad_() for t in _qkv())
    student = tuple(s.requires_grad_() for s in _qkv(seed=4))
    relation_loss(teacher, student, heads=2).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)


def test_relation_config_checks_and_round_trips():
    relation = Relation(("a.q", "a.k", "a.v"), ("b.q", "b.k", "b.v"), heads=12, weight=0.5)
    config = DistillConfig(loss="cosine", relations=[relation.to_dict()])
    assert config.relations == (relation,)
    assert DistillConfig.from_dict(config.to_dict()) == config
    with pytest.raises(NetshrinkError, match="query, key"):
        Relation(("a", "b"), ("c", "d", "e"), heads=2)
    with pytest.raises(NetshrinkError, match="heads"):
        Relation(("a", "b", "c"), ("c", "d", "e"), heads=0)
    with pytest.raises(NetshrinkError, match="cache_dir"):
        DistillConfig(relations=[relation], cache_dir="x")
