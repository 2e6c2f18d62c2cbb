"""Padding a convolution applies before its integer kernel, as an op on the integers.

A QuantConv layer applies reflect, replicate and circular padding, and the asymmetric zero
padding of padding="same" with an even kernel, to its float input (`pre_pad`) and then
quantizes. Quantizing is elementwise, so padding the stored integers instead gives the same
integers: each of these modes only copies elements (an index map, below), and zero padding
writes the real value 0, whose stored integer is the zero point. So the program's `Pad` is
exact in every runtime, and the convolution after it runs with no padding of its own.

Pads are in F.pad's order on the 2-D view, (left, right, top, bottom); a Conv1d's (left,
right) pads only the length axis of its (N, C, 1, L) view (conv1d.py).
"""

from __future__ import annotations

import torch

from netshrink.quant.int8.program import Pad

# a QuantConv's pad_mode -> the Pad op's mode
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
         "circular": "circular"}


def view_pads(pre_pad: tuple[int, ...], dims: int) -> tuple[int, int, int, int]:
    """A layer's `pre_pad` as (left, right, top, bottom) on the 2-D view of its input (its
    length was checked when the layer was lowered: lower._module_dense)."""
    return tuple(pre_pad) if dims == 2 else (*pre_pad, 0, 0)


def padded_shape(shape: tuple[int, ...], pads: tuple[int, int, int, int]) -> tuple[int, ...]:
    """An (N, C, H, W) shape after `pads`."""
    n, c, h, w = shape
    left, right, top, bottom = pads
    return (n, c, h + top + bottom, w + left + right)


def source_index(size: int, before: int, after: int, mode: str) -> torch.Tensor:
    """For each position of a padded axis, the input position it copies (-1: the zero point).

    PyTorch's modes: reflect mirrors without repeating the edge, replicate repeats the edge,
    circular wraps around.
    """
    i = torch.arange(-before, size + after)
    if mode == "constant":
        return torch.where((i >= 0) & (i < size), i, -1)
    if mode == "replicate":
        return i.clamp(0, size - 1)
    if mode == "circular":
        return i.remainder(size)
    if mode == "reflect":
        mirrored = i.abs()
        return torch.where(mirrored >= size, 2 * (size - 1) - mirrored, mirrored)
    raise ValueError(f"padding mode {mode!r} is not one of {', '.join(MODES.values())}")


def pad_integers(x: torch.Tensor, op: Pad, zero_point: int) -> torch.Tensor:
    """`x` (N, C, H, W) padded as `op` says, by the index maps of `source_index`."""
    left, right, top, bottom = op.pads
    rows = source_index(x.shape[2], top, bottom, op.mode)
    cols = source_index(x.shape[3], left, right, op.mode)
    out = x[:, :, rows.clamp(min=0)][:, :, :, cols.clamp(min=0)].clone()
    out[:, :, rows < 0] = zero_point
    out[:, :, :, cols < 0] = zero_point
    return out
