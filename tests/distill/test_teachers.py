"""Teachers: one model or an ensemble (averaged softened probabilities)."""

import pytest
import torch
from torch import nn

from netshrink.distill.teachers import Ensemble, as_teacher, member_logits
from netshrink.errors import NetshrinkError


def test_ensemble_predicts_the_average_probability():
    torch.manual_seed(0)
    members = [nn.Linear(4, 3) for _ in range(3)]
    ensemble = Ensemble(members)
    x = torch.randn(5, 4)
    logits = member_logits(ensemble, x)
    assert logits.shape == (3, 5, 3)
    expected = sum(torch.softmax(m(x), -1) for m in members) / 3
    torch.testing.assert_close(ensemble(x).exp(), expected)


def test_as_teacher():
    model = nn.Linear(4, 3)
    assert as_teacher(model) is model
    assert as_teacher([model]) is model
    assert isinstance(as_teacher([model, nn.Linear(4, 3)]), Ensemble)
    with pytest.raises(NetshrinkError, match=r"nn\.Module"):
        as_teacher("teacher.safetensors")
    with pytest.raises(NetshrinkError, match="at least one"):
        Ensemble([])


def test_members_predicting_different_classes_are_refused():
    with pytest.raises(NetshrinkError, match="same classes"):
        member_logits(Ensemble([nn.Linear(4, 3), nn.Linear(4, 5)]), torch.randn(2, 4))
