"""Weight-only quantization: 2-8 bit weights with one scale and zero point per group, packed.

    netshrink.quantize_(model, WeightOnly(bits=4, group_size=128, rounding="gptq"), data=batches)
    netshrink.save(model, "model-int4.safetensors")     # packed 4-bit codes, fp16 scales

Each group of `group_size` consecutive weights of a row (a Linear's inputs, an embedding's
dimensions) gets its own asymmetric grid: scale = (max - min) / (2^bits - 1) in float16 and an
integer zero point, so code = clamp(round(w / scale) + zero, 0, 2^bits - 1) and
w ~ (code - zero) * scale. Codes are packed densely (two 4-bit codes per byte, eight 3-bit
codes in three bytes), so a 4-bit layer takes 4 bits per weight plus 24 bits per group.

Rounding: "rtn" rounds every weight to the nearest level; "gptq" rounds a Linear's weights one
input column at a time and spreads each rounding error over the columns not yet rounded, with
the Hessian of the layer's inputs on calibration data (netshrink.quant.gptq; Frantar et al.
2022). Embedding tables are always rounded to nearest (a lookup has no input Hessian).

Compute stays float: the layers dequantize their weight at every call (the file and the model
in memory are small; no integer kernel is used, so they are no faster than float).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError

ROUNDINGS = ("gptq", "rtn")


@dataclass(frozen=True)
class WeightOnly:
    """What `quantize_` does for weight-only quantization (see the module docstring).

    bits: 2 to 8. group_size: weights per scale along each row (None: the whole row); a row
    whose length it does not divide uses the whole row. rounding: "gptq" or "rtn".
    embeddings: quantize embedding tables too (round to nearest). skip: layer patterns left
    float. damping, block_size: GPTQ's (fraction of the mean Hessian diagonal; columns per
    lazy update). calibration_batches: at most this many batches of `data` feed the Hessians.
    act_order: GPTQ rounds each Linear's inputs in order of decreasing Hessian diagonal (one
    group per row only: group_size=None).
    """

    bits: int = 4
    group_size: int | None = 128
    rounding: str = "gptq"
    embeddings: bool = True
    skip: tuple = ()
    damping: float = 0.01
    block_size: int = 128
    calibration_batches: int = 64
    act_order: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or \
                not 2 <= self.bits <= 8:
            raise NetshrinkError(f"bits={self.bits!r} must be an integer from 2 to 8")
        if self.group_size is not None and (isinstance(self.group_size, bool) or not
                                            isinstance(self.group_size, int) or
                                            self.group_size < 1):
            raise NetshrinkError(f"group_size={self.group_size!r} must be a positive integer "
                                 "or None (one group per row)")
        if self.rounding not in ROUNDINGS:
            raise NetshrinkError(f"rounding={self.rounding!r} must be one of "
                                 f"{', '.join(ROUNDINGS)}")
        if isinstance(self.skip, str) or not all(isinstance(s, str) and s for s in self.skip):
            raise NetshrinkError(f"skip={self.skip!r} must be a list of layer name patterns")
        object.__setattr__(self, "skip", tuple(self.skip))
        if not (isinstance(self.damping, int | float) and 0 <= self.damping < 10):
            raise NetshrinkError(f"damping={self.damping!r} must be a number in [0, 10)")
        if not isinstance(self.act_order, bool):
            raise NetshrinkError(f"act_order={self.act_order!r} must be true or false")
        if self.act_order and (self.group_size is not None or self.rounding != "gptq"):
            raise NetshrinkError("act_order=True orders GPTQ's columns, so it needs "
                                 "rounding='gptq' and one group per row (group_size=None)")
        for name in ("block_size", "calibration_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NetshrinkError(f"{name}={value!r} must be a positive integer")

    def to_dict(self) -> dict:
        return {"method": "weight_only", **asdict(self)}

    def group_for(self, row_length: int) -> int:
        """The group size a row of `row_length` weights uses."""
        size = self.group_size or row_length
        return size if row_length % size == 0 else row_length


# --- the grid ----------------------------------------------------------------------------
def minmax_grid(columns: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero) per row of `columns` (rows x group): the asymmetric min-max grid with 0
    inside it; the scale is rounded to float16 first, as it is stored."""
    levels = 2**bits - 1
    lo = columns.amin(1).clamp(max=0)
    hi = columns.amax(1).clamp(min=0)
    scale = ((hi - lo) / levels).half().double()
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group
    zero = torch.round(-lo / scale).clamp(0, levels)
    return scale, zero


def round_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
                ) -> torch.Tensor:
    """clamp(round(w / scale) + zero, 0, 2^bits - 1), with scale and zero broadcast."""
    return torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)


def rtn(weight: torch.Tensor, bits: int, group_size: int
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scales, zeros) of `weight` rounded to nearest, one grid per group of a row."""
    rows, length = weight.shape
    grouped = weight.detach().double().reshape(rows * (length // group_size), group_size)
    scale, zero = minmax_grid(grouped, bits)
    codes = round_codes(grouped, scale[:, None], zero[:, None], bits)
    shape = (rows, length // group_size)
    return codes.reshape(rows, length).to(torch.uint8), scale.reshape(shape), zero.reshape(shape)


# --- packing -----------------------------------------------------------------------------
def packed_bytes(count: int, bits: int) -> int:
    return math.ceil(count * bits / 8)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes below 2^bits as a flat uint8 tensor: 8 / bits codes per byte (low bits first)
    when bits divides 8, else a dense bit stream (most significant bit first)."""
    flat = codes.reshape(-1).to(torch.uint8)
    if 8 % bits == 0:
        per = 8 // bits
        padded = F.pad(flat, (0, (-flat.numel()) % per)).reshape(-1, per).to(torch.int32)
        shifts = torch.arange(per, dtype=torch.int32) * bits
        return (padded << shifts).sum(1).to(torch.uint8)
    values = flat.numpy()[:, None]
    bit_planes = (values >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1
    return torch.from_numpy(np.packbits(bit_planes.reshape(-1).astype(np.uint8)))


def per_byte_codes(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """The codes of `pack`'s per-byte layout (8 / bits codes a byte, low bits first, bits < 8),
    in one more axis of 8 / bits; uint8 shifts and subtractions only, which ONNX export also
    writes."""
    shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
    shifted = packed.unsqueeze(-1) >> shifts
    return shifted - ((shifted >> bits) << bits)


def unpack(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The first `count` codes of a packed tensor (the inverse of `pack`), as uint8."""
    if bits == 8:
        return packed.reshape(-1)[:count]
    if 8 % bits == 0:
        return per_byte_codes(packed, bits).reshape(-1)[:count]
    stream = np.unpackbits(packed.cpu().numpy(), count=count * bits).reshape(count, bits)
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
    return torch.from_numpy((stream * weights).sum(1).astype(np.uint8))


# --- the modules -------------------------------------------------------------------------
class _Packed(nn.Module):
    """A (rows, length) weight as packed codes, float16 scales and uint8 zero points per group."""

    packed: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor

    def _init_packed(self, rows: int, length: int, bits: int, group_size: int) -> None:
        if not 2 <= bits <= 8 or length % group_size:
            raise NetshrinkError(f"weight-only layer: bits={bits} must be 2..8 and "
                                 f"group_size={group_size} must divide {length}")
        self.rows, self.length, self.bits, self.group_size = rows, length, bits, group_size
        groups = length // group_size
        self.register_buffer("packed", torch.zeros(packed_bytes(rows * length, bits),
                                                   dtype=torch.uint8))
        self.register_buffer("scale", torch.ones(rows, groups, dtype=torch.float16))
        self.register_buffer("zero", torch.zeros(rows, groups, dtype=torch.uint8))
        self._codes: tuple | None = None

    @torch.no_grad()
    def set_codes(self, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> None:
        self.packed.copy_(pack(codes.cpu(), self.bits).to(self.packed.device))
        self.scale.copy_(scale.reshape(self.scale.shape))
        self.zero.copy_(zero.reshape(self.zero.shape))

    def codes(self) -> torch.Tensor:
        """The (rows, length) codes, unpacked once per loaded packed tensor."""
        key = (self.packed.data_ptr(), self.packed._version, self.packed.device)
        if self._codes is None or self._codes[0] != key:
            codes = unpack(self.packed.cpu(), self.bits, self.rows * self.length)
            self._codes = (key, codes.reshape(self.rows, self.length).to(self.packed.device))
        return self._codes[1]

    def dequantized(self) -> torch.Tensor:
        """The float32 weight (code - zero) * scale."""
        groups = self.length // self.group_size
        codes = self.codes().reshape(self.rows, groups, self.group_size).float()
        w = (codes - self.zero.float()[..., None]) * self.scale.float()[..., None]
        return w.reshape(self.rows, self.length)

    def _apply(self, fn, recurse=True):
        self._codes = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_codes"] = None
        return state


class WeightOnlyLinear(_Packed):
    """y = x W^T + b with W stored as packed low-bit codes, dequantized at each call."""

    netshrink_weights = ()  # no dense weight for pruning reports to count

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bits: int = 4,
                 group_size: int = 128, rounding: str = "rtn"):
        super().__init__()
        self.in_features, self.out_features, self.rounding = in_features, out_features, rounding
        self._init_packed(out_features, in_features, bits, group_size)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features), requires_grad=False)
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_codes(
        cls,
        module: nn.Linear,
        codes: torch.Tensor,
        scale: torch.Tensor,
        zero: torch.Tensor,
        bits: int,
        group_size: int,
        rounding: str,
    ) -> WeightOnlyLinear:
        out = cls(module.in_features, module.out_features, module.bias is not None, bits,
                  group_size, rounding)
        out.set_codes(codes, scale, zero)
        if module.bias is not None:
            with torch.no_grad():
                out.bias.copy_(module.bias.detach().float())
        return out.to(module.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized().to(x.dtype), self.bias)

    def spec(self) -> dict:
        return {"type": "weight_only_linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "bits": self.bits, "group_size": self.group_size, "rounding": self.rounding}

    @classmethod
    def from_spec(cls, spec: dict, name: str) -> WeightOnlyLinear:
        return cls(spec["in_features"], spec["out_features"], spec["bias"], spec["bits"],
                   spec["group_size"], spec.get("rounding", "rtn"))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bits={self.bits}, group_size={self.group_size}, rounding={self.rounding}")


class WeightOnlyEmbedding(_Packed):
    """A lookup table of packed low-bit rows; only the rows looked up are dequantized."""

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int = 4,
                 group_size: int = 128, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self._init_packed(num_embeddings, embedding_dim, bits, group_size)

    @classmethod
    def from_float(cls, module: nn.Embedding, bits: int, group_size: int
                   ) -> WeightOnlyEmbedding:
        if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
            raise NetshrinkError("embeddings with max_norm, scale_grad_by_freq or sparse have "
                                 "no weight-only form; skip them")
        out = cls(module.num_embeddings, module.embedding_dim, bits, group_size,
                  module.padding_idx)
        out.set_codes(*rtn(module.weight.detach().float(), bits, group_size))
        return out.to(module.weight.device)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return self._export_forward(indices)
        groups = self.embedding_dim // self.group_size
        codes = self.codes()[indices].reshape(*indices.shape, groups, self.group_size).float()
        zero = self.zero[indices].float()[..., None]
        scale = self.scale[indices].float()[..., None]
        return ((codes - zero) * scale).flatten(-2)

    def _export_forward(self, indices: torch.Tensor) -> torch.Tensor:
        """The same lookup in operators ONNX has: the whole table's codes unpacked from the
        packed bytes by constant operators (onnxruntime folds them once, when the session
        starts: the file keeps the packed bytes, memory holds one byte a code), then the
        rows looked up and dequantized. Any bit width whose rows fill whole bytes (width x bits
        divisible by 8: 4 bits at an even width, 3 bits at a width divisible by 8)."""
        if self.embedding_dim * self.bits % 8:
            raise NetshrinkError(f"ONNX export of weight-only embeddings needs rows that fill "
                                 f"whole bytes, not {self.bits}-bit codes at width "
                                 f"{self.embedding_dim}")
        rows = self._export_codes()[indices]
        groups = self.embedding_dim // self.group_size
        codes = rows.float().unflatten(-1, (groups, self.group_size))
        zero = self.zero[indices].float().unsqueeze(-1)
        scale = self.scale[indices].float().unsqueeze(-1)
        return ((codes - zero) * scale).flatten(-2)

    def _export_codes(self) -> torch.Tensor:
        """(num_embeddings, embedding_dim) uint8 codes computed from `packed` by operators
        (BitShift and Sub: `pack`'s two layouts)."""
        table = self.packed.reshape(self.num_embeddings, -1)
        if self.bits == 8:
            return table
        if 8 % self.bits == 0:
            return per_byte_codes(table, self.bits).flatten(-2)
        # a bit stream, most significant bit first: each byte's bits, then `bits` per code
        shifts = torch.arange(7, -1, -1, dtype=torch.uint8)
        shifted = table.unsqueeze(-1) >> shifts
        bits = (shifted - ((shifted >> 1) << 1)).flatten(-2).float()
        weights = 2.0 ** torch.arange(self.bits - 1, -1, -1, dtype=torch.float32)
        codes = (bits.unflatten(-1, (self.embedding_dim, self.bits)) * weights).sum(-1)
        return codes.to(torch.uint8)

    def spec(self) -> dict:
        return {"type": "weight_only_embedding", "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "bits": self.bits,
                "group_size": self.group_size, "padding_idx": self.padding_idx}

    @classmethod
    def from_spec(cls, spec: dict, name: str) -> WeightOnlyEmbedding:
        return cls(spec["num_embeddings"], spec["embedding_dim"], spec["bits"],
                   spec["group_size"], spec.get("padding_idx"))

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}, "
                f"group_size={self.group_size}")


WEIGHT_ONLY_TYPES = (WeightOnlyLinear, WeightOnlyEmbedding)


def integer_linear(layer: WeightOnlyLinear, template: nn.Module) -> nn.Module:
    """A QuantLinear computing exactly what `layer` computes, on integer kernels.

    `template` is a QuantLinear of the same shape (what quantize_ made of the layer's float
    weight): its input quantization, kernel and name are kept, its weight replaced by
    code - zero with the row's scale, which needs one group per row. The integers lie in
    [-(2^bits - 1), 2^bits - 1]: a symmetric grid of bits + 1 bits.
    """
    from netshrink.quant.modules import QuantLinear

    if layer.group_size != layer.in_features:
        raise NetshrinkError(f"a weight-only layer with groups of {layer.group_size} of its "
                             f"{layer.in_features} inputs has no exact integer form (one scale "
                             "per row is needed); quantize with WeightOnly(group_size=None)")
    if not isinstance(template, QuantLinear) or (template.in_features, template.out_features) \
            != (layer.in_features, layer.out_features):
        raise NetshrinkError("integer_linear needs a QuantLinear template of the layer's shape")
    out = QuantLinear(layer.in_features, layer.out_features, layer.bias is not None,
                      layer.bits + 1, template.activation, template.kernel_name,
                      template.layer_name)
    device = layer.packed.device
    out.check(device)
    codes = layer.codes().to(torch.int16) - layer.zero.to(torch.int16)  # zero: (rows, 1)
    out = out.to(device)
    out.set_weight(codes.to(torch.int8), layer.scale.float().reshape(-1))
    if layer.bias is not None:
        with torch.no_grad():
            out.bias.copy_(layer.bias)
    return out


def quantize_linear(module: nn.Linear, config: WeightOnly, hessian: torch.Tensor | None
                    ) -> WeightOnlyLinear:
    """The weight-only form of a Linear (GPTQ with `hessian`, else round to nearest)."""
    from netshrink.core.swap import module_masks
    from netshrink.quant.gptq import gptq

    weight = module.weight.detach().float().cpu()  # as the forward reads it (masked: zeros)
    group = config.group_for(module.in_features)
    if config.rounding == "gptq" and hessian is not None:
        codes, scale, zero = gptq(
            weight, hessian.cpu(), group,
            grid=lambda columns: minmax_grid(columns, config.bits),
            round_to=lambda w, s, z: round_codes(w, s, z, config.bits),
            block_size=config.block_size, damping=config.damping,
            keep=module_masks(module).get("weight"),
            act_order=config.act_order and group == module.in_features)
    else:
        codes, scale, zero = rtn(weight, config.bits, group)
    return WeightOnlyLinear.from_codes(module, codes, scale, zero, config.bits, group,
                                       config.rounding if hessian is not None else "rtn")


def quantize_embedding(module: nn.Embedding, config: WeightOnly) -> WeightOnlyEmbedding:
    return WeightOnlyEmbedding.from_float(module, config.bits,
                                          config.group_for(module.embedding_dim))


class HessianObserver:
    """H = 2/n sum x x^T over every input row a Linear sees (its forward pre-hook)."""

    def __init__(self, features: int):
        self.hessian = torch.zeros(features, features, dtype=torch.float64)
        self.rows = 0

    def __call__(self, module: nn.Module, args) -> None:
        x = args[0].detach().reshape(-1, args[0].shape[-1]).double().cpu()
        total = self.rows + x.shape[0]
        self.hessian.mul_(self.rows / total).add_(x.T @ x, alpha=2.0 / total)
        self.rows = total
