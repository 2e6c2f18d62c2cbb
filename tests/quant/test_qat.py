"""netshrink.quant.qat: fake quantization (ranges, LSQ steps, straight-through gradients) and
the QAT layers, their specs and their rebuilding from a spec."""

import math

import pytest
import torch
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.quant.qat import (
    FakeQuantize,
    QATConv1d,
    QATConv2d,
    QATConv3d,
    QATEmbedding,
    QATLinear,
    grad_scale,
    qat_from_spec,
)
from netshrink.quant.scheme import Scheme

WEIGHT = Scheme(bits=4, symmetric=True, granularity="channel")
INPUT = Scheme(bits=8, symmetric=False, granularity="tensor")


def test_grad_scale_keeps_the_value_and_scales_the_gradient():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = grad_scale(x, 0.25)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.25, 0.25]))


def test_weight_fake_quantization_is_per_channel_on_the_grid():
    torch.manual_seed(0)
    w = torch.randn(3, 5)
    fq = FakeQuantize(WEIGHT, channels=3, is_weight=True)
    out = fq(w)
    step = w.abs().amax(1, keepdim=True) / 7  # 4 bits symmetric: q in [-7, 7]
    assert torch.allclose(out / step, torch.round(out / step), atol=1e-4)
    assert torch.allclose(out, w, atol=float(step.max()) / 2 + 1e-6)
    assert torch.allclose(out.abs().amax(1), w.abs().amax(1))  # the extremes are exact
    assert fq.qparams()[0].shape == (3,)


def test_input_range_initializes_on_the_first_batch_then_moves_by_the_averaging():
    fq = FakeQuantize(INPUT, averaging=0.1)
    fq(torch.tensor([-1.0, 3.0]))
    assert (float(fq.lo), float(fq.hi)) == (-1.0, 3.0)
    fq(torch.tensor([-1.0, 13.0]))
    assert float(fq.hi) == pytest.approx(3.0 + 0.1 * 10)  # the first batch tracks once more
    fq.eval()
    fq(torch.tensor([-50.0, 50.0]))  # evaluation does not move the range
    assert float(fq.hi) == pytest.approx(4.0) and float(fq.lo) == pytest.approx(-1.0)
    scale, zero_point = fq.qparams()
    assert float(scale) == pytest.approx(5.0 / 255) and float(zero_point) == 51


def test_straight_through_gradient_is_zero_where_clipped():
    fq = FakeQuantize(INPUT).eval()
    fq(torch.tensor([0.0, 1.0]))  # range [0, 1]
    x = torch.tensor([0.4, 2.0, -1.0], requires_grad=True)
    out = fq(x)
    assert torch.allclose(out, torch.tensor([102 / 255, 1.0, 0.0]))
    out.sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 0.0, 0.0]))


def test_lsq_initial_step_and_its_gradient():
    torch.manual_seed(0)
    w = torch.randn(2, 8)
    fq = FakeQuantize(WEIGHT, channels=2, lsq=True, is_weight=True)
    fq(w).sum().backward()
    expected = 2 * w.abs().mean(1) / math.sqrt(7)
    assert torch.allclose(fq.qparams()[0], expected)
    assert fq.scale.requires_grad and fq.scale.grad is not None and fq.scale.grad.shape == (2,)
    assert not FakeQuantize(INPUT).scale.requires_grad


def test_qat_linear_from_float_keeps_the_weights_and_approximates_the_float_output():
    torch.manual_seed(0)
    linear = nn.Linear(6, 4)
    qat = QATLinear.from_float(linear, weight_scheme=Scheme(8, True, "channel"),
                               input_scheme=INPUT)
    assert torch.equal(qat.weight, linear.weight) and torch.equal(qat.bias, linear.bias)
    x = torch.randn(10, 6)
    assert torch.allclose(qat(x), linear(x), atol=0.05)
    assert not torch.equal(qat(x), linear(x))


@pytest.mark.parametrize(("build", "qat", "shape"), [
    (lambda: nn.Conv1d(2, 3, 3, padding=1), QATConv1d, (2, 2, 7)),
    (lambda: nn.Conv2d(2, 3, 3, stride=2, groups=1, bias=False), QATConv2d, (2, 2, 7, 7)),
    (lambda: nn.Conv3d(2, 4, 2, groups=2, padding_mode="reflect", padding=1), QATConv3d,
     (1, 2, 4, 4, 4)),
])
def test_qat_convolutions_round_trip_through_their_spec(build, qat, shape):
    torch.manual_seed(0)
    conv = build()
    module = qat.from_float(conv, weight_scheme=WEIGHT, input_scheme=INPUT, lsq=True)
    assert isinstance(module, type(conv)) and type(module).__name__ == qat.__name__
    x = torch.randn(*shape)
    out = module(x)
    assert out.shape == conv(x).shape
    spec = module.spec()
    assert spec["type"] == f"qat_conv{conv.weight.dim() - 2}d" and spec["lsq"] is True
    fresh = qat_from_spec(spec)
    assert type(fresh) is qat and fresh.spec() == spec
    fresh.load_state_dict(module.state_dict())
    assert torch.equal(fresh(x), out)


def test_qat_linear_and_embedding_round_trip_through_their_spec():
    torch.manual_seed(0)
    linear = QATLinear(3, 2, bias=False, weight_scheme=WEIGHT, input_scheme=INPUT,
                       averaging=0.5)
    spec = linear.spec()
    assert spec == {"type": "qat_linear", "in_features": 3, "out_features": 2, "bias": False,
                    "weight": WEIGHT.to_dict(), "input": INPUT.to_dict(), "lsq": False,
                    "averaging": 0.5}
    assert qat_from_spec(spec).spec() == spec
    table = QATEmbedding.from_float(nn.Embedding(5, 3, padding_idx=0), weight_scheme=WEIGHT)
    idx = torch.tensor([[0, 4, 2]])
    out = table(idx)
    assert torch.equal(out[0, 0], torch.zeros(3))
    fresh = qat_from_spec(table.spec())
    fresh.load_state_dict(table.state_dict())
    assert torch.equal(fresh(idx), out) and fresh.padding_idx == 0


def test_an_unknown_qat_type_is_refused():
    spec = QATLinear(3, 2, weight_scheme=WEIGHT, input_scheme=INPUT).spec()
    with pytest.raises(NetshrinkError, match="unknown QAT layer type 'qat_lstm'; upgrade"):
        qat_from_spec({**spec, "type": "qat_lstm"})
