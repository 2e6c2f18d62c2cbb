"""Integer inference modules: Linear, Conv1d/2d/3d and Embedding with int8 weights on disk and
in memory.

The float work left around each integer product is what cannot be avoided: quantizing the
input (one rounding per value) and scaling the int32 sums back to float, which the kernel fuses
with the bias (`out = float(acc) * (input_scale * weight_scale) + bias`). With one scale per
input row ("row" granularity, dynamic only) the row scale is applied by one more pass.

How activations are quantized is an `ActivationSpec`: a scheme, static (a calibrated scale and
zero point, stored as buffers) or dynamic (chosen from each input). Inside the kernels an
activation is always unsigned: a symmetric b-bit value v in [-(2^(b-1)-1), 2^(b-1)-1] is stored
as v + 2^(b-1), with that offset as its zero point.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.quant import kernels
from netshrink.quant.bounds import check_layer
from netshrink.quant.scheme import TINY_SCALE, Scheme, choose_qparams, quantize


@dataclass(frozen=True)
class ActivationSpec:
    """How a layer's input is quantized: bits, symmetric, granularity, static or dynamic."""

    bits: int = 8
    symmetric: bool = False
    granularity: str = "tensor"
    static: bool = False

    def __post_init__(self) -> None:
        Scheme(self.bits, self.symmetric, self.granularity)  # validates
        if self.granularity == "channel":
            raise NetshrinkError("activations take granularity 'tensor' or 'row', not 'channel'")
        if self.static and self.granularity != "tensor":
            raise NetshrinkError("static (calibrated) activations take granularity 'tensor'")

    @property
    def scheme(self) -> Scheme:
        return Scheme(self.bits, self.symmetric, self.granularity)

    def to_dict(self) -> dict:
        return asdict(self)


def unsigned_range(spec: ActivationSpec) -> tuple[int, int, int | None]:
    """(qmin, qmax, fixed zero point or None) of the kernels' unsigned activation integers."""
    if spec.symmetric:
        offset = 2 ** (spec.bits - 1)
        return 1, 2**spec.bits - 1, offset
    return 0, 2**spec.bits - 1, None


def to_kernel_zero_point(spec: ActivationSpec, zero_point: torch.Tensor) -> torch.Tensor:
    """The unsigned zero point for a scheme's zero point (symmetric: the fixed offset)."""
    fixed = unsigned_range(spec)[2]
    return torch.full_like(zero_point, fixed) if fixed is not None else zero_point


def quantize_input(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: ActivationSpec,
) -> torch.Tensor:
    """uint8 integers of `x` for the kernels: clamp(round(x / scale) + zero_point)."""
    qmin, qmax, _ = unsigned_range(spec)
    q = torch.round(x / scale).add_(zero_point).clamp_(qmin, qmax)
    return q.to(torch.uint8)


def dynamic_qparams(
    x: torch.Tensor,
    spec: ActivationSpec,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(scale, kernel zero point) from the input itself: per tensor, or per row (keepdim)."""
    scheme = spec.scheme
    if spec.granularity == "row":
        lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)  # faster than aminmax(dim)
        if spec.symmetric:
            return torch.maximum(hi, lo.neg_()).div_(scheme.qmax).clamp_(min=TINY_SCALE), None
        return choose_qparams(lo, hi, scheme)
    lo, hi = torch.aminmax(x)
    scale, zero_point = choose_qparams(lo, hi, scheme)
    return scale, to_kernel_zero_point(spec, zero_point)


class _IntegerLayer(nn.Module):
    """What integer Linear and convolutions share: buffers, input quantization, kernel, packing.

    A layer converted from a masked (pruned) float layer records the mask in `weight_mask`
    (netshrink.prune.mask.set_fixed_mask): the frozen integers keep its zeros.
    """

    netshrink_weights = ("weight",)  # the weight pruning and density reports count

    weight: torch.Tensor
    weight_scale: torch.Tensor
    input_scale: torch.Tensor
    input_zero_point: torch.Tensor

    def _init_common(self, out_channels: int, weight_shape, bias: bool, weight_bits: int,
                     activation: ActivationSpec, kernel: str | None, name: str) -> None:
        Scheme(weight_bits)  # validates the bit width
        self.weight_bits = weight_bits
        self.activation = activation
        self.kernel_name = kernel
        self.layer_name = name
        # Parameters (frozen), so that parameter counts and optimizers see what nn.Linear has.
        self.weight = nn.Parameter(torch.zeros(weight_shape, dtype=torch.int8),
                                   requires_grad=False)
        self.register_buffer("weight_scale", torch.ones(out_channels))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels), requires_grad=False)
        else:
            self.register_parameter("bias", None)
        if activation.static:
            self.register_buffer("input_scale", torch.ones(()))
            self.register_buffer("input_zero_point", torch.zeros(()))
        self._packed_cache: dict = {}
        self._row_sums: tuple | None = None

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @torch.no_grad()
    def set_weight(self, weight_int: torch.Tensor, weight_scale: torch.Tensor) -> None:
        self.weight.copy_(weight_int)
        self.weight_scale.copy_(weight_scale.reshape(-1))

    def kernel(self, device: torch.device) -> kernels.Kernel:
        return kernels.select(device, self.kernel_name)

    def check(self, device: torch.device) -> int:
        """Refuse (by name) a layer whose integer sums could overflow on `device`'s kernel."""
        kernel = self.kernel(device)
        return check_layer(self.layer_name, self.fan_in, self.activation.bits,
                           self.weight_bits, kernel.pairs_in_int16(device), kernel.name)

    def _packed(self, kernel: kernels.Kernel, device: torch.device):
        key = (kernel.name, str(device), self.weight.data_ptr(), self.weight._version)
        packed = self._packed_cache.get(key)
        if packed is None:
            self.check(device)
            packed = self._pack(kernel)
            self._packed_cache = {key: packed}
        return packed

    def _input_qparams(self, x: torch.Tensor):
        if self.activation.static:
            return self.input_scale, to_kernel_zero_point(self.activation,
                                                          self.input_zero_point)
        return dynamic_qparams(x, self.activation)

    def _weight_row_sums(self) -> torch.Tensor:
        """weight_scale * (sum of each output's weight integers): for per-row zero points."""
        key = (self.weight._version, self.weight_scale._version, self.weight.device)
        if self._row_sums is None or self._row_sums[0] != key:
            sums = self.weight.reshape(self.weight.shape[0], -1).sum(1).float()
            self._row_sums = (key, self.weight_scale * sums)
        return self._row_sums[1]

    def _pack(self, kernel: kernels.Kernel):
        raise NotImplementedError

    def _apply(self, fn, recurse=True):
        self._packed_cache = {}
        self._row_sums = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        """Copies (deepcopy) leave the packed-weight caches behind: oneDNN's packed tensors
        cannot be copied, and are rebuilt from the weight on the first call."""
        state = self.__dict__.copy()
        state["_packed_cache"], state["_row_sums"] = {}, None
        return state

    def extra_repr(self) -> str:
        a = self.activation
        kind = "static" if a.static else "dynamic"
        return (f"weight_bits={self.weight_bits}, activations={a.bits}-bit "
                f"{'symmetric' if a.symmetric else 'asymmetric'} per {a.granularity} ({kind})")


class QuantLinear(_IntegerLayer):
    """y = x W^T + b with W in int8 and the product of integers summed in int32."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_bits: int = 8, activation: ActivationSpec | None = None,
                 kernel: str | None = None, name: str = "linear"):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_common(out_features, (out_features, in_features), bias, weight_bits,
                          activation or ActivationSpec(), kernel, name)

    def _pack(self, kernel):
        return kernel.pack_linear(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            from netshrink.quant.onnx_export import export_layer

            return export_layer(self, x)
        kernel = self.kernel(x.device)
        packed = self._packed(kernel, x.device)
        x = x.detach().float()  # integer layers pass no gradient (train with QAT instead)
        scale, zero_point = self._input_qparams(x)
        if self.activation.granularity == "row":
            return self._forward_rows(x, kernel, packed, scale, zero_point)
        q = quantize_input(x, scale, zero_point, self.activation)
        return kernel.linear(q, int(zero_point), packed, scale * self.weight_scale, self.bias)

    def _forward_rows(self, x, kernel, packed, scale, zero_point):
        if zero_point is None:  # symmetric: one fixed offset, the kernel removes it
            offset = unsigned_range(self.activation)[2]
            q = quantize_input(x, scale, offset, self.activation)
            acc = kernel.linear(q, offset, packed, self.weight_scale, None)
        else:  # asymmetric: per-row zero points z, removed with the weights' row sums r:
            # out = bias - (scale * z) r + scale * acc     (a rank-1 update, then one pass)
            q = quantize_input(x, scale, zero_point, self.activation)
            acc = kernel.linear(q, 0, packed, self.weight_scale, None)
            shift = (scale * zero_point).reshape(-1, 1).neg_()
            bias = self.bias if self.bias is not None else torch.zeros_like(self.weight_scale)
            out = torch.addmm(bias, shift, self._weight_row_sums().view(1, -1))
            return out.view(acc.shape).addcmul_(acc, scale)
        if self.bias is None:
            return acc.mul_(scale)
        return torch.addcmul(self.bias, acc, scale)

    def spec(self) -> dict:
        return {"type": "linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "weight_bits": self.weight_bits, "activation": self.activation.to_dict(),
                "kernel": self.kernel_name}

    @classmethod
    def from_spec(cls, spec: dict, name: str) -> QuantLinear:
        return cls(spec["in_features"], spec["out_features"], spec["bias"], spec["weight_bits"],
                   ActivationSpec(**spec["activation"]), spec.get("kernel"), name)


class QuantConvNd(_IntegerLayer):
    """A convolution with int8 weights; activations quantized per tensor.

    Zero padding runs inside the integer kernel (as the zero point); other padding modes
    (reflect, replicate, circular) and the asymmetric padding of padding="same" with an even
    kernel are applied to the float input first (`pre_pad`), which quantizes elementwise, so
    the result is the same as padding the integers.
    """

    dims = 2
    type_name = "conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        weight_bits: int = 8,
        activation: ActivationSpec | None = None,
        kernel: str | None = None,
        name: str = "conv",
        pre_pad: tuple[int, ...] = (),
        pad_mode: str = "zeros",
    ):
        super().__init__()
        activation = activation or ActivationSpec()
        if activation.granularity != "tensor":
            raise NetshrinkError(f"layer {name!r}: convolutions quantize activations per tensor")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, self.dims)
        self.geometry = kernels.ConvGeometry(_tuple(stride, self.dims), _tuple(padding, self.dims),
                                             _tuple(dilation, self.dims), groups)
        self.pre_pad, self.pad_mode = tuple(int(p) for p in pre_pad), pad_mode
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self._init_common(out_channels, shape, bias, weight_bits, activation, kernel, name)

    def _pack(self, kernel):
        return kernel.pack_conv(self.weight, self.geometry)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad:
            mode = "constant" if self.pad_mode == "zeros" else self.pad_mode
            x = F.pad(x, self.pre_pad, mode=mode)
        if torch.onnx.is_in_onnx_export():
            from netshrink.quant.onnx_export import export_layer

            return export_layer(self, x)
        kernel = self.kernel(x.device)
        packed = self._packed(kernel, x.device)
        x = x.detach().float()  # integer layers pass no gradient (train with QAT instead)
        scale, zero_point = self._input_qparams(x)
        q = quantize_input(x, scale, zero_point, self.activation)
        out_scale = scale * self.weight_scale
        return kernel.conv(q, int(zero_point), packed, out_scale, self.bias, self.geometry)

    def spec(self) -> dict:
        g = self.geometry
        out = {"type": self.type_name, "in_channels": self.in_channels,
               "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
               "stride": list(g.stride), "padding": list(g.padding),
               "dilation": list(g.dilation), "groups": g.groups, "bias": self.bias is not None,
               "weight_bits": self.weight_bits, "activation": self.activation.to_dict(),
               "kernel": self.kernel_name}
        if self.pre_pad:
            out |= {"pre_pad": list(self.pre_pad), "pad_mode": self.pad_mode}
        return out

    @classmethod
    def from_spec(cls, spec: dict, name: str) -> QuantConvNd:
        return cls(spec["in_channels"], spec["out_channels"], spec["kernel_size"],
                   spec["stride"], spec["padding"], spec["dilation"], spec["groups"],
                   spec["bias"], spec["weight_bits"], ActivationSpec(**spec["activation"]),
                   spec.get("kernel"), name, tuple(spec.get("pre_pad", ())),
                   spec.get("pad_mode", "zeros"))


def _tuple(value, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    value = tuple(int(v) for v in value)
    if len(value) != dims:
        raise NetshrinkError(f"expected {dims} values, got {value}")
    return value


class QuantConv1d(QuantConvNd):
    """A 1-D convolution with int8 weights."""

    dims, type_name = 1, "conv1d"


class QuantConv2d(QuantConvNd):
    """A 2-D convolution with int8 weights."""

    dims, type_name = 2, "conv2d"


class QuantConv3d(QuantConvNd):
    """A 3-D convolution with int8 weights."""

    dims, type_name = 3, "conv3d"


class QuantEmbedding(nn.Module):
    """A lookup table of int8 rows, one scale per row: 4x smaller than float32."""

    def __init__(self, num_embeddings: int, embedding_dim: int, bits: int = 8,
                 padding_idx: int | None = None):
        super().__init__()
        Scheme(bits)
        self.num_embeddings, self.embedding_dim, self.bits = num_embeddings, embedding_dim, bits
        self.padding_idx = padding_idx
        self.weight = nn.Parameter(torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8),
                                   requires_grad=False)
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_float(cls, module: nn.Embedding, bits: int = 8) -> QuantEmbedding:
        scheme = Scheme(bits, symmetric=True, granularity="channel")
        w = module.weight.detach().float()
        scale, zero_point = choose_qparams(w.amin(1), w.amax(1), scheme)
        out = cls(module.num_embeddings, module.embedding_dim, bits, module.padding_idx)
        out.weight.copy_(quantize(w, scale[:, None], zero_point[:, None], scheme))
        out.weight_scale.copy_(scale)
        return out.to(module.weight.device)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(indices, self.weight)
        return rows.float().mul_(self.weight_scale[indices].unsqueeze(-1))

    def spec(self) -> dict:
        return {"type": "embedding", "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "bits": self.bits,
                "padding_idx": self.padding_idx}

    @classmethod
    def from_spec(cls, spec: dict, name: str) -> QuantEmbedding:
        return cls(spec["num_embeddings"], spec["embedding_dim"], spec["bits"],
                   spec.get("padding_idx"))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, bits={self.bits}"


def from_spec(spec: dict, name: str) -> nn.Module:
    """An empty integer module of the kind and shape `spec` describes (weights loaded later)."""
    from netshrink.quant.weight_only import WeightOnlyEmbedding, WeightOnlyLinear

    classes = {"linear": QuantLinear, "conv1d": QuantConv1d, "conv2d": QuantConv2d,
               "conv3d": QuantConv3d, "embedding": QuantEmbedding,
               "weight_only_linear": WeightOnlyLinear,
               "weight_only_embedding": WeightOnlyEmbedding}
    if spec.get("type") not in classes:
        raise NetshrinkError(
            f"unknown quantized layer type {spec.get('type')!r}; upgrade netshrink"
        )
    return classes[spec["type"]].from_spec(spec, name)
