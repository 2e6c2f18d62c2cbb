"""Conv1d in the integer program: the 2-D integer convolution over an (N, C, 1, L) view.

A Conv1d with kernel k, stride s, padding p, dilation d and groups g computes, product for
product, what a Conv2d with kernel (1, k), stride (1, s), padding (0, p), dilation (1, d) and
groups g computes on the same values seen as (N, C, 1, L): the same integer sum, then the same
output stage. So a Conv1d is lowered as the program's existing `Dense` convolution between two
`Reshape` ops, and needs nothing new: the reference arithmetic, both runtimes (oneDNN's
qconv2d_pointwise with its fused post-ops, onnxruntime's channels-last QLinearConv) and their
exactness checks cover it as they stand. A native 1-D op (torch.ops.quantized.conv1d, a 1-D
QLinearConv) would be a second path in every backend, to check separately, for the same
integers. MaxPool1d, AvgPool1d and AdaptiveAvgPool1d are the 2-D pools over the same view.

A Reshape is free on uint8 (a view, or one copy where a layout forces it), and between two 1-D
ops the way back to (N, C, L) and the next view cancel (`merge_reshapes`): values stay 4-D,
channels-last in both runtimes, from the first Conv1d to the last 1-D op, as in a 2-D network.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from netshrink.quant.int8.program import Dense, Program, Reshape, producer_in, readers_in
from netshrink.quant.kernels import ConvGeometry


def view_2d(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(N, C, L) -> (N, C, 1, L): the shape a 1-D value has as a 2-D one."""
    n, c, length = shape
    return (n, c, 1, length)


def weight_2d(weight: torch.Tensor) -> torch.Tensor:
    """A Conv1d's weight [O, I/g, k] as a Conv2d's [O, I/g, 1, k] (a copy)."""
    return weight.detach().unsqueeze(2).clone()


def geometry_2d(geometry: ConvGeometry) -> ConvGeometry:
    """A Conv1d's stride, padding and dilation on the view: (1, s), (0, p), (1, d)."""
    (s,), (p,), (d,) = geometry.stride, geometry.padding, geometry.dilation
    return ConvGeometry((1, s), (0, p), (1, d), geometry.groups)


def pair(value: int | tuple[int, ...] | list[int], dims: int, fill: int = 1
         ) -> tuple[int, int]:
    """A pool's kernel, stride, padding or dilation as the pair it is on the 2-D view: the
    2-D pool's own pair, or (fill, v) for a 1-D pool's v (fill 1 for a kernel, stride or
    dilation; 0 for a padding)."""
    if isinstance(value, list | tuple):
        if dims == 2:
            return tuple(value)
        (value,) = value
    return (fill, value) if dims == 1 else (value, value)


def merge_reshapes(program: Program) -> Program:
    """Reshape(Reshape(x)) -> one Reshape when nothing else reads the middle value, or x
    itself when it has x's shape; a Reshape to the shape it starts from -> nothing. So the
    views around consecutive 1-D ops cancel. Model inputs and outputs are kept as they are."""
    ops, values = list(program.ops), dict(program.values)
    kept = set(program.outputs) | set(program.inputs)
    changed = True
    while changed:
        changed = False
        for i, op in enumerate(ops):
            if not isinstance(op, Reshape):
                continue
            (x,) = op.inputs
            writer = producer_in(ops, x)
            if isinstance(writer, Reshape) and readers_in(ops, x) == [op] and x not in kept:
                ops[i] = replace(op, inputs=list(writer.inputs))
                ops.remove(writer)
                del values[x]
                changed = True
                break
            if isinstance(writer, Reshape) and op.output not in kept and \
                    values[writer.inputs[0]].shape[1:] == values[op.output].shape[1:]:
                # back to where the middle value came from, which others also read
                ops = [_renamed(r, op.output, writer.inputs[0]) for r in ops if r is not op]
                del values[op.output]
                changed = True
                break
            if values[x].shape[1:] == values[op.output].shape[1:] and op.output not in kept:
                ops = [_renamed(r, op.output, x) for r in ops if r is not op]
                del values[op.output]
                changed = True
                break
    return replace(program, ops=ops, values=values)


def _residual(op) -> str | None:
    return op.residual if isinstance(op, Dense) else None


def _renamed(op, old: str, new: str):
    """`op` reading `new` where it read `old`."""
    if old not in op.inputs and _residual(op) != old:
        return op
    changes = {"inputs": [new if i == old else i for i in op.inputs]}
    if _residual(op) == old:
        changes["residual"] = new
    return replace(op, **changes)
