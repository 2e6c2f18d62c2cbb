import pytest
import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.scheme import (
    Scheme,
    choose_qparams,
    dequantize,
    fake_quantize,
    quantize,
    tensor_range,
)

SCHEMES = [Scheme(bits, symmetric, granularity)
           for bits in (2, 3, 4, 7, 8) for symmetric in (True, False)
           for granularity in ("tensor", "channel", "row")]


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_round_trip_error_is_at_most_half_a_step_inside_the_range(scheme):
    torch.manual_seed(0)
    x = torch.randn(16, 33) * torch.linspace(0.1, 5, 16)[:, None] + 0.3
    lo, hi = tensor_range(x, scheme)
    scale, zero_point = choose_qparams(lo, hi, scheme)
    q = quantize(x, scale, zero_point, scheme)
    assert q.dtype == (torch.int8 if scheme.symmetric else torch.uint8)
    assert int(q.min()) >= scheme.qmin and int(q.max()) <= scheme.qmax
    err = (dequantize(q, scale, zero_point) - x).abs()
    # every x lies in the range, so the error is rounding only: at most scale / 2
    assert bool((err <= scale / 2 * (1 + 1e-5) + 1e-7).all())
    # and the step is as fine as the range allows: the range over the number of steps
    lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    finest = torch.maximum(-lo, hi) / scheme.qmax if scheme.symmetric else \
        (hi - lo) / (scheme.levels - 1)
    assert torch.allclose(scale, finest)


@pytest.mark.parametrize("scheme", SCHEMES[:6], ids=str)
def test_values_outside_the_range_are_clamped_not_wrapped(scheme):
    scale, zero_point = choose_qparams(torch.tensor(-1.0), torch.tensor(1.0), scheme)
    q = quantize(torch.tensor([-50.0, 50.0]), scale, zero_point, scheme)
    assert q.tolist() == [scheme.qmin, scheme.qmax]


def test_symmetric_range_endpoints_are_exact():
    scheme = Scheme(8, symmetric=True)
    a = torch.tensor(3.7)
    scale, zero_point = choose_qparams(-a, a, scheme)
    q = quantize(torch.stack([-a, a, torch.tensor(0.0)]), scale, zero_point, scheme)
    assert q.tolist() == [-127, 127, 0]
    assert torch.allclose(dequantize(q, scale, zero_point), torch.stack([-a, a, torch.zeros(())]))


def test_textbook_floor_mapping_overflows_int8_and_biases_down():
    """x -> floor(128 x / a) gives 128 at x = a (one past int8) and is low by half a step on
    average; round-to-nearest with clamping stays in range and is unbiased."""
    torch.manual_seed(0)
    a = 2.0
    x = (torch.rand(100_000) * 2 - 1) * a
    x[0] = a
    textbook = torch.floor(128 * x / a)
    assert int(textbook[0]) == 128  # does not fit int8
    assert int(textbook.to(torch.int8)[0]) == -128  # and wraps to the most negative value
    step = a / 128
    textbook_err = textbook * step - x
    assert float(textbook_err.mean()) < -0.45 * step  # biased down by about half a step

    scheme = Scheme(8, symmetric=True)
    scale, zero_point = choose_qparams(torch.tensor(-a), torch.tensor(a), scheme)
    q = quantize(x, scale, zero_point, scheme)
    assert int(q[0]) == 127
    rounded_err = dequantize(q, scale, zero_point) - x
    assert abs(float(rounded_err.mean())) < 0.01 * float(scale)
    assert float(rounded_err.abs().max()) <= float(scale) / 2 * (1 + 1e-5)


def test_asymmetric_scheme_uses_all_levels_of_a_positive_range():
    scheme = Scheme(8, symmetric=False)
    scale, zero_point = choose_qparams(torch.tensor(0.0), torch.tensor(6.0), scheme)
    assert int(zero_point) == 0 and float(scale) == pytest.approx(6 / 255)
    q = quantize(torch.tensor([0.0, 6.0]), scale, zero_point, scheme)
    assert q.tolist() == [0, 255]


def test_zero_is_represented_exactly_and_zero_tensors_do_not_divide_by_zero():
    for scheme in (Scheme(8, False), Scheme(4, True)):
        scale, zero_point = choose_qparams(torch.tensor(-0.3), torch.tensor(2.9), scheme)
        q = quantize(torch.zeros(3), scale, zero_point, scheme)
        assert torch.equal(dequantize(q, scale, zero_point), torch.zeros(3))
        scale, zero_point = choose_qparams(torch.tensor(0.0), torch.tensor(0.0), scheme)
        assert float(scale) > 0
        assert torch.equal(dequantize(quantize(torch.zeros(2), scale, zero_point, scheme),
                                      scale, zero_point), torch.zeros(2))


@pytest.mark.parametrize("bits", [0, 1, 9, 16, 8.0, True, "8"])
def test_unsupported_bit_widths_are_one_clear_error(bits):
    with pytest.raises(NetshrinkError, match="bits="):
        Scheme(bits=bits)


def test_unknown_granularity_is_refused():
    with pytest.raises(NetshrinkError, match="granularity"):
        Scheme(8, True, "block")


def test_fake_quantize_straight_through_gradient_is_zero_where_clipped():
    scheme = Scheme(4, symmetric=True)
    x = torch.tensor([-3.0, -0.4, 0.1, 0.66, 0.77, 3.0], requires_grad=True)
    scale = torch.tensor(0.1)
    y = fake_quantize(x, scale, torch.zeros(()), scheme)
    assert torch.allclose(y, torch.tensor([-0.7, -0.4, 0.1, 0.7, 0.7, 0.7]))
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]  # 0.77 > 7 steps: clipped


def test_fake_quantize_gives_lsq_step_size_gradient():
    scheme = Scheme(4, symmetric=True)
    x = torch.tensor([0.26, 5.0])
    scale = torch.tensor(0.1, requires_grad=True)
    fake_quantize(x, scale, torch.zeros(()), scheme).sum().backward()
    # inside: round(v) - v = 3 - 2.6 = 0.4; clipped above: qmax = 7
    assert float(scale.grad) == pytest.approx(0.4 + 7)
