"""ONNX export of an integer model: QDQ (portable) or integer operators (fast in onnxruntime).

mode="qdq": each integer layer becomes
    Clip -> QuantizeLinear -> DequantizeLinear   (the input, with its calibrated scale)
    DequantizeLinear(int8 weight initializer, per-channel scales, axis 0)
    Gemm / MatMul / Conv (+ bias)
so the file holds int8 weights (about 4x smaller than float32). The Clip keeps inputs inside
the scheme's range when it is narrower than uint8's (7-bit activations on CPUs whose int8
instructions saturate). Only static input scales have a QDQ form.

mode="integer": each integer layer becomes MatMulInteger / ConvInteger on uint8 inputs
(DynamicQuantizeLinear for dynamic layers, QuantizeLinear for static ones) with the scales
applied to the int32 sums (see onnx_integer.py): the model's own integer arithmetic, which
onnxruntime runs with its fused integer kernels.

Embedding tables (QuantEmbedding) export as a Gather of int8 rows times their row scales in
both modes.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.data.inputs import Inputs, is_inputs
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path
from netshrink.quant import onnx_integer
from netshrink.quant.kernels import _CONV_FUNCTIONS
from netshrink.quant.modules import (
    QuantConvNd,
    QuantLinear,
    to_kernel_zero_point,
    unsigned_range,
)

if TYPE_CHECKING:
    import onnxruntime as ort

OPSET = 17
MODES = ("qdq", "integer")
_EXPORT = {"mode": "qdq"}  # which form the integer layers take while torch.onnx traces them


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


def conv_qdq(layer: QuantConvNd, x: torch.Tensor) -> torch.Tensor:
    g = layer.geometry
    weight = _DequantizeWeight.apply(layer.weight, layer.weight_scale)
    return _CONV_FUNCTIONS[g.dims](_input_qdq(layer, x), weight, layer.bias, g.stride,
                                   g.padding, g.dilation, g.groups)


def export_layer(layer: QuantLinear | QuantConvNd, x: torch.Tensor) -> torch.Tensor:
    """What an integer layer's forward becomes while it is being exported."""
    conv = isinstance(layer, QuantConvNd)
    if _EXPORT["mode"] == "integer":
        return (onnx_integer.conv2d if conv else onnx_integer.linear)(layer, x,
                                                                      layer._onnx_integer)
    return conv_qdq(layer, x) if conv else linear_qdq(layer, x)


def integer_layers(model: nn.Module) -> list[QuantLinear | QuantConvNd]:
    return [m for m in model.modules() if isinstance(m, QuantLinear | QuantConvNd)]


@contextlib.contextmanager
def exporting(model: nn.Module, mode: str) -> Iterator[None]:
    """Prepare every integer layer of `model` for `mode` (refusing, by name, one that has no
    such form) and set the mode for the layers' forward while torch.onnx traces them."""
    if mode not in MODES:
        raise NetshrinkError(f"mode={mode!r} is not one of {', '.join(MODES)}")
    layers = integer_layers(model)
    if not layers:
        raise NetshrinkError(
            "the model has no int8 layers (Dynamic, Static or QAT) for a QDQ or integer graph; "
            "a float or weight-only model exports as it computes with torch.onnx.export (its "
            "low-bit weights dequantized in the graph)")
    if mode == "qdq":
        for layer in layers:
            if not layer.activation.static:
                raise NetshrinkError(
                    f"layer {layer.layer_name!r} quantizes its input dynamically, which has no "
                    "QDQ form; export it with mode='integer' or quantize with Static (or QAT, "
                    "converted)"
                )
        for layer in layers:
            qmin, qmax, _ = unsigned_range(layer.activation)
            zero_point = int(to_kernel_zero_point(layer.activation, layer.input_zero_point))
            layer._export_qparams = (float(layer.input_scale), zero_point, qmin, qmax)
    else:
        prepared = [onnx_integer.prepare(layer) for layer in layers]  # all checked first
        for layer, p in zip(layers, prepared, strict=True):
            layer._onnx_integer = _as_buffers(layer, p)
    was_training, old_mode = model.training, _EXPORT["mode"]
    model.eval()
    _EXPORT["mode"] = mode
    try:
        yield
    finally:
        _EXPORT["mode"] = old_mode
        model.train(was_training)
        for layer in layers:
            layer.__dict__.pop("_onnx_integer", None)
            for name in _EXPORT_BUFFERS:
                layer._buffers.pop(name, None)


_EXPORT_BUFFERS = ("onnx_weight", "onnx_weight_zero_point", "onnx_weight_scale", "onnx_bias")


def _as_buffers(layer: nn.Module, p: onnx_integer.ExportedWeights):
    """Register the prepared tensors on the layer while exporting: the tracer then stores them
    as named initializers (layer.onnx_weight, ...) rather than anonymous constants."""
    tensors = dict(zip(_EXPORT_BUFFERS, (p.weight, p.zero_point, p.scale, p.bias), strict=True))
    for name, tensor in tensors.items():
        if tensor is not None:
            layer.register_buffer(name, tensor)
    return p


def export_onnx(model: nn.Module, example: Inputs | Sequence[torch.Tensor],
                path: str | os.PathLike, opset: int = OPSET, mode: str = "qdq",
                input_names: Sequence[str] | None = None,
                output_names: Sequence[str] = ("output",),
                dynamic_axes: dict | None = None,
                constant_folding: bool = True) -> Path:
    """Write the integer model `model` to `path` as ONNX: mode "qdq" or "integer".

    example: example inputs as the model takes them (netshrink.data.inputs): one tensor (the
    graph input is named "input"), a tuple of tensors, its positional arguments (input_0,
    input_1, ...), or a dict of tensors, its keyword arguments (named by their keys, in the
    order of the model's forward signature). `input_names` overrides the names; every input's
    and output's first dimension is dynamic ("batch") unless `dynamic_axes` says.
    constant_folding=False keeps operators on constants as operators (packed weights stay
    packed in the file; onnxruntime folds them when the session starts).
    """
    import onnx

    args, kwargs, names = example_arguments(model, example)
    if input_names is None:
        input_names = names
    if len(input_names) != len(names):
        raise NetshrinkError(f"input_names has {len(input_names)} names for {len(names)} inputs")
    if dynamic_axes is None:
        dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    path = Path(path)
    with exporting(model, mode), atomic_path(path) as tmp, torch.no_grad(), \
            warnings.catch_warnings(), keywords_as_positional(model, list(kwargs)):
        # the integer ops compute their scales from the traced input (exported as ops, not
        # constants); the tracer warns about the Python numbers it sees along the way
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model, args + tuple(kwargs.values()), str(tmp), input_names=list(input_names),
            output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset,
            do_constant_folding=constant_folding, dynamo=False)
        onnx.checker.check_model(str(tmp))
    return path


def example_arguments(
    model: nn.Module,
    example: Inputs | list[torch.Tensor],
) -> tuple[tuple, dict, list[str]]:
    """(args, kwargs, graph input names) of an export example: a tensor, a tuple or a dict.

    A dict's entries are put in the order of the model's forward parameters, which is the
    order the exporter gives the graph inputs, so each name labels its own tensor."""
    if isinstance(example, list):
        example = tuple(example)
    if not is_inputs(example):
        raise NetshrinkError("example must be an input tensor, a tuple of input tensors (the "
                             "model's positional arguments) or a dict of them (its keyword "
                             "arguments)")
    if isinstance(example, torch.Tensor):
        return (example,), {}, ["input"]
    if isinstance(example, tuple):
        return example, {}, [f"input_{i}" for i in range(len(example))]
    order = list(inspect.signature(model.forward).parameters)
    ranked = sorted(example, key=lambda k: order.index(k) if k in order else len(order))
    kwargs = {k: example[k] for k in ranked}
    return (), kwargs, list(kwargs)


@contextlib.contextmanager
def keywords_as_positional(model: nn.Module, names: list[str]) -> Iterator[None]:
    """While exporting, `model` takes its keyword inputs `names` positionally, in that order.

    torch.onnx.export(kwargs=...) makes every other parameter of the forward a graph input too
    (a Python default such as scale=1.0 becomes an unnamed input onnxruntime then demands);
    called positionally, the graph has the example's tensors as its only inputs. The model's
    own forward comes back afterwards; nothing changes without names."""
    if not names:
        yield
        return
    own = vars(model).get("forward")
    forward = model.forward

    def positional(*tensors):
        return forward(**dict(zip(names, tensors, strict=True)))

    model.forward = positional
    try:
        yield
    finally:
        if own is None:
            del model.forward
        else:
            model.forward = own


def onnx_session(path: str | os.PathLike, threads: int | None = None,
                 optimized_path: str | os.PathLike | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for `path` (optionally writing the graph it optimized)."""
    import onnxruntime as ort

    from netshrink.quant.onnx_runner import session_options

    return ort.InferenceSession(str(path), session_options(threads, optimized_path),
                                providers=["CPUExecutionProvider"])
