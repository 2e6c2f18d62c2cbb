"""Integer ONNX: netshrink's integer arithmetic written as ONNX integer operators.

A quantized Linear becomes

    DynamicQuantizeLinear(x)            (dynamic: one scale and zero point per call, 8 bits)
    or Clip -> QuantizeLinear(x, s, z)  (static: the calibrated scale; Clip for < 8 bits)
    MatMulInteger(q, W, z, w_zero)      (uint8 x int8 or uint8 x uint8, summed in int32)
    Cast -> Mul(s * weight_scale) -> Add(bias)

which onnxruntime fuses into one kernel (DynamicQuantizeMatMul / MatMulIntegerToFloat); a
convolution becomes ConvInteger the same way. The arithmetic is netshrink's own (`kernels.py`):
the same integers, the same int32 sums, `float(acc) * (s * weight_scale) + bias`.

No saturation, on any machine. x86 CPUs without VNNI multiply uint8 by int8 with `vpmaddubsw`,
which adds pairs of products in int16 and saturates; onnxruntime's MLAS does so for uint8 x int8.
For uint8 x uint8 it widens both operands to int16 first (`vpmaddwd`), which is exact. So a
layer's weights are stored as int8 only when a pair of products provably fits in int16
(2 x (2^a - 1) x (2^(w-1) - 1) <= 32767, e.g. 8-bit inputs with 7-bit weights: 32,130);
otherwise as uint8 (w + 128, zero point 128), which costs speed, never exactness. Products of
two activations (attention) are always uint8 x uint8.

Each operation here is a torch.autograd.Function whose `forward` computes the same integer
arithmetic in PyTorch (exact integers in float64): that is what tracing runs, and the float
reference tests compare onnxruntime with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.bounds import INT16_MAX, pair_sum_bound
from netshrink.quant.kernels import _CONV_FUNCTIONS
from netshrink.quant.modules import (
    ActivationSpec,
    QuantConvNd,
    QuantLinear,
    to_kernel_zero_point,
    unsigned_range,
)
from netshrink.quant.scheme import Scheme, choose_qparams

if TYPE_CHECKING:
    from torch.autograd.function import FunctionCtx

    from netshrink.quant.kernels import ConvGeometry

# ONNX TensorProto element types
FLOAT, UINT8, INT8 = 1, 2, 3
DYNAMIC_BITS = 8  # DynamicQuantizeLinear's uint8 range: 0..255


@dataclass(frozen=True)
class InputQuantization:
    """How an integer op's input becomes uint8: dynamic (8 bits) or a fixed scale/zero point."""

    static: bool
    scale: float = 1.0
    zero_point: int = 0
    qmin: int = 0
    qmax: int = 255

    @property
    def bits(self) -> int:
        return DYNAMIC_BITS if not self.static else max(1, self.qmax).bit_length()


DYNAMIC = InputQuantization(static=False)


def input_quantization(layer: QuantLinear | QuantConvNd) -> InputQuantization:
    """The layer's input quantization, or a clear refusal when it has no integer ONNX form."""
    spec: ActivationSpec = layer.activation
    if spec.granularity != "tensor":
        raise NetshrinkError(
            f"layer {layer.layer_name!r} quantizes its input per {spec.granularity}, which has "
            "no fast integer ONNX form; quantize with one input scale per call, e.g. "
            "Dynamic(bits=7, activation_bits=8, granularity='tensor'), or export mode='qdq'"
        )
    if not spec.static:
        if spec.bits != DYNAMIC_BITS or spec.symmetric:
            raise NetshrinkError(
                f"layer {layer.layer_name!r}: its input is quantized at run time to "
                f"{spec.bits}-bit {'symmetric' if spec.symmetric else 'asymmetric'} integers; "
                "ONNX's DynamicQuantizeLinear gives 8-bit asymmetric ones. Quantize with "
                "Dynamic(bits=7, activation_bits=8, granularity='tensor')"
            )
        return DYNAMIC
    qmin, qmax, _ = unsigned_range(spec)
    zero_point = int(to_kernel_zero_point(spec, layer.input_zero_point))
    return InputQuantization(True, float(layer.input_scale), zero_point, qmin, qmax)


def weight_is_signed(activation_bits: int, weight_bits: int) -> bool:
    """int8 weights only where no pair of uint8 x int8 products can saturate int16."""
    return pair_sum_bound(activation_bits, weight_bits) <= INT16_MAX


def weight_operand(weight: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(integer weight as stored in the file, its zero point): int8 as is, or uint8 w + 128."""
    if signed:
        return weight.detach().clone(), torch.zeros((), dtype=torch.int8)
    shifted = (weight.detach().to(torch.int16) + 128).to(torch.uint8)
    return shifted, torch.full((), 128, dtype=torch.uint8)


# ---------------------------------------------------------------- PyTorch reference arithmetic

def quantize_reference(
    x: torch.Tensor,
    how: InputQuantization,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(uint8 values as float64, scale, zero point) exactly as ONNX quantizes `x`."""
    if how.static:
        scale, zero_point = torch.tensor(how.scale), torch.tensor(float(how.zero_point))
        qmin, qmax = how.qmin, how.qmax
    else:  # DynamicQuantizeLinear: range widened to include 0, 255 levels, zero point rounded
        scale, zero_point = choose_qparams(x.min(), x.max(), Scheme(8, symmetric=False))
        qmin, qmax = 0, 255
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return q.double(), scale.float(), zero_point.double()


def _finish(acc: torch.Tensor, out_scale: torch.Tensor, bias: torch.Tensor | None):
    out = acc.float() * out_scale
    return out if bias is None else out + bias


# ---------------------------------------------------------------------------- ONNX helpers

def _const(g, value, dtype=None):
    return g.op("Constant", value_t=torch.as_tensor(value, dtype=dtype))


def _quantize_symbolic(g, x, how: InputQuantization):
    """(uint8 value, scale, zero point) of `x` in the graph."""
    if not how.static:
        return g.op("DynamicQuantizeLinear", x, outputs=3)
    scale = _const(g, how.scale, torch.float32)
    zero_point = _const(g, how.zero_point, torch.uint8)
    if (how.qmin, how.qmax) != (0, 255):
        lo = _const(g, (how.qmin - how.zero_point) * how.scale, torch.float32)
        hi = _const(g, (how.qmax - how.zero_point) * how.scale, torch.float32)
        x = g.op("Clip", x, lo, hi)
    return g.op("QuantizeLinear", x, scale, zero_point), scale, zero_point


def _scale_output(g, acc, input_scale, weight_scale, bias):
    """Cast(acc) * (input_scale * weight_scale) + bias: the pattern onnxruntime fuses."""
    out = g.op("Mul", g.op("Cast", acc, to_i=FLOAT), g.op("Mul", input_scale, weight_scale))
    return out if bias is None else g.op("Add", out, bias)


# --------------------------------------------------------------------------- the operations

class IntegerLinear(torch.autograd.Function):
    """x W^T + b with x quantized to uint8 and W integer; weight given as [K, N] for ONNX."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight_kn: torch.Tensor,
        weight_zero: torch.Tensor,
        weight_scale: torch.Tensor,
        bias: torch.Tensor | None,
        how: InputQuantization,
    ) -> torch.Tensor:
        q, scale, zero_point = quantize_reference(x, how)
        w = weight_kn.double() - weight_zero.double()
        acc = (q - zero_point) @ w
        return _finish(acc, scale * weight_scale, bias)

    @staticmethod
    def symbolic(
        g: torch.Graph,
        x: torch.Value,
        weight_kn: torch.Value,
        weight_zero: torch.Value,
        weight_scale: torch.Value,
        bias: torch.Value,
        how: InputQuantization,
    ) -> torch.Value:
        q, scale, zero_point = _quantize_symbolic(g, x, how)
        acc = g.op("MatMulInteger", q, weight_kn, zero_point, weight_zero)
        return _scale_output(g, acc, scale, weight_scale, _present(bias))


class IntegerConv2d(torch.autograd.Function):
    """A convolution of uint8 inputs and integer weights, summed in int32 (ConvInteger)."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        weight_zero: torch.Tensor,
        weight_scale: torch.Tensor,
        bias: torch.Tensor | None,
        how: InputQuantization,
        geometry: ConvGeometry,
    ) -> torch.Tensor:
        q, scale, zero_point = quantize_reference(x, how)
        w = weight.double() - weight_zero.double()
        acc = _CONV_FUNCTIONS[geometry.dims](q - zero_point, w, None, geometry.stride,
                                             geometry.padding, geometry.dilation,
                                             geometry.groups)
        channel = (-1, *([1] * geometry.dims))
        out = acc.float() * (scale * weight_scale).view(channel)
        return out if bias is None else out + bias.view(channel)

    @staticmethod
    def symbolic(
        g: torch.Graph,
        x: torch.Value,
        weight: torch.Value,
        weight_zero: torch.Value,
        weight_scale: torch.Value,
        bias: torch.Value,
        how: InputQuantization,
        geometry: ConvGeometry,
    ) -> torch.Value:
        q, scale, zero_point = _quantize_symbolic(g, x, how)
        kernel_shape = list(weight.type().sizes()[2:])
        pads = list(geometry.padding) * 2
        acc = g.op("ConvInteger", q, weight, zero_point, weight_zero,
                   kernel_shape_i=kernel_shape, strides_i=list(geometry.stride), pads_i=pads,
                   dilations_i=list(geometry.dilation), group_i=geometry.groups)
        channel = _const(g, [1, -1, *([1] * geometry.dims)], torch.int64)
        out_scale = g.op("Reshape", g.op("Mul", scale, weight_scale), channel)
        out = g.op("Mul", g.op("Cast", acc, to_i=FLOAT), out_scale)
        return out if _present(bias) is None else g.op("Add", out, g.op("Reshape", bias, channel))


class IntegerMatMul(torch.autograd.Function):
    """a @ b of two activations, each quantized to uint8 (dynamic, or `a_how`), int32 sums."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        a: torch.Tensor,
        b: torch.Tensor,
        a_how: InputQuantization,
    ) -> torch.Tensor:
        qa, sa, za = quantize_reference(a, a_how)
        qb, sb, zb = quantize_reference(b, DYNAMIC)
        return ((qa - za) @ (qb - zb)).float() * (sa * sb)

    @staticmethod
    def symbolic(
        g: torch.Graph,
        a: torch.Value,
        b: torch.Value,
        a_how: InputQuantization,
    ) -> torch.Value:
        qa, sa, za = _quantize_symbolic(g, a, a_how)
        qb, sb, zb = g.op("DynamicQuantizeLinear", b, outputs=3)
        acc = g.op("MatMulInteger", qa, qb, za, zb)
        return _scale_output(g, acc, sa, sb, None)


def _present(value):
    """None for an absent optional input (a traced None arrives as a 'prim::Constant' None)."""
    if value is None:
        return None
    node = value.node() if hasattr(value, "node") else None
    if node is not None and node.kind() == "prim::Constant" and value.type().kind() == "NoneType":
        return None
    return value


# ------------------------------------------------------------------ what the layers export

@dataclass
class ExportedWeights:
    """A layer's tensors as the integer graph stores them (prepared once, before tracing)."""

    weight: torch.Tensor
    zero_point: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor | None
    how: InputQuantization


def prepare(layer: QuantLinear | QuantConvNd) -> ExportedWeights:
    """Check the layer has an integer ONNX form and lay out its weights for it."""
    how = input_quantization(layer)
    signed = weight_is_signed(how.bits, layer.weight_bits)
    weight, zero_point = weight_operand(layer.weight, signed)
    if isinstance(layer, QuantLinear):
        weight = weight.t().contiguous()  # MatMulInteger multiplies [M, K] by [K, N]
    bias = None if layer.bias is None else layer.bias.detach().float()
    return ExportedWeights(weight, zero_point, layer.weight_scale.detach().float(), bias, how)


def linear(layer: QuantLinear, x: torch.Tensor, prepared: ExportedWeights) -> torch.Tensor:
    p = prepared
    return IntegerLinear.apply(x, p.weight, p.zero_point, p.scale, p.bias, p.how)


def conv2d(layer: QuantConvNd, x: torch.Tensor, prepared: ExportedWeights) -> torch.Tensor:
    p = prepared
    return IntegerConv2d.apply(x, p.weight, p.zero_point, p.scale, p.bias, p.how, layer.geometry)


def matmul(a: torch.Tensor, b: torch.Tensor, a_how: InputQuantization = DYNAMIC) -> torch.Tensor:
    """Integer product of two activations (both uint8: exact on every CPU)."""
    return IntegerMatMul.apply(a, b, a_how)
