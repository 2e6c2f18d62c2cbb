"""Hints: forward hooks capture exactly the named modules, and are removed afterwards."""

import pytest
import torch
from torch import nn

from netshrink.distill.hints import FeatureCapture, hint_loss, make_projection
from netshrink.errors import NetshrinkError


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Sequential(nn.Linear(6, 5), nn.Tanh()),
                         nn.Linear(5, 3))


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_captures_exactly_the_named_modules_then_removes_the_hooks():
    net, x = _net(), torch.randn(7, 4)
    with FeatureCapture(net, ["0", "2.1"]) as capture:
        assert _hook_count(net) == 2
        net(x)
        assert set(capture.features) == {"0", "2.1"}
        torch.testing.assert_close(capture.features["0"], net[0](x))
        torch.testing.assert_close(capture.features["2.1"], net[2](net[1](net[0](x))))
    assert _hook_count(net) == 0
    assert net(x).shape == (7, 3)


def test_a_missing_module_is_one_clear_error_naming_it():
    with pytest.raises(NetshrinkError, match=r"student module '2\.3'.*did you mean"):
        FeatureCapture(_net(), ["2.3"], "student")


def test_a_module_not_called_in_forward_is_refused():
    net = _net()
    net.add_module("unused", nn.Linear(2, 2))
    net.forward = lambda x: x  # nothing runs
    with FeatureCapture(net, ["unused"]) as capture:
        net(torch.randn(1, 4))
        with pytest.raises(NetshrinkError, match="not called"):
            capture.take("unused")


def test_projections_map_student_shapes_to_the_teacher():
    assert isinstance(make_projection((8,), (8,)), nn.Identity)
    linear = make_projection((8,), (12,))
    assert linear(torch.randn(2, 8)).shape == (2, 12)
    conv = make_projection((4, 7, 7), (16, 14, 14))
    s, t = torch.randn(2, 4, 7, 7), torch.randn(2, 16, 14, 14)
    assert conv(s).shape == (2, 16, 7, 7)
    assert hint_loss(conv, s, t).dim() == 0
    flat = make_projection((4, 7, 7), (20,))
    assert flat(s).shape == (2, 20)
