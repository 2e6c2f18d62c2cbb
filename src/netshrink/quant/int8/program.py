"""An integer program: a quantized model as straight-line ops on uint8 tensors.

Activations stay integer from the first quantized layer to the last; only the model's inputs are
quantized and only its outputs are floats. Every integer value is stored with `QParams`:

    real ≈ (q - zero_point) * scale,     q in [qmin, qmax]  (uint8; 0..127 for 7-bit inputs)

and every op that writes integers (a layer, an add, a requantization, an average pool) ends in
the same output stage: round half to even, add the zero point, clamp to [lo, hi]. A ReLU, ReLU6,
hardtanh or clamp that follows is only a narrower [lo, hi] (quantization is monotonic, so
quantize(relu(x)) = max(quantize(x), zero_point) exactly), which is how activations are fused.

The program is what `lower.py` builds from a model quantized by `netshrink.quantize_`, what
`reference.py` runs with exact integer arithmetic, and what the backends (torch_backend.py,
onnx_backend.py) execute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from netshrink.quant.kernels import ConvGeometry


@dataclass(frozen=True)
class QParams:
    """How a value is stored as integers: scale, zero point and the range [qmin, qmax]."""

    scale: float
    zero_point: int
    qmin: int = 0
    qmax: int = 255

    def level(self, real: float) -> int:
        """The stored integer of a real number (round half to even, then clamp)."""
        if math.isinf(real):
            return self.qmax if real > 0 else self.qmin
        return int(min(max(round(real / self.scale) + self.zero_point, self.qmin), self.qmax))

    def __str__(self) -> str:
        return f"scale={self.scale:.6g} zero_point={self.zero_point} [{self.qmin}, {self.qmax}]"


@dataclass(frozen=True)
class Value:
    """A tensor of the program: integer (`qparams` set) or float32 (`qparams` None)."""

    name: str
    shape: tuple[int, ...]  # as seen on the example; dimension 0 is the batch
    qparams: QParams | None = None

    @property
    def integer(self) -> bool:
        return self.qparams is not None


@dataclass
class Op:
    """One step: reads `inputs`, writes `output` (value names); `source` names the model node."""

    inputs: list[str]
    output: str
    source: str = ""

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass
class Clamped(Op):
    """An op whose integer output ends in the shared stage: clamp to [lo, hi]."""

    lo: int = 0
    hi: int = 255


@dataclass
class Quantize(Clamped):
    """float -> int: clamp(round(x / scale) + zero_point, lo, hi)."""


@dataclass
class Dequantize(Op):
    """int -> float: (q - zero_point) * scale."""


@dataclass
class Requantize(Clamped):
    """int -> int at other QParams (or the same, with a narrower clamp: a standalone ReLU)."""


@dataclass
class Dense(Clamped):
    """A Linear or Conv2d layer (a Conv1d as the Conv2d over an (N, C, 1, L) view, see
    conv1d.py): acc = sum (q - z) w exactly; then the output stage.

    Integer output: clamp(round((acc * s_in * w_scale + bias [+ residual]) / s_out) + z_out).
    Float output (the model's output layer): float32(acc) * float32(s_in * w_scale) + bias, in
    float32, as the integer modules compute it.
    residual: a second input whose real value is added before the output stage (a residual
    add fused into the layer); `unfused_qparams` is how the layer's own output would be stored
    by a backend that adds separately.
    """

    weight: torch.Tensor = field(default=None, repr=False)  # int8, [N, K] or [O, I/g, kh, kw]
    weight_scale: torch.Tensor = field(default=None, repr=False)  # float32 [N]
    bias: torch.Tensor | None = field(default=None, repr=False)
    input_qparams: QParams | None = None
    weight_bits: int = 8
    geometry: ConvGeometry | None = None  # None: a Linear
    residual: str | None = None
    unfused_qparams: QParams | None = None

    @property
    def conv(self) -> bool:
        return self.geometry is not None


@dataclass
class Add(Clamped):
    """int + int -> int: the real values added, then the output stage."""


@dataclass
class Concat(Op):
    """Integers with equal QParams joined along `dim` (a copy: exact)."""

    dim: int = 1


@dataclass
class MaxPool(Op):
    """2-D max pooling of integers (exact: quantization is monotonic), or of floats."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False


@dataclass
class AvgPool(Clamped):
    """2-D average pooling (global when `kernel` is None): the real mean, then the output stage.

    Zero padding counts as the real value 0 when `count_include_pad`.
    """

    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


@dataclass
class Pad(Op):
    """Integers padded on the last two dimensions before a convolution (padding.py): an
    index map, so exact. pads: (left, right, top, bottom), F.pad's order; mode "constant"
    (writes the input's zero point: the real 0), "reflect", "replicate" or "circular"."""

    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    mode: str = "constant"


@dataclass
class Reshape(Op):
    """The same values in another shape (flatten, view): `shape` per example, batch kept."""

    shape: tuple[int, ...] = ()


@dataclass
class FloatClamp(Op):
    """clamp(x, lo, hi) on a float value (a ReLU after the float output layer)."""

    lo: float | None = None
    hi: float | None = None


@dataclass
class Program:
    """Values, ops in execution order, and the names of the model's inputs and outputs."""

    values: dict[str, Value]
    ops: list[Op]
    inputs: list[str]
    outputs: list[str]
    single_output: bool = True  # the model returned one tensor (not a tuple)

    def qparams(self, name: str) -> QParams:
        qp = self.values[name].qparams
        if qp is None:
            raise ValueError(f"value {name!r} is a float")
        return qp

    def producer(self, name: str) -> Op | None:
        return producer_in(self.ops, name)

    def consumers(self, name: str) -> list[Op]:
        return [op for op in self.ops if name in op.inputs]

    def summary(self) -> str:
        """One line per op: kind, inputs -> output, and how the output is stored."""
        lines = []
        for op in self.ops:
            value = self.values[op.output]
            stored = str(value.qparams) if value.integer else "float32"
            clamp = f" clamp [{op.lo}, {op.hi}]" if isinstance(op, Clamped) and value.integer \
                else ""
            extra = " + residual" if isinstance(op, Dense) and op.residual else ""
            lines.append(f"{op.kind:10s} {', '.join(op.inputs)} -> {op.output}{extra}: "
                         f"{stored}{clamp}  ({op.source})")
        return "\n".join(lines)

    def count(self, kind: str) -> int:
        return sum(op.kind == kind for op in self.ops)

    def macs(self) -> int:
        """Multiply-accumulates of one example: each Linear/Conv output element sums one
        weight row (K, or in_channels / groups x kernel area) of products. A structured-pruned
        model has fewer; an unstructured-pruned one the same (its zeros are multiplied)."""
        total = 0
        for op in self.ops:
            if isinstance(op, Dense):
                shape = self.values[op.output].shape
                total += op.weight[0].numel() * math.prod(shape[1:])
        return total


def producer_in(ops: list[Op], name: str) -> Op | None:
    """The op of `ops` that writes `name` (None for a program input): for passes that edit a
    list of ops before it is a Program again."""
    return next((op for op in ops if op.output == name), None)


def readers_in(ops: list[Op], name: str) -> list[Op]:
    """The ops of `ops` that read `name`, as an input or as a fused residual."""
    return [op for op in ops
            if name in op.inputs or (isinstance(op, Dense) and op.residual == name)]
