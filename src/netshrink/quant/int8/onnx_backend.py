"""An integer program as an ONNX graph of quantized operators, run by onnxruntime.

Each op becomes the operator onnxruntime runs with one fused integer kernel:

    Quantize    QuantizeLinear                     Dense (int)    QLinearConv / QGemm
    Dequantize  DequantizeLinear                   Dense (float)  ConvInteger -> scale -> bias,
    Add         QLinearAdd (com.microsoft)                        MatMulIntegerToFloat
    AvgPool     QLinearGlobalAveragePool /         MaxPool, Concat, Reshape: on uint8 as they are
                QLinearAveragePool (com.microsoft) Requantize     DequantizeLinear -> QuantizeLinear

and an output clamp narrower than uint8's [0, 255] (a fused ReLU6, or 7-bit activations) is a
Clip on the uint8 result. onnxruntime's integer kernels add the bias as an int32 rounded at the
step s_in * w_scale, and scale in float32: each integer they write is the reference's or one
unit off it (reference.py).

Weights are int8 only where a pair of uint8 x int8 products cannot saturate int16 (x86 CPUs
without VNNI add pairs in int16 with `vpmaddubsw`); otherwise they are stored as uint8 w + 128
(zero point 128), which onnxruntime multiplies exactly (see quant/onnx_integer.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path
from netshrink.quant.int8.program import (
    Add,
    AvgPool,
    Clamped,
    Concat,
    Dense,
    Dequantize,
    FloatClamp,
    MaxPool,
    Program,
    QParams,
    Quantize,
    Requantize,
    Reshape,
)
from netshrink.quant.onnx_integer import weight_is_signed

OPSET = 17
MS_DOMAIN = "com.microsoft"


class _Graph:
    """Nodes and initializers being collected, with fresh names for constants."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def const(self, value, dtype, hint: str = "c") -> str:
        from onnx import numpy_helper

        self._count += 1
        name = f"{hint}_{self._count}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], domain: str = "",
             **attributes) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, outputs, domain=domain or None,
                                           name=f"{op_type}_{len(self.nodes)}", **attributes))

    def scale(self, qparams: QParams) -> tuple[str, str]:
        return (self.const(qparams.scale, np.float32, "scale"),
                self.const(qparams.zero_point, np.uint8, "zero_point"))


def _raw(op: Clamped) -> str:
    """Where an op writes before its output clamp: the output itself when uint8's own range."""
    return op.output if (op.lo, op.hi) == (0, 255) else f"{op.output}__raw"


def _clip(g: _Graph, op: Clamped) -> None:
    """The output clamp [lo, hi] as a Clip on uint8 (nothing when it is uint8's own range)."""
    if (op.lo, op.hi) != (0, 255):
        g.node("Clip", [_raw(op), g.const(op.lo, np.uint8, "lo"), g.const(op.hi, np.uint8, "hi")],
               [op.output])


def _weight(g: _Graph, op: Dense, activation_bits: int) -> tuple[str, str]:
    w = op.weight.detach().cpu()
    channels = w.shape[0]
    if weight_is_signed(activation_bits, op.weight_bits):
        return (g.const(w.numpy(), np.int8, "weight"),
                g.const(np.zeros(channels), np.int8, "weight_zero_point"))
    shifted = (w.to(torch.int16) + 128).to(torch.uint8).numpy()
    return (g.const(shifted, np.uint8, "weight"),
            g.const(np.full(channels, 128), np.uint8, "weight_zero_point"))


def _int32_bias(g: _Graph, op: Dense) -> str:
    if op.bias is None:
        return ""
    step = op.input_qparams.scale * op.weight_scale.double()
    bias = torch.round(op.bias.double() / step).clamp(-2**31, 2**31 - 1)
    return g.const(bias.to(torch.int32).numpy(), np.int32, "bias")


def _conv_attributes(op: Dense) -> dict:
    geometry = op.geometry
    kernel = list(op.weight.shape[2:])
    return {"kernel_shape": kernel, "strides": list(geometry.stride),
            "pads": list(geometry.padding) * 2, "dilations": list(geometry.dilation),
            "group": geometry.groups}


def _dense(g: _Graph, op: Dense, program: Program, rank: int) -> None:
    x = op.inputs[0]
    x_scale, x_zero = g.scale(op.input_qparams)
    activation_bits = max(1, op.input_qparams.qmax).bit_length()
    weight, weight_zero = _weight(g, op, activation_bits)
    weight_scale = g.const(op.weight_scale.float().numpy(), np.float32, "weight_scale")
    out_value = program.values[op.output]
    if op.residual:
        raise NetshrinkError("the onnxruntime backend runs residual adds as QLinearAdd; lower "
                             "the program without fuse_residual_adds")
    if not out_value.integer:
        _dense_float(g, op, x, x_scale, x_zero, weight, weight_zero, weight_scale, rank)
        return
    y_scale, y_zero = g.scale(out_value.qparams)
    raw = _raw(op)
    if op.conv:
        g.node("QLinearConv", [x, x_scale, x_zero, weight, weight_scale, weight_zero, y_scale,
                               y_zero, _int32_bias(g, op)], [raw], **_conv_attributes(op))
    else:
        source = x
        if rank != 2:  # QGemm multiplies matrices: [..., K] -> [M, K] and back
            source = f"{x}__2d"
            g.node("Reshape", [x, g.const([-1, op.weight.shape[1]], np.int64, "shape")],
                   [source])
        product = raw if rank == 2 else f"{raw}__2d"
        g.node("QGemm", [source, x_scale, x_zero, weight, weight_scale, weight_zero,
                         _int32_bias(g, op), y_scale, y_zero], [product], domain=MS_DOMAIN,
               transB=1)
        if rank != 2:
            shape = [0] * (rank - 1) + [op.weight.shape[0]]
            _restore_rows(g, x, product, raw, shape)
    _clip(g, op)


def _restore_rows(g: _Graph, x: str, product: str, out: str, shape: list[int]) -> None:
    """[M, N] back to x's leading dimensions with N last."""
    lead = f"{out}__lead"
    g.node("Shape", [x], [lead], end=-1)
    full = f"{out}__shape"
    g.node("Concat", [lead, g.const([shape[-1]], np.int64, "n")], [full], axis=0)
    g.node("Reshape", [product, full], [out])


def _dense_float(g, op: Dense, x, x_scale, x_zero, weight, weight_zero, weight_scale,
                 rank: int) -> None:
    if op.conv:
        acc = f"{op.output}__acc"
        g.node("ConvInteger", [x, weight, x_zero, weight_zero], [acc], **_conv_attributes(op))
        floats = f"{op.output}__acc_float"
        g.node("Cast", [acc], [floats], to=1)
        channel = [1, -1, 1, 1]
        out_scale = (torch.tensor(op.input_qparams.scale, dtype=torch.float32)
                     * op.weight_scale.float()).reshape(channel)
        scaled = f"{op.output}__scaled" if op.bias is not None else op.output
        g.node("Mul", [floats, g.const(out_scale.numpy(), np.float32, "out_scale")], [scaled])
        if op.bias is not None:
            g.node("Add", [scaled, g.const(op.bias.float().reshape(channel).numpy(),
                                           np.float32, "bias")], [op.output])
        return
    weight_kn = f"{weight}__kn"
    g.node("Transpose", [weight], [weight_kn], perm=[1, 0])
    bias = [] if op.bias is None else [g.const(op.bias.float().numpy(), np.float32, "bias")]
    g.node("MatMulIntegerToFloat", [x, weight_kn, x_scale, weight_scale, x_zero, weight_zero,
                                    *bias], [op.output], domain=MS_DOMAIN)


def _requantize(g: _Graph, op: Requantize, program: Program) -> None:
    source, target = program.qparams(op.inputs[0]), program.qparams(op.output)
    if (source.scale, source.zero_point) == (target.scale, target.zero_point):  # a clamp
        g.node("Clip", [op.inputs[0], g.const(op.lo, np.uint8, "lo"),
                        g.const(op.hi, np.uint8, "hi")], [op.output])
        return
    floats = f"{op.output}__float"
    g.node("DequantizeLinear", [op.inputs[0], *g.scale(source)], [floats])
    g.node("QuantizeLinear", [floats, *g.scale(target)], [_raw(op)])
    _clip(g, op)


def _avgpool(g: _Graph, op: AvgPool, program: Program) -> None:
    x_scale, x_zero = g.scale(program.qparams(op.inputs[0]))
    y_scale, y_zero = g.scale(program.qparams(op.output))
    raw = _raw(op)
    if op.kernel is None:
        g.node("QLinearGlobalAveragePool", [op.inputs[0], x_scale, x_zero, y_scale, y_zero],
               [raw], domain=MS_DOMAIN, channels_last=0)
    else:
        g.node("QLinearAveragePool", [op.inputs[0], x_scale, x_zero, y_scale, y_zero], [raw],
               domain=MS_DOMAIN, kernel_shape=list(op.kernel), strides=list(op.stride),
               pads=list(op.padding) * 2, ceil_mode=int(op.ceil_mode),
               count_include_pad=int(op.count_include_pad))
    _clip(g, op)


def _emit(g: _Graph, op, program: Program) -> None:
    values = program.values
    if isinstance(op, Quantize):
        raw = _raw(op)
        g.node("QuantizeLinear", [op.inputs[0], *g.scale(values[op.output].qparams)], [raw])
        _clip(g, op)
    elif isinstance(op, Dequantize):
        g.node("DequantizeLinear", [op.inputs[0], *g.scale(program.qparams(op.inputs[0]))],
               [op.output])
    elif isinstance(op, Requantize):
        _requantize(g, op, program)
    elif isinstance(op, Dense):
        _dense(g, op, program, len(values[op.inputs[0]].shape))
    elif isinstance(op, Add):
        a, b = op.inputs
        raw = _raw(op)
        g.node("QLinearAdd", [a, *g.scale(program.qparams(a)), b, *g.scale(program.qparams(b)),
                              *g.scale(program.qparams(op.output))], [raw], domain=MS_DOMAIN)
        _clip(g, op)
    elif isinstance(op, AvgPool):
        _avgpool(g, op, program)
    elif isinstance(op, MaxPool):
        g.node("MaxPool", op.inputs, [op.output], kernel_shape=list(op.kernel),
               strides=list(op.stride), pads=list(op.padding) * 2,
               dilations=list(op.dilation), ceil_mode=int(op.ceil_mode))
    elif isinstance(op, Concat):
        g.node("Concat", op.inputs, [op.output], axis=op.dim)
    elif isinstance(op, Reshape):
        g.node("Reshape", [op.inputs[0], g.const([0, *op.shape], np.int64, "shape")],
               [op.output])
    elif isinstance(op, FloatClamp):
        bounds = [g.const(v, np.float32, "bound") if v is not None else "" for v in
                  (op.lo, op.hi)]
        while bounds and not bounds[-1]:
            bounds.pop()
        g.node("Clip", [op.inputs[0], *bounds], [op.output])
    else:
        raise NetshrinkError(f"the onnxruntime backend has no form for op {op.kind}")


def to_onnx(program: Program):
    """The program as an onnx ModelProto (inputs and outputs float32, dimension 0 'batch')."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    for op in program.ops:
        _emit(g, op, program)

    def info(name: str):
        value = program.values[name]
        dtype = TensorProto.UINT8 if value.integer else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, dtype, ["batch", *value.shape[1:]])

    graph = helper.make_graph(g.nodes, "netshrink_int8", [info(n) for n in program.inputs],
                              [info(n) for n in program.outputs], g.initializers)
    model = helper.make_model(graph, producer_name="netshrink", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)])
    onnx.checker.check_model(model)
    return model


class OnnxProgram:
    """An integer program in an onnxruntime session; called with tensors, returns tensors."""

    runtime = "onnxruntime"

    def __init__(self, program: Program, threads: int | None = None):
        import onnxruntime as ort

        from netshrink.quant.onnx_runner import session_options

        self.program = program
        self.model = to_onnx(program)
        self.session = ort.InferenceSession(self.model.SerializeToString(),
                                            session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: torch.Tensor):
        feeds = {name: x.detach().cpu().float().contiguous().numpy()
                 for name, x in zip(self.input_names, inputs, strict=True)}
        outputs = [torch.from_numpy(o) for o in self.session.run(self.output_names, feeds)]
        return outputs[0] if self.program.single_output else tuple(outputs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ONNX graph (int8 weights) to `path`."""
        path = Path(path)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(self.model.SerializeToString())
        return path


def run_values(program: Program, *inputs: torch.Tensor, threads: int | None = None) -> dict:
    """Every value of the program as onnxruntime computes it (for per-op checks)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from netshrink.quant.onnx_runner import session_options

    model = to_onnx(program)
    known = {*program.inputs, *program.outputs}
    for name, value in program.values.items():
        if name not in known:
            dtype = TensorProto.UINT8 if value.integer else TensorProto.FLOAT
            model.graph.output.append(helper.make_tensor_value_info(name, dtype, None))
    session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    feeds = {name: x.float().numpy() for name, x in zip(program.inputs, inputs, strict=True)}
    names = [o.name for o in session.get_outputs()]
    env = {n: torch.from_numpy(v) for n, v in zip(names, session.run(names, feeds),
                                                  strict=True)}
    env.update(dict(zip(program.inputs, (x.float() for x in inputs), strict=True)))
    return env
