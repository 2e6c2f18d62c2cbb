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
from typing import TYPE_CHECKING

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
    Pad,
    Program,
    QParams,
    Quantize,
    Requantize,
    Reshape,
)
from netshrink.quant.onnx_integer import weight_is_signed

if TYPE_CHECKING:
    import onnx

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


def _weight(g: _Graph, weight: torch.Tensor, op: Dense, activation_bits: int,
            per_channel: bool = True) -> tuple[str, str]:
    """(weight, its zero point): one per output channel, or one for all (ConvInteger takes
    no other; every channel's is the same, 0 or 128)."""
    w = weight.detach().cpu()
    channels = w.shape[0] if per_channel else 1
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


def _permuted_columns(weight: torch.Tensor, chw: tuple[int, ...]) -> torch.Tensor:
    """A Linear's weight with its columns reordered from (c, h, w) to (h, w, c)."""
    c, h, w = chw
    return weight.reshape(weight.shape[0], c, h, w).permute(0, 2, 3, 1).reshape(
        weight.shape[0], -1)


TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
# How layers run: onnxruntime's integer kernels; float kernels on the dequantized weights (the
# same integers: every product of the integer sum is exact in float32 below 2**24, and the
# scales are applied in float32, so each output integer is the reference's or one unit off);
# or float kernels only for layers with small reductions (a first convolution on 1 or 3
# channels, depthwise ones), which onnxruntime's integer convolution runs slowly (im2col).
KERNELS = ("integer", "float", "mixed")
SMALL_REDUCTION = 32


def uses_float_kernel(op: Dense, kernels: str) -> bool:
    """Whether `kernels` runs this layer with float kernels."""
    if kernels == "float":
        return True
    return kernels == "mixed" and op.weight[0].numel() <= SMALL_REDUCTION


class _Builder:
    """Emits the graph. 4-D integer values are kept channels-last ([N, H, W, C], the layout of
    onnxruntime's fast uint8 kernels) from the input's quantization to the output's."""

    def __init__(self, program: Program, kernels: str = "integer", every_value: bool = False):
        if kernels not in KERNELS:
            raise NetshrinkError(f"kernels={kernels!r} is not one of {', '.join(KERNELS)}")
        self.program = program
        self.kernels = kernels
        self.every_value = every_value
        self.skip: set[int] = set()  # ops already emitted with the op before them
        self.g = _Graph()
        self.nhwc: set[str] = set()  # values stored [N, H, W, C] in the graph
        self.hwc_flat: set[str] = set()  # flattened from channels-last: (h, w, c) order
        self._moved: dict[tuple[str, bool], str] = {}

    def rank(self, name: str) -> int:
        return len(self.program.values[name].shape)

    def layout(self, name: str, nhwc: bool) -> str:
        """`name` in the layout asked for (a Transpose, made once, when it is not)."""
        if (name in self.nhwc) == nhwc or self.rank(name) != 4:
            return name
        key = (name, nhwc)
        if key not in self._moved:
            out = f"{name}__{'nhwc' if nhwc else 'nchw'}"
            _, c, h, w = self.program.values[name].shape
            if c == 1 or h * w == 1:  # the same order in memory: a free reshape
                shape = [0, h, w, c] if nhwc else [0, c, h, w]
                self.g.node("Reshape", [name, self.g.const(shape, np.int64, "shape")], [out])
            else:
                self.g.node("Transpose", [name], [out], perm=TO_NHWC if nhwc else TO_NCHW)
            self._moved[key] = out
        return self._moved[key]

    def clip(self, op: Clamped) -> None:
        """The output clamp [lo, hi] as a Clip on uint8 (nothing when it is uint8's range)."""
        if (op.lo, op.hi) != (0, 255):
            self.g.node("Clip", [_raw(op), self.g.const(op.lo, np.uint8, "lo"),
                                 self.g.const(op.hi, np.uint8, "hi")], [op.output])

    def elementwise(self, op, inputs: list[str]) -> list[str]:
        """Inputs of an elementwise op in one layout (channels-last if any 4-D one is)."""
        nhwc = any(i in self.nhwc for i in inputs)
        if nhwc:
            self.nhwc.add(op.output)
        return [self.layout(i, nhwc) for i in inputs]

    # -- ops ------------------------------------------------------------------------------
    def quantize(self, op: Quantize) -> None:
        g = self.g  # an NCHW input stays NCHW: its readers move the uint8 result if they must
        (x,) = self.elementwise(op, op.inputs)
        g.node("QuantizeLinear", [x, *g.scale(self.program.qparams(op.output))], [_raw(op)])
        self.clip(op)

    def dequantize(self, op: Dequantize) -> None:
        x = self.layout(op.inputs[0], False)  # outputs are NCHW; uint8 moves are cheap
        self.g.node("DequantizeLinear", [x, *self.g.scale(self.program.qparams(op.inputs[0]))],
                    [op.output])

    def requantize(self, op: Requantize) -> None:
        g, program = self.g, self.program
        (x,) = self.elementwise(op, op.inputs)
        source, target = program.qparams(op.inputs[0]), program.qparams(op.output)
        if (source.scale, source.zero_point) == (target.scale, target.zero_point):  # a clamp
            g.node("Clip", [x, g.const(op.lo, np.uint8, "lo"), g.const(op.hi, np.uint8, "hi")],
                   [op.output])
            return
        floats = f"{op.output}__float"
        g.node("DequantizeLinear", [x, *g.scale(source)], [floats])
        g.node("QuantizeLinear", [floats, *g.scale(target)], [_raw(op)])
        self.clip(op)

    def dense(self, op: Dense) -> None:
        g, program = self.g, self.program
        if op.residual:
            raise NetshrinkError("the onnxruntime backend runs residual adds as QLinearAdd; "
                                 "lower the program without fuse_residual_adds")
        x = op.inputs[0]
        weight = op.weight
        if not op.conv and x in self.hwc_flat:
            source = program.producer(x).inputs[0]
            weight = _permuted_columns(weight, program.values[source].shape[1:])
        if uses_float_kernel(op, self.kernels):
            self.dense_on_float_kernels(op, weight)
            return
        x_scale, x_zero = g.scale(op.input_qparams)
        activation_bits = max(1, op.input_qparams.qmax).bit_length()
        w, w_zero = _weight(g, weight.contiguous(), op, activation_bits,
                            per_channel=not (op.conv and not program.values[op.output].integer))
        w_scale = g.const(op.weight_scale.float().numpy(), np.float32, "weight_scale")
        out = program.values[op.output]
        if not out.integer:
            self.dense_float(op, x, x_scale, x_zero, w, w_zero, w_scale)
            return
        y_scale, y_zero = g.scale(out.qparams)
        if op.conv:
            g.node("QLinearConv", [self.layout(x, True), x_scale, x_zero, w, w_scale, w_zero,
                                   y_scale, y_zero, _int32_bias(g, op)], [_raw(op)],
                   domain=MS_DOMAIN, channels_last=1, **_conv_attributes(op))
            self.nhwc.add(op.output)
        else:
            self.qgemm(op, x, [x_scale, x_zero, w, w_scale, w_zero, _int32_bias(g, op), y_scale,
                               y_zero])
        self.clip(op)

    def dense_on_float_kernels(self, op: Dense, weight: torch.Tensor) -> None:
        """DequantizeLinear -> Conv / Gemm on the dequantized weight (+ its clamp, which
        onnxruntime fuses into the product) -> QuantizeLinear."""
        g, program = self.g, self.program
        x = self.layout(op.inputs[0], False) if op.conv else op.inputs[0]
        real = f"{op.output}__real_input"
        g.node("DequantizeLinear", [x, *g.scale(op.input_qparams)], [real])
        view = (-1, *([1] * (weight.dim() - 1)))
        w = g.const((weight.float() * op.weight_scale.float().view(view)).numpy(), np.float32,
                    "weight_float")
        bias = [] if op.bias is None else [g.const(op.bias.float().numpy(), np.float32, "bias")]
        out = program.values[op.output]
        product = op.output if not out.integer else f"{op.output}__product"
        if op.conv:
            g.node("Conv", [real, w, *bias], [product], **_conv_attributes(op))
        elif self.rank(x) == 2:
            g.node("Gemm", [real, w, *bias], [product], transB=1)
        else:
            w_kn = g.const((weight.float() * op.weight_scale.float().view(view)).t().numpy(),
                           np.float32, "weight_float")
            summed = product if not bias else f"{op.output}__matmul"
            g.node("MatMul", [real, w_kn], [summed])
            if bias:
                g.node("Add", [summed, *bias], [product])
        if not out.integer:
            return
        q = out.qparams
        clamped = f"{op.output}__clamped"
        if (op.lo, op.hi) == (0, 255):
            clamped = product
        elif (op.lo, op.hi) == (q.zero_point, 255):
            g.node("Relu", [product], [clamped])
        else:
            g.node("Clip", [product, g.const((op.lo - q.zero_point) * q.scale, np.float32, "lo"),
                            g.const((op.hi - q.zero_point) * q.scale, np.float32, "hi")],
                   [clamped])
        pool = self._pool_after(op)
        if pool is not None:  # max-pool the floats, then quantize a quarter of the values:
            pooled = f"{pool.output}__float"  # the same integers (quantizing is monotonic)
            self.maxpool(pool, clamped, pooled)
            self.skip.add(id(pool))
            g.node("QuantizeLinear", [pooled, *g.scale(q)], [pool.output])
            if not self.every_value:
                return
        g.node("QuantizeLinear", [clamped, *g.scale(q)], [op.output])

    def _pool_after(self, op: Dense) -> MaxPool | None:
        """The max pool that alone reads this layer's output, if any."""
        readers = self.program.consumers(op.output)
        if len(readers) == 1 and isinstance(readers[0], MaxPool) and \
                op.output not in self.program.outputs:
            return readers[0]
        return None

    def qgemm(self, op: Dense, x: str, args: list[str]) -> None:
        """QGemm multiplies matrices: [..., K] is reshaped to [M, K] and back."""
        g, rank = self.g, self.rank(x)
        raw = _raw(op)
        if rank == 2:
            g.node("QGemm", [x, *args], [raw], domain=MS_DOMAIN, transB=1)
            return
        rows, product = f"{x}__2d", f"{raw}__2d"
        g.node("Reshape", [x, g.const([-1, op.weight.shape[1]], np.int64, "shape")], [rows])
        g.node("QGemm", [rows, *args], [product], domain=MS_DOMAIN, transB=1)
        lead, full = f"{raw}__lead", f"{raw}__shape"
        g.node("Shape", [x], [lead], end=-1)
        g.node("Concat", [lead, g.const([op.weight.shape[0]], np.int64, "n")], [full], axis=0)
        g.node("Reshape", [product, full], [raw])

    def dense_float(self, op: Dense, x, x_scale, x_zero, w, w_zero, w_scale) -> None:
        """The output layer: float32(acc) * float32(s_in * w_scale) + bias."""
        g = self.g
        if op.conv:
            acc, floats = f"{op.output}__acc", f"{op.output}__acc_float"
            g.node("ConvInteger", [self.layout(x, False), w, x_zero, w_zero], [acc],
                   **_conv_attributes(op))
            g.node("Cast", [acc], [floats], to=1)
            channel = [1, -1, 1, 1]
            out_scale = (torch.tensor(op.input_qparams.scale, dtype=torch.float32)
                         * op.weight_scale.float()).reshape(channel)
            scaled = f"{op.output}__scaled" if op.bias is not None else op.output
            g.node("Mul", [floats, g.const(out_scale.numpy(), np.float32, "out_scale")],
                   [scaled])
            if op.bias is not None:
                g.node("Add", [scaled, g.const(op.bias.float().reshape(channel).numpy(),
                                               np.float32, "bias")], [op.output])
            return
        w_kn = f"{w}__kn"
        g.node("Transpose", [w], [w_kn], perm=[1, 0])
        bias = [] if op.bias is None else [g.const(op.bias.float().numpy(), np.float32, "bias")]
        g.node("MatMulIntegerToFloat", [x, w_kn, x_scale, w_scale, x_zero, w_zero, *bias],
               [op.output], domain=MS_DOMAIN)

    def add(self, op: Add) -> None:
        g, program = self.g, self.program
        a, b = self.elementwise(op, op.inputs)
        g.node("QLinearAdd", [a, *g.scale(program.qparams(op.inputs[0])), b,
                              *g.scale(program.qparams(op.inputs[1])),
                              *g.scale(program.qparams(op.output))], [_raw(op)],
               domain=MS_DOMAIN)
        self.clip(op)

    def avgpool(self, op: AvgPool) -> None:
        g, program = self.g, self.program
        x = op.inputs[0]
        nhwc = int(x in self.nhwc)  # pools read either layout
        scales = [*g.scale(program.qparams(op.inputs[0])), *g.scale(program.qparams(op.output))]
        if op.kernel is None:
            g.node("QLinearGlobalAveragePool", [x, *scales], [_raw(op)], domain=MS_DOMAIN,
                   channels_last=nhwc)
        else:
            g.node("QLinearAveragePool", [x, *scales], [_raw(op)], domain=MS_DOMAIN,
                   channels_last=nhwc, kernel_shape=list(op.kernel), strides=list(op.stride),
                   pads=list(op.padding) * 2, ceil_mode=int(op.ceil_mode),
                   count_include_pad=int(op.count_include_pad))
        if nhwc:
            self.nhwc.add(op.output)
        self.clip(op)

    def maxpool(self, op: MaxPool, source: str | None = None, out: str | None = None) -> None:
        attributes = {"kernel_shape": list(op.kernel), "strides": list(op.stride),
                      "pads": list(op.padding) * 2, "dilations": list(op.dilation),
                      "ceil_mode": int(op.ceil_mode)}
        if source is not None:  # floats, NCHW (from a layer on float kernels)
            self.g.node("MaxPool", [source], [out], **attributes)
            return
        if op.inputs[0] in self.nhwc:
            self.g.node("NhwcMaxPool", op.inputs, [op.output], domain=MS_DOMAIN, **attributes)
            self.nhwc.add(op.output)
        else:
            self.g.node("MaxPool", [self.layout(op.inputs[0], False)], [op.output],
                        **attributes)

    def concat(self, op: Concat) -> None:
        inputs = self.elementwise(op, op.inputs)
        axis = op.dim
        if op.output in self.nhwc:
            axis = {1: 3, 2: 1, 3: 2}[op.dim]
        self.g.node("Concat", inputs, [op.output], axis=axis)

    def pad(self, op: Pad) -> None:
        """Pad on uint8 in the value's own layout: constant (the zero point), reflect, edge
        (replicate); circular as Slice + Concat, since opset 17's Pad has no "wrap" (opset 19
        added it; onnxruntime runs it on uint8, but the saved graph would not be opset 17)."""
        g, x = self.g, op.inputs[0]
        nhwc = x in self.nhwc
        if nhwc:
            self.nhwc.add(op.output)
        left, right, top, bottom = op.pads
        rows, cols = (1, 2) if nhwc else (2, 3)
        if op.mode == "circular":
            self.wrap(x, op.output, [(cols, left, right), (rows, top, bottom)])
            return
        begins, ends = [0] * 4, [0] * 4
        begins[rows], ends[rows], begins[cols], ends[cols] = top, bottom, left, right
        inputs = [x, g.const(begins + ends, np.int64, "pads")]
        if op.mode == "constant":
            zero_point = self.program.qparams(x).zero_point
            inputs.append(g.const(zero_point, np.uint8, "pad_value"))
        g.node("Pad", inputs, [op.output], mode={"constant": "constant", "reflect": "reflect",
                                                 "replicate": "edge"}[op.mode])

    def wrap(self, x: str, out: str, axes: list[tuple[int, int, int]]) -> None:
        """Circular padding: per axis, the last `before` and first `after` slices joined
        around the value (an axis with nothing to pad is skipped)."""
        g = self.g
        axes = [a for a in axes if a[1] or a[2]]
        current = x
        for index, (axis, before, after) in enumerate(axes):
            target = out if index == len(axes) - 1 else f"{out}__wrap{axis}"
            parts = []
            if before:
                parts.append(self.slice(current, -before, np.iinfo(np.int64).max, axis,
                                        f"{target}__before"))
            parts.append(current)
            if after:
                parts.append(self.slice(current, 0, after, axis, f"{target}__after"))
            g.node("Concat", parts, [target], axis=axis)
            current = target

    def slice(self, x: str, start: int, end: int, axis: int, out: str) -> str:
        g = self.g
        g.node("Slice", [x, g.const([start], np.int64, "starts"),
                         g.const([end], np.int64, "ends"), g.const([axis], np.int64, "axes")],
               [out])
        return out

    def reshape(self, op: Reshape) -> None:
        program, g = self.program, self.g
        x = op.inputs[0]
        shape = g.const([0, *op.shape], np.int64, "shape")
        source = program.values[x].shape
        if x in self.nhwc:
            flat = len(op.shape) == 1
            same_order = source[1] == 1 or source[2] * source[3] == 1
            readers = program.consumers(op.output)
            to_linear = flat and readers and all(
                isinstance(r, Dense) and not r.conv and r.inputs[0] == op.output
                for r in readers)
            if to_linear and not same_order:
                self.hwc_flat.add(op.output)  # the Linear's columns are permuted instead
            elif not (flat and same_order):
                x = self.layout(x, False)
        g.node("Reshape", [x, shape], [op.output])

    def float_clamp(self, op: FloatClamp) -> None:
        (x,) = self.elementwise(op, op.inputs)
        bounds = [self.g.const(v, np.float32, "bound") if v is not None else ""
                  for v in (op.lo, op.hi)]
        while bounds and not bounds[-1]:
            bounds.pop()
        self.g.node("Clip", [x, *bounds], [op.output])

    def emit(self, op) -> None:
        handlers = {Quantize: self.quantize, Dequantize: self.dequantize,
                    Requantize: self.requantize, Dense: self.dense, Add: self.add,
                    AvgPool: self.avgpool, MaxPool: self.maxpool, Concat: self.concat,
                    Reshape: self.reshape, Pad: self.pad, FloatClamp: self.float_clamp}
        handler = handlers.get(type(op))
        if handler is None:
            raise NetshrinkError(f"the onnxruntime backend has no form for op {op.kind}")
        if id(op) not in self.skip:
            handler(op)


def _build(program: Program, every_value: bool = False, kernels: str = "integer") -> tuple:
    """(ModelProto, the builder) of the program; every_value also makes every value an
    output, as the graph stores it."""
    import onnx
    from onnx import TensorProto, helper

    builder = _Builder(program, kernels, every_value)
    for op in program.ops:
        builder.emit(op)
    g = builder.g
    outputs = list(program.outputs)  # floats, written NCHW (Dequantize moves first)
    assert not builder.nhwc & set(outputs)

    def info(name: str, shape=True):
        value = program.values[name]
        dtype = TensorProto.UINT8 if value.integer else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, dtype, ["batch", *value.shape[1:]]
                                             if shape else None)

    extra = [info(n, shape=False) for n in program.values
             if every_value and n not in program.inputs and n not in program.outputs]
    graph = helper.make_graph(g.nodes, "netshrink_int8", [info(n) for n in program.inputs],
                              [info(n) for n in outputs] + extra, g.initializers)
    model = helper.make_model(graph, producer_name="netshrink", opset_imports=[
        helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)])
    if not every_value:  # (the extra outputs are stored as the graph lays them out)
        onnx.checker.check_model(model)
    return model, builder


def to_onnx(program: Program, kernels: str = "integer") -> onnx.ModelProto:
    """The program as an onnx ModelProto (inputs and outputs float32, dimension 0 'batch')."""
    return _build(program, kernels=kernels)[0]


class OnnxProgram:
    """An integer program in an onnxruntime session; called with tensors, returns tensors."""

    runtime = "onnxruntime"

    def __init__(self, program: Program, threads: int | None = None, kernels: str = "integer"):
        import onnxruntime as ort


        self.program = program
        self.kernels = kernels
        self.model = to_onnx(program, kernels)
        self.session = ort.InferenceSession(self.model.SerializeToString(), _options(threads),
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: torch.Tensor):
        if len(inputs) != len(self.input_names):
            raise NetshrinkError(f"the model takes {len(self.input_names)} inputs, "
                                 f"{len(inputs)} given")
        feeds = {name: _numpy(x) for name, x in zip(self.input_names, inputs, strict=True)}
        outputs = [torch.from_numpy(o) for o in self.session.run(self.output_names, feeds)]
        return outputs[0] if self.program.single_output else tuple(outputs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ONNX graph (int8 weights) to `path`."""
        path = Path(path)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(self.model.SerializeToString())
        return path


def _options(threads: int | None):
    """onnxruntime's session options, with its QDQ rewrites off: the graph already is the
    integer graph, and one rewrite would requantize the float kernels' weights per tensor
    (DequantizeLinear -> Gemm with a float weight looks to it like a QDQ model to finish)."""
    from netshrink.quant.onnx_runner import session_options

    options = session_options(threads)
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return options


def _numpy(x: torch.Tensor) -> np.ndarray:
    """A float32 C-contiguous array of `x`: shared memory when it already is one (batch 1
    latency: the common case costs one call)."""
    try:
        array = x.numpy()
    except (RuntimeError, TypeError, AttributeError):  # needs grad, not on the CPU, not a tensor
        return torch.as_tensor(x).detach().cpu().float().contiguous().numpy()
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        return np.ascontiguousarray(array, dtype=np.float32)
    return array


def run_values(program: Program, *inputs: torch.Tensor, threads: int | None = None,
               kernels: str = "integer") -> dict:
    """Every value of the program as onnxruntime computes it, in the program's own layout
    (for per-op checks)."""
    import onnxruntime as ort


    model, builder = _build(program, every_value=True, kernels=kernels)
    session = ort.InferenceSession(model.SerializeToString(), _options(threads),
                                   providers=["CPUExecutionProvider"])
    feeds = {name: x.float().numpy() for name, x in zip(program.inputs, inputs, strict=True)}
    names = [o.name for o in session.get_outputs()]
    env = {n: torch.from_numpy(v) for n, v in zip(names, session.run(names, feeds),
                                                  strict=True)}
    for name in builder.nhwc:
        if name not in program.outputs:
            env[name] = env[name].permute(*TO_NCHW).contiguous()
    for name in builder.hwc_flat:
        source = program.producer(name).inputs[0]
        env[name] = env[source].reshape(env[source].shape[0], -1)
    env.update(dict(zip(program.inputs, (x.float() for x in inputs), strict=True)))
    return env
