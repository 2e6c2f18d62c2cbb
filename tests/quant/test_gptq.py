import pytest
import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.gptq import gptq, inverse_cholesky
from netshrink.quant.weight_only import minmax_grid, round_codes, rtn


def _grid(bits):
    return {"grid": lambda c: minmax_grid(c, bits),
            "round_to": lambda w, s, z: round_codes(w, s, z, bits)}


def _dequantize(codes, scale, zero, group):
    rows, cols = codes.shape
    c = codes.double().reshape(rows, cols // group, group)
    return ((c - zero[..., None]) * scale[..., None]).reshape(rows, cols)


def _correlated_inputs(n=512, features=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(8, features, generator=g)
    return (torch.randn(n, 8, generator=g) @ basis + 0.1 * torch.randn(n, features, generator=g))


@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_beats_round_to_nearest_on_the_layer_output(bits):
    x = _correlated_inputs()
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    hessian = 2 * x.T.double() @ x.double() / len(x)
    codes, scale, zero = gptq(w, hessian, 32, block_size=16, **_grid(bits))
    q_gptq = _dequantize(codes, scale, zero, 32)
    q_rtn = _dequantize(*rtn(w, bits, 32), 32)
    error = {name: float((x.double() @ (w.double() - q).T).pow(2).mean())
             for name, q in (("gptq", q_gptq), ("rtn", q_rtn))}
    assert error["gptq"] < 0.7 * error["rtn"]
    assert int(codes.max()) <= 2**bits - 1


def test_with_uncorrelated_inputs_gptq_is_round_to_nearest():
    # H = c I: no error is passed on (U is diagonal), so every weight rounds to nearest
    w = torch.randn(8, 32, generator=torch.Generator().manual_seed(2))
    codes, scale, zero = gptq(w, 3.0 * torch.eye(32), 16, damping=0.0, **_grid(4))
    expected = rtn(w, 4, 16)
    assert torch.equal(codes, expected[0])
    assert torch.allclose(scale, expected[1]) and torch.allclose(zero, expected[2])


def test_lazy_block_updates_do_not_change_the_result():
    x = _correlated_inputs(features=48, seed=3)
    w = torch.randn(6, 48, generator=torch.Generator().manual_seed(4))
    hessian = 2 * x.T.double() @ x.double() / len(x)
    one_block = gptq(w, hessian, 16, block_size=48, **_grid(4))
    small_blocks = gptq(w, hessian, 16, block_size=8, **_grid(4))
    assert torch.equal(one_block[0], small_blocks[0])


def test_dead_inputs_and_pruned_weights_round_to_exact_zeros():
    x = _correlated_inputs(features=32, seed=5)
    x[:, 3] = 0.0  # an input that never fires
    w = torch.randn(4, 32, generator=torch.Generator().manual_seed(6))
    keep = torch.rand(4, 32, generator=torch.Generator().manual_seed(7)) > 0.5
    hessian = 2 * x.T.double() @ x.double() / len(x)
    codes, scale, zero = gptq(w * keep, hessian, 32, keep=keep, **_grid(4))
    q = _dequantize(codes, scale, zero, 32)
    assert bool((q[~keep] == 0).all())
    assert bool((q[:, 3] == 0).all())


def test_bad_shapes_and_an_indefinite_hessian_are_refused():
    with pytest.raises(NetshrinkError, match="does not match"):
        gptq(torch.randn(2, 8), torch.eye(4), 4, **_grid(4))
    with pytest.raises(NetshrinkError, match="group_size"):
        gptq(torch.randn(2, 8), torch.eye(8), 3, **_grid(4))
    with pytest.raises(NetshrinkError, match="damping"):
        inverse_cholesky(-torch.eye(4), 0.0)


def test_act_order_rounds_the_strongest_inputs_first_and_puts_codes_back():
    x = _correlated_inputs() * torch.logspace(-1, 1, 64)  # inputs of very different energy
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    hessian = 2 * x.T.double() @ x.double() / len(x)
    ordered = gptq(w, hessian, 64, act_order=True, **_grid(3))
    # the same as GPTQ on the inputs sorted by decreasing H[j, j], codes put back in place
    order = torch.argsort(hessian.diagonal(), descending=True, stable=True)
    codes, scale, zero = gptq(w[:, order], hessian[order][:, order], 64, **_grid(3))
    assert torch.equal(ordered[2], zero)
    back = torch.argsort(order)
    assert torch.equal(ordered[0], codes[:, back]) and torch.equal(ordered[1], scale)
    plain = gptq(w, hessian, 64, **_grid(3))
    error = {name: float((x.double() @ (w.double() - _dequantize(*r, 64)).T).pow(2).mean())
             for name, r in (("act_order", ordered), ("plain", plain))}
    assert error["act_order"] < error["plain"]
    with pytest.raises(NetshrinkError, match="one group per row"):
        gptq(w, hessian, 32, act_order=True, **_grid(3))
