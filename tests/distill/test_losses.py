"""The soft-target loss: its gradient, its high-temperature limit, and the hard-label loss."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from netshrink.distill.losses import (
    hard_label_loss,
    logit_matching_loss,
    soft_target_loss,
    soft_targets,
)


def _grad(loss_fn, z):
    z = z.clone().requires_grad_(True)
    loss_fn(z).sum().backward()
    return z.grad


@pytest.mark.parametrize("kind", ["kl", "cross_entropy"])
@pytest.mark.parametrize("temperature", [1.0, 2.5, 20.0])
def test_gradient_is_q_minus_p_over_t(kind, temperature):
    torch.manual_seed(0)
    z, v = torch.randn(6, 10) * 3, torch.randn(6, 10) * 3
    p = soft_targets(v, temperature)
    grad = _grad(lambda s: soft_target_loss(s, p, temperature, kind), z)
    q = torch.softmax(z / temperature, dim=-1)
    torch.testing.assert_close(grad, (q - p) / temperature, rtol=1e-5, atol=1e-7)


def test_high_temperature_approaches_logit_matching():
    """T^2 * dC/dz -> (z - v) / N for zero-meaned logits (Hinton et al. 2015, eq. 2-4)."""
    torch.manual_seed(1)
    z, v = torch.randn(5, 10), torch.randn(5, 10)
    z, v = z - z.mean(-1, keepdim=True), v - v.mean(-1, keepdim=True)
    target = _grad(lambda s: logit_matching_loss(s, v), z)
    torch.testing.assert_close(target, (z - v) / 10)
    gaps = []
    for t in (2.0, 20.0, 200.0, 2000.0):
        p = soft_targets(v.double(), t)
        grad = _grad(lambda s, t=t, p=p: t * t * soft_target_loss(s, p, t), z.double())
        gaps.append(float((grad - target.double()).abs().max()))
    # the gap shrinks like 1/T (the next term of the expansion in 1/T)
    assert all(later < earlier / 5 for earlier, later in itertools.pairwise(gaps))
    assert gaps[0] > 1e-2 and gaps[-1] < 1e-3


def test_logit_matching_ignores_a_shift_of_the_logits():
    z, v = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(logit_matching_loss(z + 5.0, v - 2.0), logit_matching_loss(z, v))
    assert float(logit_matching_loss(v + 1.0, v).max()) < 1e-12


def test_kl_is_zero_when_student_matches_and_ce_is_offset_by_entropy():
    v = torch.randn(4, 10)
    p = soft_targets(v, 4.0)
    assert float(soft_target_loss(v, p, 4.0, "kl").abs().max()) < 1e-5
    entropy = -(p * p.log()).sum(-1)
    torch.testing.assert_close(soft_target_loss(v, p, 4.0, "cross_entropy"), entropy)


def test_ensemble_soft_targets_average_the_members_probabilities():
    members = torch.randn(3, 5, 10)
    expected = sum(torch.softmax(members[m] / 2.0, -1) for m in range(3)) / 3
    torch.testing.assert_close(soft_targets(members, 2.0), expected)


def test_hard_label_loss_skips_unlabeled_examples():
    z, y = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    torch.testing.assert_close(hard_label_loss(z, y), F.cross_entropy(z, y))
    partial = torch.tensor([1, -1, 3, -1])
    expected = F.cross_entropy(z[[0, 2]], partial[[0, 2]], reduction="sum") / 4
    torch.testing.assert_close(hard_label_loss(z, partial), expected)
    assert float(hard_label_loss(z, torch.full((4,), -1))) == 0.0
