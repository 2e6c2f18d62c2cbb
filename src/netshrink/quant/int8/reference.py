"""The reference arithmetic of an integer program: exact integers, real-number output stages.

Integer sums are exact (float64 holds them exactly below 2**53). Each output stage is computed in
float64 from the exact sum and the scales, then rounded half to even once:

    q_out = clamp(round(real / s_out) + z_out, lo, hi)

A fast kernel does the same in float32 (and onnxruntime first rounds the bias to an int32 at the
step s_in * w_scale), so its integer can differ from this one by one unit where `real / s_out`
falls within float32's rounding error of a half: the tests allow that difference and no other.
A float output layer is computed as the integer modules do: float32(acc) * float32(s_in * w_scale)
+ bias, in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from netshrink.quant.int8 import padding
from netshrink.quant.int8.program import (
    Add,
    AvgPool,
    Concat,
    Dense,
    Dequantize,
    FloatClamp,
    MaxPool,
    Op,
    Pad,
    Program,
    QParams,
    Quantize,
    Requantize,
    Reshape,
)


def real(q: torch.Tensor, qparams: QParams) -> torch.Tensor:
    """The real values of stored integers, in float64: (q - z) * s."""
    return (q.double() - qparams.zero_point) * qparams.scale


def output_stage(value: torch.Tensor, qparams: QParams, lo: int, hi: int) -> torch.Tensor:
    """Real values -> stored integers: round half to even, add the zero point, clamp."""
    q = torch.round(value.double() / qparams.scale) + qparams.zero_point
    return q.clamp_(lo, hi).to(torch.uint8)


def _dense(op: Dense, x: torch.Tensor, residual, program: Program) -> torch.Tensor:
    out_value = program.values[op.output]
    value = dense_real(op, x, residual, program)
    if not out_value.integer:
        return value
    return output_stage(value, out_value.qparams, op.lo, op.hi)


def dense_real(op: Dense, x: torch.Tensor, residual: torch.Tensor | None,
               program: Program) -> torch.Tensor:
    """A Linear's or convolution's output before its output stage: the exact real value in
    float64 (with the residual added), or, for a float output layer, its float32 result."""
    zx = op.input_qparams.zero_point
    centred = x.double() - zx
    w = op.weight.double()
    if op.conv:
        g = op.geometry
        acc = F.conv2d(centred, w, None, g.stride, g.padding, g.dilation, g.groups)
        channel = (-1, 1, 1)
    else:
        acc = centred @ w.t()
        channel = (-1,)
    out_value = program.values[op.output]
    if not out_value.integer:  # float output, as the integer modules compute it
        out_scale = torch.tensor(op.input_qparams.scale, dtype=torch.float32) * op.weight_scale
        out = acc.float() * out_scale.view(channel)
        return out if op.bias is None else out + op.bias.view(channel)
    value = acc * (op.input_qparams.scale * op.weight_scale.double()).view(channel)
    if op.bias is not None:
        value = value + op.bias.double().view(channel)
    if residual is not None:
        value = value + real(residual, program.qparams(op.residual))
    return value


def _avgpool(op: AvgPool, x: torch.Tensor, qparams: QParams) -> torch.Tensor:
    value = real(x, qparams)
    if op.kernel is None:
        return value.mean((2, 3), keepdim=True)
    return F.avg_pool2d(value, op.kernel, op.stride, op.padding, op.ceil_mode,
                        op.count_include_pad)


def run_op(op: Op, args: list[torch.Tensor], program: Program) -> torch.Tensor:
    """One op of `program` on its input tensors, with the reference arithmetic."""
    values = program.values
    out = values[op.output]
    if isinstance(op, Quantize):
        return output_stage(args[0].double(), out.qparams, op.lo, op.hi)
    if isinstance(op, Dequantize):
        qparams = program.qparams(op.inputs[0])
        return (args[0].float() - qparams.zero_point) * qparams.scale
    if isinstance(op, Requantize):
        return output_stage(real(args[0], program.qparams(op.inputs[0])), out.qparams, op.lo,
                            op.hi)
    if isinstance(op, Dense):
        return _dense(op, args[0], args[1] if op.residual else None, program)
    if isinstance(op, Add):
        total = real(args[0], program.qparams(op.inputs[0])) + real(
            args[1], program.qparams(op.inputs[1]))
        return output_stage(total, out.qparams, op.lo, op.hi)
    if isinstance(op, AvgPool):
        return output_stage(_avgpool(op, args[0], program.qparams(op.inputs[0])), out.qparams,
                            op.lo, op.hi)
    if isinstance(op, MaxPool):
        x = args[0].double() if out.integer else args[0]
        y = F.max_pool2d(x, op.kernel, op.stride, op.padding, op.dilation, op.ceil_mode)
        return y.to(torch.uint8) if out.integer else y
    if isinstance(op, Concat):
        return torch.cat(args, op.dim)
    if isinstance(op, Pad):
        return padding.pad_integers(args[0], op, program.qparams(op.inputs[0]).zero_point)
    if isinstance(op, Reshape):
        return args[0].reshape(args[0].shape[0], *op.shape)
    if isinstance(op, FloatClamp):
        return args[0].clamp(op.lo, op.hi)
    raise TypeError(f"no reference for op {op.kind}")


def run(
    program: Program,
    *inputs: torch.Tensor,
    keep: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]:
    """Run the program: its outputs (one tensor or a tuple), or with keep=True every value."""
    env = dict(zip(program.inputs, (x.float() for x in inputs), strict=True))
    for op in program.ops:
        env[op.output] = run_op(op, [env[name] for name in op.inputs], program)
    if keep:
        return env
    outputs = tuple(env[name] for name in program.outputs)
    return outputs[0] if program.single_output else outputs
