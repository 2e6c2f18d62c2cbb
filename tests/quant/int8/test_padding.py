"""Padding before the integer kernel (reflect, replicate, circular, asymmetric zeros): a Pad
op on the integers, the same as the reference arithmetic on every runtime and kernel choice."""

import copy
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Static, compile_int8
from netshrink.quant.int8 import lower, padding, reference, torch_backend
from netshrink.quant.int8.program import (
    Dense,
    Dequantize,
    Pad,
    Program,
    QParams,
    Quantize,
    Value,
)

from .conftest import (
    assert_onnxruntime_ops_match,
    assert_torch_ops_match,
    lowered_case,
)

MODES = ("reflect", "replicate", "circular", "same")  # "same": an even kernel's zero padding


def _conv(dims: int, mode: str, cin: int, cout: int, kernel: int, **kwargs) -> nn.Module:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    if mode == "same":  # the extra zero goes after: asymmetric
        return conv(cin, cout, kernel + 1, padding="same", **kwargs)
    return conv(cin, cout, kernel, padding=kernel // 2 + 1, padding_mode=mode, **kwargs)


class Padded(nn.Module):
    """Two padded convs (the second strided, or dilated for "same") and a Linear head."""

    def __init__(self, dims: int, mode: str, shape: tuple[int, ...]):
        super().__init__()
        self.c1 = _conv(dims, mode, shape[0], 6, 3)
        second = {"dilation": 3} if mode == "same" else {"stride": 2}
        self.c2 = _conv(dims, mode, 6, 5, 3, **second)
        with torch.no_grad():
            features = self.c2(self.c1(torch.zeros(1, *shape))).numel()
        self.fc = nn.Linear(features, 4)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).flatten(1))


class Padded1dOutput(nn.Module):
    """A Conv1d chain whose last padded conv is the model's float output (one score per
    step): the float-output kernels read padded integers too."""

    def __init__(self, mode: str):
        super().__init__()
        self.c1 = _conv(1, mode, 2, 6, 5)
        self.c2 = _conv(1, mode, 6, 3, 3)

    def forward(self, x):
        return self.c2(F.hardtanh(self.c1(x), -1.0, 1.0))


class Mixed2d(nn.Module):
    """Every mode in one network, with BatchNorm, a depthwise circular conv added to its
    input, a zero-padded conv inside the kernel, a max pool and an average pool."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect", bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.edge = nn.Conv2d(8, 8, 3, padding=(1, 2), padding_mode="replicate")
        self.wrap = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular", groups=8)
        self.same = nn.Conv2d(8, 8, 2, padding="same")
        self.zero = nn.Conv2d(8, 6, 3, padding=1, stride=2)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.max_pool2d(F.relu(self.edge(x)), 2)
        x = F.relu(self.wrap(x) + x)
        x = F.relu(self.zero(F.relu6(self.same(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Mixed1d(nn.Module):
    """Every mode in 1-D, with a max pool between and a residual add."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(3, 6, 5, padding=2, padding_mode="reflect")
        self.b = nn.Conv1d(6, 6, 3, padding=1, padding_mode="circular")
        self.c = nn.Conv1d(6, 6, 4, padding="same")
        self.d = nn.Conv1d(6, 4, 3, padding=2, padding_mode="replicate", stride=2)
        self.fc = nn.Linear(4 * 9, 3)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.a(x)), 2)
        x = F.relu(self.b(x) + x)
        x = F.relu(self.d(F.relu(self.c(x))))
        return self.fc(x.flatten(1))


CASES = {
    **{f"conv2d_{m}": (lambda m=m: (Padded(2, m, (3, 8, 7)), torch.randn(64, 3, 8, 7)))
       for m in MODES},
    **{f"conv1d_{m}": (lambda m=m: (Padded(1, m, (3, 16)), torch.randn(64, 3, 16)))
       for m in MODES},
    "conv1d_reflect_output": lambda: (Padded1dOutput("reflect"), torch.randn(64, 2, 20)),
    "mixed2d": lambda: (Mixed2d(), torch.randn(64, 3, 10, 10)),
    "mixed1d": lambda: (Mixed1d(), torch.randn(64, 3, 32)),
}


pytestmark = pytest.mark.usefixtures("seeded")


@functools.cache
def build(name: str):
    """(float model, quantized copy, calibration data, program) of one case, built once."""
    return lowered_case(CASES[name])


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    return build(request.param)


# ------------------------------------------------------------------------------ the op

@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(1, 2, 2, 1), (0, 3, 0, 0), (2, 0, 1, 1)])
def test_the_reference_pad_is_f_pad_of_the_real_values(mode, pads):
    q = QParams(0.5, 17)
    x = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    values = {"x": Value("x", (2, 3, 4, 5), q),
              "y": Value("y", padding.padded_shape((2, 3, 4, 5), pads), q)}
    op = Pad(["x"], "y", pads=pads, mode=mode)
    got = reference.run_op(op, [x], Program(values, [op], ["x"], ["y"]))
    assert got.dtype == torch.uint8 and got.shape == values["y"].shape
    expected = F.pad(reference.real(x, q), pads, mode=mode)  # zeros: the real 0
    assert torch.equal(reference.real(got, q), expected)


def test_constant_padding_writes_the_zero_point_not_zero():
    q = QParams(0.1, 40)
    x = torch.full((1, 1, 2, 2), 200, dtype=torch.uint8)
    values = {"x": Value("x", (1, 1, 2, 2), q), "y": Value("y", (1, 1, 2, 5), q)}
    op = Pad(["x"], "y", pads=(1, 2, 0, 0))
    got = reference.run_op(op, [x], Program(values, [op], ["x"], ["y"]))
    assert got[0, 0].tolist() == [[40, 200, 200, 40, 40]] * 2


def test_an_unknown_mode_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'symmetric' is not one of constant, reflect"):
        padding.source_index(4, 1, 1, "symmetric")


def test_a_pre_pad_that_is_not_two_numbers_a_dimension_is_refused_when_lowered():
    _, quantized, _, _ = build("conv2d_reflect")
    layer = copy.deepcopy(next(m for m in quantized.modules() if getattr(m, "pre_pad", ())))
    layer.pre_pad = (1, 1)
    with pytest.raises(lower._Unsupported, match=r"pre_pad \(1, 1\) is not \(before, after\)"):
        lower._module_dense(None, layer)


def _pad_program(mode: str, pads: tuple[int, int, int, int]) -> Program:
    """Quantize -> Pad -> Dequantize, with a power-of-two scale (exact levels: only the pad
    can differ)."""
    q = QParams(0.25, 100)
    shape = (2, 3, 4, 5)
    padded = padding.padded_shape(shape, pads)
    values = {"x": Value("x", shape), "q": Value("q", shape, q), "p": Value("p", padded, q),
              "y": Value("y", padded)}
    ops = [Quantize(["x"], "q"), Pad(["q"], "p", pads=pads, mode=mode), Dequantize(["p"], "y")]
    return Program(values, ops, ["x"], ["y"])


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_each_runtime_pads_exactly_as_the_reference(runtime, mode):
    program = _pad_program(mode, (1, 2, 3, 1))
    x = (torch.randint(0, 256, (2, 3, 4, 5)).float() - 100) * 0.25
    if runtime == "torch":
        if not torch_backend.available():
            pytest.skip("oneDNN's quantized ops: x86 only")
        got = torch_backend.TorchProgram(program)(x)
    else:
        pytest.importorskip("onnxruntime")
        from netshrink.quant.int8 import onnx_backend

        got = onnx_backend.OnnxProgram(program, threads=1)(x)
    assert torch.equal(got, reference.run(program, x))


def test_two_circular_pads_of_one_value_make_one_valid_graph():
    """(Two layers reading one value each wrap it: the slices must not share names.)"""
    pytest.importorskip("onnxruntime")
    from netshrink.quant.int8 import onnx_backend

    program = _pad_program("circular", (1, 1, 1, 1))
    q = program.values["q"].qparams
    program.values |= {"p2": Value("p2", program.values["p"].shape, q),
                       "y2": Value("y2", program.values["y"].shape)}
    program.ops += [Pad(["q"], "p2", pads=(1, 1, 1, 1), mode="circular"),
                    Dequantize(["p2"], "y2")]
    program.outputs.append("y2")
    program.single_output = False
    x = (torch.randint(0, 256, (2, 3, 4, 5)).float() - 100) * 0.25
    a, b = onnx_backend.OnnxProgram(program, threads=1)(x)
    assert torch.equal(a, b) and torch.equal(a, reference.run(program, x)[0])


# ------------------------------------------------------------------------------ lowering

@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("mode", MODES)
def test_each_padded_conv_lowers_to_a_pad_and_a_kernel_without_padding(dims, mode):
    _, quantized, _, program = build(f"conv{dims}d_{mode}")
    pads = [op for op in program.ops if isinstance(op, Pad)]
    convs = [op for op in program.ops if isinstance(op, Dense) and op.conv]
    assert len(pads) == len(convs) == 2
    layers = (quantized.c1, quantized.c2)
    for pad, conv, layer in zip(pads, convs, layers, strict=True):
        assert conv.inputs[0] == pad.output and conv.geometry.padding == (0, 0)
        assert pad.mode == ("constant" if mode == "same" else mode)
        assert pad.pads == (tuple(layer.pre_pad) if dims == 2 else (*layer.pre_pad, 0, 0))
        assert program.qparams(pad.inputs[0]) == program.qparams(pad.output) == \
            conv.input_qparams
    if mode == "same":  # the extra zero after, on every padded axis
        assert pads[0].pads == ((1, 2, 1, 2) if dims == 2 else (1, 2, 0, 0))


def test_padding_zero_in_a_non_zero_mode_adds_no_pad():
    data = torch.randn(16, 3, 6, 6)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=0, padding_mode="reflect"), nn.Flatten())
    netshrink.quantize_(model.eval(), Static(), data=data)
    assert model[0].pre_pad  # the module still pads (by nothing) first
    program = lower.lower(model, data[:2])
    assert program.count("Pad") == 0 and program.count("Dense") == 1


@pytest.mark.parametrize("name", ["conv2d_reflect", "conv1d_circular", "conv1d_reflect_output",
                                  "conv2d_same"])
def test_a_chain_of_padded_convs_matches_the_quantized_model(name):
    _, quantized, data, _ = build(name)
    program = lower.lower(quantized, data[:2])  # no adds or pools: nothing to calibrate
    x = torch.randn(16, *data.shape[1:])
    with torch.no_grad():
        expected = quantized(x)
    torch.testing.assert_close(reference.run(program, x), expected, rtol=1e-4, atol=1e-4)


def test_an_unsupported_pad_mode_is_refused_by_name():
    data = torch.randn(16, 3, 12)
    model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                          nn.Flatten())
    netshrink.quantize_(model.eval(), Static(), data=data)
    model[0].pad_mode = "symmetric"  # (no torch mode: a spec edited by hand)
    with pytest.raises(NetshrinkError, match=r"module '0' \(QuantConv1d\): 'symmetric' padding "
                                             r".*reflect, replicate, circular"):
        lower.lower(model, data[:2])


# ------------------------------------------------------------------------------ runtimes

@pytest.mark.parametrize("kernels", ["integer", "float", "mixed"])
def test_every_op_on_onnxruntime_matches_the_reference_arithmetic(case, kernels):
    *_, data, program = case
    assert_onnxruntime_ops_match(program, data.shape[1:], kernels)


@pytest.mark.skipif(not torch_backend.available(), reason="oneDNN's quantized ops: x86 only")
@pytest.mark.parametrize("kernels", torch_backend.KERNELS)
def test_every_op_on_torch_matches_the_reference_arithmetic(case, kernels):
    *_, data, program = case
    assert_torch_ops_match(program, data.shape[1:], kernels)


@pytest.mark.parametrize(("runtime", "kernels"), [
    ("torch", "onednn"), ("torch", "fbgemm"), ("onnxruntime", "integer"),
    ("onnxruntime", "float"), ("onnxruntime", "mixed")])
def test_compile_int8_runs_padded_models_close_to_the_reference_and_the_float_model(
        case, runtime, kernels):
    pytest.importorskip("onnxruntime")
    if runtime == "torch" and not torch_backend.available():
        pytest.skip("oneDNN's quantized ops: x86 only")
    model, quantized, data, _ = case
    compiled = compile_int8(quantized, data[:8], data=data, runtime=runtime, kernels=kernels)
    assert compiled.program.count("Pad") >= 2
    x = data[8:24]
    expected = reference.run(compiled.program, x)
    got = compiled(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 0.02 * expected.abs().max()
    with torch.no_grad():
        module, real = quantized(x), model(x)
    assert (got - module).abs().max() < 0.05 * module.abs().max()
    assert (got - real).abs().max() < 0.1 * real.abs().max()


def test_the_onnx_graph_pads_with_onnx_modes_and_wraps_with_slices():
    pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    from netshrink.quant.int8 import onnx_backend

    *_, program = build("mixed2d")
    graph = onnx_backend.to_onnx(program, "integer").graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    pads = [n for n in graph.node if n.op_type == "Pad"]
    modes = sorted(next(a.s.decode() for a in n.attribute if a.name == "mode") for n in pads)
    assert modes == ["constant", "edge", "reflect"]  # opset 17 has no "wrap"
    constant = next(n for n in pads if n.attribute[0].s == b"constant")
    same = next(op for op in program.ops if isinstance(op, Pad) and op.mode == "constant")
    value = constants[constant.input[2]]
    assert value.dtype == np.uint8 and int(value) == program.qparams(same.inputs[0]).zero_point
    # channels-last: (N, H, W, C) begins, then ends; (left, right, top, bottom) = (0, 1, 0, 1)
    assert constants[constant.input[1]].tolist() == [0, 0, 0, 0, 0, 1, 1, 0]
    slices = [n for n in graph.node if n.op_type == "Slice"]
    assert len(slices) == 4  # circular: the wrapped rows and columns, before and after


def test_the_torch_code_pads_the_uint8_values():
    if not torch_backend.available():
        pytest.skip("oneDNN's quantized ops: x86 only")
    *_, program = build("mixed2d")
    code = torch_backend.TorchProgram(lower.fuse_residual_adds(program)).code
    for mode in ("'reflect'", "'replicate'", "'circular'", "'constant'"):
        assert "F.pad(" in code and mode in code
