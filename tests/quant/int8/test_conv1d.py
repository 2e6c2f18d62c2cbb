"""Conv1d in the integer program: lowered as the 2-D convolution over an (N, C, 1, L) view,
checked op by op against the reference arithmetic on both runtimes, and refusals by name."""

import functools
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Static, compile_int8
from netshrink.quant.int8 import conv1d, lower, reference, torch_backend
from netshrink.quant.int8.program import Add, Dense, Program, QParams, Reshape, Value

from .conftest import (
    assert_matches_reference,
    assert_onnxruntime_ops_match,
    assert_torch_ops_match,
    lowered_case,
)


class AudioNet(nn.Module):
    """Strided conv, BatchNorm1d, a depthwise conv, global average pool, flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1, groups=8, bias=False)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = F.relu(self.c2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class DilatedNet(nn.Module):
    """Dilated convs with max and average pooling (module and function), ReLU6, a flatten."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 6, 3, dilation=2, padding=2)
        self.pool = nn.MaxPool1d(2)
        self.c2 = nn.Conv1d(6, 8, 3, dilation=3, padding=3, groups=2)
        self.c3 = nn.Conv1d(8, 8, 1)
        self.fc = nn.Linear(8 * 4, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.c1(x)))
        x = F.max_pool1d(F.relu6(self.c2(x)), 2)
        x = F.avg_pool1d(F.relu(self.c3(x)), 2)
        return self.fc(x.flatten(1))


class Segmenter(nn.Module):
    """Conv1d layers only, the last one the model's float output (one score per step)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 6, 5, padding="same")
        self.c2 = nn.Conv1d(6, 3, 3, padding=1)

    def forward(self, x):
        return self.c2(F.hardtanh(self.c1(x), -1.0, 1.0))


class ResidualTCN(nn.Module):
    """A temporal block: a dilated conv pair added to its input, a branch joined by cat, and
    a conv flattened straight into the Linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(3, 6, 3, padding=1)
        self.a = nn.Conv1d(6, 6, 3, padding=2, dilation=2)
        self.b = nn.Conv1d(6, 6, 3, padding=2, dilation=2)
        self.side = nn.Conv1d(6, 2, 1)
        self.head = nn.Conv1d(8, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 8, 3)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.b(F.relu(self.a(x))) + x)
        x = torch.cat([x, self.side(x)], dim=1)
        return self.fc(F.relu(self.head(x)).flatten(1))


CASES = {
    "audio": lambda: (AudioNet(), torch.randn(64, 4, 32)),
    "dilated": lambda: (DilatedNet(), torch.randn(64, 3, 32)),
    "segmenter": lambda: (Segmenter(), torch.randn(64, 2, 20)),
    "residual": lambda: (ResidualTCN(), torch.randn(64, 3, 16)),
}


pytestmark = pytest.mark.usefixtures("seeded")


@functools.cache
def build(name: str):
    """(quantized model, calibration data, program) of one case, built once."""
    return lowered_case(CASES[name])[1:]


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    return build(request.param)


def test_batchnorm1d_is_folded_and_relus_fused_with_no_views_left_between_layers():
    model, _, program = build("audio")
    assert isinstance(model.bn, nn.Identity)  # quantize_ folded it into c1
    kinds = [op.kind for op in program.ops]
    assert kinds == ["Quantize", "Reshape", "Dense", "Dense", "AvgPool", "Reshape", "Dense"]
    c1, c2 = (op for op in program.ops if isinstance(op, Dense) and op.conv)
    assert c1.weight.shape == (8, 4, 1, 5) and c2.weight.shape == (8, 1, 1, 3)
    assert (c1.geometry.stride, c1.geometry.padding, c1.geometry.dilation) == \
        ((1, 2), (0, 2), (1, 1))
    assert c2.geometry.groups == 8
    assert program.values[c1.output].shape == (2, 8, 1, 16)
    for op in (c1, c2):  # the ReLUs are the layers' output bounds
        assert op.lo == program.qparams(op.output).zero_point


def test_a_chain_of_conv1d_layers_matches_the_quantized_model():
    model, data, _ = build("segmenter")
    program = lower.lower(model, data[:2])  # no data: every stored scale is a layer's own
    assert not program.values[program.outputs[0]].integer  # the last Conv1d writes floats
    x = torch.randn(16, *data.shape[1:])
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(reference.run(program, x), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["audio", "dilated", "residual"])
def test_models_with_adds_and_average_pools_are_close_to_the_quantized_model(name):
    model, data, program = build(name)  # adds and pools: calibrated by the program
    x = data[:16]
    with torch.no_grad():
        expected = model(x)
    assert (reference.run(program, x) - expected).abs().max() < 0.05 * expected.abs().max()


@pytest.mark.parametrize("kernels", ["integer", "float", "mixed"])
def test_every_op_on_onnxruntime_matches_the_reference_arithmetic(case, kernels):
    _, data, program = case
    assert_onnxruntime_ops_match(program, data.shape[1:], kernels)


@pytest.mark.skipif(not torch_backend.available(), reason="oneDNN's quantized ops: x86 only")
@pytest.mark.parametrize("kernels", torch_backend.KERNELS)
def test_every_op_on_torch_matches_the_reference_arithmetic(case, kernels):
    _, data, program = case
    assert_torch_ops_match(program, data.shape[1:], kernels)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "auto"])
def test_compile_int8_runs_conv1d_models_on_each_runtime(case, runtime):
    pytest.importorskip("onnxruntime")
    if runtime == "torch" and not torch_backend.available():
        pytest.skip("oneDNN's quantized ops: x86 only")
    model, data, _ = case
    compiled = compile_int8(model, data[:8], data=data, runtime=runtime, repeats=3)
    assert runtime == "auto" or compiled.runtime == runtime
    x = data[8:16]
    expected = reference.run(compiled.program, x)
    got = compiled(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 0.02 * expected.abs().max()
    with torch.no_grad():
        module = model(x)
    assert (got - module).abs().max() < 0.05 * module.abs().max()


def test_the_onnx_graph_moves_no_values_between_conv1d_layers():
    pytest.importorskip("onnxruntime")
    from netshrink.quant.int8 import onnx_backend

    _, _, program = build("audio")
    graph = onnx_backend.to_onnx(program, "integer").graph
    ops = [n.op_type for n in graph.node]
    weights = {t.name for t in graph.initializer}
    moves = [n for n in graph.node if n.op_type == "Transpose" and n.input[0] not in weights]
    # one Transpose, the input's to channels-last (as in a 2-D network); none after
    assert ops.count("QLinearConv") == 2 and len(moves) == 1
    assert ops.count("Reshape") == 2  # the input's view, and the flatten before the Linear


def test_views_cancel_and_a_pure_clamp_moves_before_a_reshape():
    q = QParams(0.1, 3)
    values = {"x": Value("x", (2, 4, 8), q), "a": Value("a", (2, 4, 1, 8), q),
              "b": Value("b", (2, 4, 8), q), "c": Value("c", (2, 4, 1, 8), q),
              "y": Value("y", (2, 32), q)}
    ops = [Reshape(["x"], "a", shape=(4, 1, 8)), Reshape(["a"], "b", shape=(4, 8)),
           Reshape(["b"], "c", shape=(4, 1, 8)), Reshape(["c"], "y", shape=(32,))]
    merged = conv1d.merge_reshapes(Program(values, ops, ["x"], ["y"]))
    assert [(op.inputs, op.output, op.shape) for op in merged.ops] == [(["x"], "y", (32,))]
    assert set(merged.values) == {"x", "y"}
    # a view back to a value others read too: its readers read that value instead
    values = {"x": Value("x", (2, 4, 1, 8), q), "b": Value("b", (2, 4, 8), q),
              "c": Value("c", (2, 4, 1, 8), q), "s": Value("s", (2, 4, 8), q),
              "y": Value("y", (2, 32), q)}
    ops = [Reshape(["x"], "b", shape=(4, 8)), Reshape(["b"], "c", shape=(4, 1, 8)),
           Add(["b", "b"], "s"), Reshape(["c"], "y", shape=(32,))]
    merged = conv1d.merge_reshapes(Program(values, ops, ["x"], ["s", "y"], False))
    assert [(op.kind, op.inputs, op.output) for op in merged.ops] == [
        ("Reshape", ["x"], "b"), ("Add", ["b", "b"], "s"), ("Reshape", ["x"], "y")]


def _quantized(model, data):
    netshrink.quantize_(model.eval(), Static(), data=data)
    return model


def test_layers_and_pools_without_an_integer_form_are_refused_by_name():
    data = torch.randn(16, 2, 4, 4, 4)
    conv3d = _quantized(nn.Sequential(nn.Conv3d(2, 3, 3), nn.Flatten()), data)
    with pytest.raises(NetshrinkError, match=r"module '0' \(QuantConv3d\): no integer form"):
        lower.lower(conv3d, data[:2])
    data = torch.randn(16, 3, 10)
    uneven = _quantized(nn.Sequential(nn.Conv1d(3, 4, 3), nn.AdaptiveAvgPool1d(3),
                                      nn.Flatten(), nn.Linear(12, 2)), data)
    with pytest.raises(NetshrinkError, match=r"'1' \(AdaptiveAvgPool1d\).* from 8 to 3"):
        lower.lower(uneven, data[:2], data)
    indices = _quantized(nn.Sequential(nn.Conv1d(3, 4, 3), nn.MaxPool1d(2, return_indices=True)),
                         data)
    with pytest.raises(NetshrinkError, match=r"'1' \(MaxPool1d\): .*return_indices"):
        lower.lower(indices, data[:2])
    skipped = nn.Sequential(nn.Conv1d(3, 4, 3), nn.Flatten(), nn.Linear(32, 2)).eval()
    netshrink.quantize_(skipped, Static(skip=("0",)), data=data)
    with pytest.raises(NetshrinkError, match=r"'0' \(Conv1d\).*left in float"):
        lower.lower(skipped, data[:2])


def test_a_float_output_conv_on_8_bit_inputs_runs_with_one_weight_zero_point():
    """onnxruntime's ConvInteger (the float output layer) takes one weight zero point: 128 for
    the uint8 weights of 8-bit inputs, here forced on the segmenter's last Conv1d."""
    pytest.importorskip("onnxruntime")
    import onnx

    from netshrink.quant.int8 import onnx_backend

    _, data, program = build("segmenter")
    last = [op for op in program.ops if isinstance(op, Dense)][-1]
    wide = replace(last.input_qparams, qmax=255)
    program = replace(program, ops=[replace(op, input_qparams=wide) if op is last else op
                                    for op in program.ops])
    graph = onnx_backend.to_onnx(program, "integer").graph
    conv = next(n for n in graph.node if n.op_type == "ConvInteger")
    zero_point = next(t for t in graph.initializer if t.name == conv.input[3])
    assert zero_point.data_type == onnx.TensorProto.UINT8 and list(zero_point.dims) == [1]
    x = torch.randn(6, *data.shape[1:])
    assert_matches_reference(program, onnx_backend.run_values(program, x), (x,))
