"""Integer modules equal a float reference of the same integer arithmetic, exactly."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, QuantEmbedding, kernels
from netshrink.quant.modules import ActivationSpec, QuantConv2d, QuantLinear
from netshrink.quant.scheme import Scheme, choose_qparams

KERNELS = ["reference", "int_mm"] + (["onednn"] if kernels.onednn_available() else [])


def _layer(activation, kernel, bias=True, k=48, n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    layer = QuantLinear(k, n, bias, 8, activation, kernel, "fc")
    layer.set_weight(torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8),
                     torch.rand(n, generator=g) * 0.01 + 1e-3)
    if bias:
        layer.bias.copy_(torch.randn(n, generator=g))
    if activation.static:
        layer.input_scale.fill_(0.021)
        layer.input_zero_point.fill_(40)
    return layer


def _acc(q, zero_point, w):
    return ((q.double() - zero_point) @ w.double().t()).float()


def _reference_linear(layer, x):
    """The arithmetic a QuantLinear promises, spelled out in plain tensor operations."""
    a, w, ws = layer.activation, layer.weight, layer.weight_scale
    scheme = Scheme(a.bits, a.symmetric, a.granularity)
    b = layer.bias if layer.bias is not None else torch.zeros(w.shape[0])
    if a.granularity == "row":
        if a.symmetric:
            s = (x.abs().amax(-1, keepdim=True) / scheme.qmax).clamp(min=1e-12)
            offset = 2 ** (a.bits - 1)
            q = torch.clamp(torch.round(x / s) + offset, 1, 2**a.bits - 1)
            return torch.addcmul(b, _acc(q, offset, w) * ws, s)
        s, z = choose_qparams(x.amin(-1, keepdim=True), x.amax(-1, keepdim=True), scheme)
        q = torch.clamp(torch.round(x / s) + z, 0, 2**a.bits - 1)
        # bias - (s z) r + s * acc, with r the weights' row sums (the zero-point correction)
        r = (ws * w.sum(1).float()).view(1, -1)
        shifted = torch.addmm(b, -(s * z).reshape(-1, 1), r).view(*x.shape[:-1], -1)
        return shifted.addcmul_(_acc(q, 0, w) * ws, s)
    if a.static:
        s, z = layer.input_scale, layer.input_zero_point
    else:
        s, z = choose_qparams(x.min(), x.max(), scheme)
    if a.symmetric:
        z = torch.full_like(z, 2 ** (a.bits - 1))
    lo = 1 if a.symmetric else 0
    q = torch.clamp(torch.round(x / s) + z, lo, 2**a.bits - 1)
    return _acc(q, z, w) * (s * ws) + b


SPECS = [ActivationSpec(7, False, "tensor", static=True),
         ActivationSpec(7, True, "tensor", static=True),
         ActivationSpec(7, False, "tensor"), ActivationSpec(6, True, "tensor"),
         ActivationSpec(7, False, "row"), ActivationSpec(7, True, "row"),
         ActivationSpec(4, False, "row")]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_quant_linear_equals_the_integer_arithmetic_exactly(kernel, spec):
    layer = _layer(spec, kernel)
    x = torch.randn(3, 7, 48) * 2 + 0.5
    out = layer(x)
    assert out.shape == (3, 7, 20)
    assert torch.equal(out, _reference_linear(layer, x))


def test_quant_linear_without_bias():
    layer = _layer(ActivationSpec(7, False, "row"), "reference", bias=False)
    x = torch.randn(5, 48)
    assert torch.equal(layer(x), _reference_linear(layer, x))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("static", [True, False])
def test_quant_conv_equals_the_integer_arithmetic_exactly(kernel, static):
    g = torch.Generator().manual_seed(2)
    layer = QuantConv2d(3, 6, 3, stride=2, padding=1, activation=ActivationSpec(7, static=static),
                        kernel=kernel)
    w = torch.randint(-127, 128, (6, 3, 3, 3), generator=g, dtype=torch.int8)
    layer.set_weight(w, torch.rand(6, generator=g) * 0.01)
    layer.bias.copy_(torch.randn(6, generator=g))
    if static:
        layer.input_scale.fill_(0.03)
        layer.input_zero_point.fill_(20)
    x = torch.randn(2, 3, 10, 10, generator=g)
    s, z = (layer.input_scale, layer.input_zero_point) if static else \
        choose_qparams(x.min(), x.max(), Scheme(7, False))
    q = torch.clamp(torch.round(x / s) + z, 0, 127)
    acc = F.conv2d(q.double() - z, w.double(), stride=2, padding=1).float()
    expected = acc * (s * layer.weight_scale).view(-1, 1, 1) + layer.bias.view(-1, 1, 1)
    assert torch.equal(layer(x), expected)


def test_conv_refuses_row_granularity():
    with pytest.raises(NetshrinkError, match="per tensor"):
        QuantConv2d(3, 4, 3, activation=ActivationSpec(7, False, "row"))


def test_static_activations_must_be_per_tensor():
    with pytest.raises(NetshrinkError, match="static"):
        ActivationSpec(8, False, "row", static=True)


def test_per_channel_beats_per_tensor_on_unequal_channel_ranges():
    torch.manual_seed(0)
    errors = {}
    for per_channel in (True, False):
        layer = nn.Linear(64, 16, bias=False)
        with torch.no_grad():  # output channels whose weights differ 1000x in magnitude
            layer.weight.mul_(torch.logspace(-3, 0, 16)[:, None])
        model = nn.Sequential(layer)
        x = torch.randn(256, 64)
        reference = model(x).detach()
        netshrink.quantize_(model, Dynamic(per_channel=per_channel, kernel="reference"))
        relative = ((model(x) - reference).norm(dim=0) / reference.norm(dim=0))
        errors[per_channel] = relative
    # the small channels are ruined by a per-tensor step, kept by their own scale
    assert float(errors[True].max()) < 0.02
    assert float(errors[False][:4].min()) > 0.5
    assert float(errors[True].mean()) < 0.05 * float(errors[False].mean())


def test_quant_embedding_rows_within_half_a_step():
    torch.manual_seed(0)
    table = nn.Embedding(100, 12)
    with torch.no_grad():
        table.weight.mul_(torch.logspace(-2, 1, 100)[:, None])
    q = QuantEmbedding.from_float(table)
    idx = torch.tensor([[0, 5, 99], [42, 42, 7]])
    err = (q(idx) - table(idx)).abs()
    assert bool((err <= q.weight_scale[idx].unsqueeze(-1) / 2 + 1e-7).all())
    assert q.weight.dtype == torch.int8


def test_quantized_model_follows_the_float_model_closely():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    x = torch.randn(100, 32)
    reference = model(x).detach()
    netshrink.quantize_(model, Dynamic())
    assert float((model(x) - reference).norm() / reference.norm()) < 0.02


def test_packed_weights_follow_weight_updates():
    layer = _layer(ActivationSpec(7, False, "row"), KERNELS[-1])
    x = torch.randn(4, 48)
    first = layer(x)
    layer.weight.neg_()
    second = layer(x)
    assert torch.equal(second, _reference_linear(layer, x)) and not torch.equal(first, second)
