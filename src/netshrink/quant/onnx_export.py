"""ONNX export of an integer model in the QDQ format, which onnxruntime runs.

Each integer layer becomes
    Clip -> QuantizeLinear -> DequantizeLinear   (the input, with its calibrated scale)
    DequantizeLinear(int8 weight initializer, per-channel scales, axis 0)
    Gemm / MatMul / Conv (+ bias)
so the file holds int8 weights (about 4x smaller than float32) and onnxruntime can fuse the
pattern into its integer kernels. The Clip keeps inputs inside the scheme's range when it is
narrower than uint8's (7-bit activations on CPUs whose int8 instructions saturate).
Only static input scales have a QDQ form: a dynamically quantized model is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path
from netshrink.quant.modules import (
    QuantConv2d,
    QuantLinear,
    to_kernel_zero_point,
    unsigned_range,
)

OPSET = 17


class _QuantDequant(torch.autograd.Function):
    """Input fake quantization that exports as Clip -> QuantizeLinear -> DequantizeLinear."""

    @staticmethod
    def forward(ctx, x, scale: float, zero_point: int, qmin: int, qmax: int):
        # (q - z) * s with q = clamp(round(x / s) + z): no "+ 0" for the tracer to fold away
        return torch.clamp(torch.round(x / scale), qmin - zero_point, qmax - zero_point) * scale

    @staticmethod
    def symbolic(g, x, scale: float, zero_point: int, qmin: int, qmax: int):
        def const(value, dtype):
            return g.op("Constant", value_t=torch.tensor(value, dtype=dtype))

        lo = const((qmin - zero_point) * scale, torch.float32)
        hi = const((qmax - zero_point) * scale, torch.float32)
        s, z = const(scale, torch.float32), const(zero_point, torch.uint8)
        clipped = g.op("Clip", x, lo, hi)
        return g.op("DequantizeLinear", g.op("QuantizeLinear", clipped, s, z), s, z)


class _DequantizeWeight(torch.autograd.Function):
    """int8 weight * per-channel scale; exports as DequantizeLinear(axis=0)."""

    @staticmethod
    def forward(ctx, weight, scale):
        return weight.float() * scale.view(-1, *([1] * (weight.dim() - 1)))

    @staticmethod
    def symbolic(g, weight, scale):
        channels = scale.type().sizes()[0]
        zero = g.op("Constant", value_t=torch.zeros(channels, dtype=torch.int8))
        return g.op("DequantizeLinear", weight, scale, zero, axis_i=0)


def _input_qdq(layer, x: torch.Tensor) -> torch.Tensor:
    if not layer.activation.static:
        raise NetshrinkError(
            f"layer {layer.layer_name!r} quantizes its input dynamically, which has no QDQ "
            "form; export a model quantized with Static (or QAT, converted)"
        )
    # Python numbers read before tracing (reading a tensor while tracing records dead nodes).
    return _QuantDequant.apply(x, *layer._export_qparams)


def linear_qdq(layer: QuantLinear, x: torch.Tensor) -> torch.Tensor:
    weight = _DequantizeWeight.apply(layer.weight, layer.weight_scale)
    return F.linear(_input_qdq(layer, x), weight, layer.bias)


def conv_qdq(layer: QuantConv2d, x: torch.Tensor) -> torch.Tensor:
    g = layer.geometry
    weight = _DequantizeWeight.apply(layer.weight, layer.weight_scale)
    return F.conv2d(_input_qdq(layer, x), weight, layer.bias, g.stride, g.padding, g.dilation,
                    g.groups)


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike,
                opset: int = OPSET) -> Path:
    """Write `model` (an integer model with static input scales) to `path` as QDQ ONNX."""
    import onnx

    layers = [m for m in model.modules() if isinstance(m, QuantLinear | QuantConv2d)]
    if not layers:
        raise NetshrinkError("the model has no integer layers; quantize it with "
                             "netshrink.quantize_(model, Static(), data) before exporting")
    for layer in layers:
        if not layer.activation.static:
            raise NetshrinkError(
                f"layer {layer.layer_name!r} quantizes its input dynamically, which has no "
                "QDQ form; export a model quantized with Static (or QAT, converted)"
            )
    for layer in layers:
        qmin, qmax, _ = unsigned_range(layer.activation)
        zero_point = int(to_kernel_zero_point(layer.activation, layer.input_zero_point))
        layer._export_qparams = (float(layer.input_scale), zero_point, qmin, qmax)
    path = Path(path)
    was_training = model.training
    model.eval()
    try:
        with atomic_path(path) as tmp, torch.no_grad():
            torch.onnx.export(
                model, (example,), str(tmp), input_names=["input"], output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=opset, dynamo=False)
            onnx.checker.check_model(str(tmp))
    finally:
        model.train(was_training)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None,
                 optimized_path: str | os.PathLike | None = None):
    """An onnxruntime CPU session for `path` (optionally writing the graph it optimized)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
