"""What quantization does to each layer type: one handler per type, in one table.

`quantize_` walks the model and asks `handler_for(module)` what to do with each layer:

| layer                          | Dynamic / Static               | QAT                  |
|--------------------------------|--------------------------------|----------------------|
| nn.Linear                      | QuantLinear                    | QATLinear            |
| nn.Conv1d / Conv2d / Conv3d    | QuantConv1d / 2d / 3d          | QATConv1d / 2d / 3d  |
| nn.Embedding                   | QuantEmbedding (int8 rows)     | QATEmbedding         |
| nn.MultiheadAttention          | ProjectedAttention, whose four projections are Linears     |

WeightOnly (netshrink.quant.weight_only): Linear -> WeightOnlyLinear (GPTQ or round to
nearest), Embedding -> WeightOnlyEmbedding; other layers have no weight-only form.

(`nn.TransformerEncoderLayer` / `DecoderLayer` are covered by their attention and Linears.) A
subclass that keeps its parent's forward (MultiheadAttention's `out_proj`) is handled as the
parent; one with a forward of its own is not, since swapping it would drop that forward. Any
other layer holding parameters stays float and is listed in the report with the reason.

Adding a layer type is one `Handler` subclass and one entry in `HANDLERS` (and, for files, its
integer module in `modules.from_spec`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from netshrink.core.attention import ProjectedAttention, decompose
from netshrink.core.swap import base_type
from netshrink.errors import NetshrinkError
from netshrink.quant import weight_only
from netshrink.quant.modules import (
    ActivationSpec,
    QuantConv1d,
    QuantConv2d,
    QuantConv3d,
    QuantEmbedding,
    QuantLinear,
)
from netshrink.quant.observers import make_observer
from netshrink.quant.qat import (
    QATConv1d,
    QATConv2d,
    QATConv3d,
    QATEmbedding,
    QATLinear,
)
from netshrink.quant.scheme import Scheme, quantize
from netshrink.quant.weight_only import WEIGHT_ONLY_TYPES, WeightOnly


@dataclass(frozen=True)
class WeightPlan:
    """How one layer's weight becomes integers: scheme, observer, or a scale learned by QAT."""

    scheme: Scheme
    observer: str = "minmax"
    scale: torch.Tensor | None = None


class Handler:
    """What quantization does to one layer type. Override what the type supports."""

    name = ""
    takes_input_range = True   # Static calibrates its input scale; QAT fake-quantizes its input
    expands = False            # replaced by a float module whose children are handled instead

    def fan_ins(self, module: nn.Module) -> list[int]:
        """Products summed per output (checked against the int32 bound)."""
        return [module.weight[0].numel()]

    def integer(self, module: nn.Module, name: str, weight: WeightPlan,
                activation: ActivationSpec, kernel: str | None) -> nn.Module:
        raise NotImplementedError

    def qat(self, module: nn.Module, weight: Scheme, activation: Scheme, lsq: bool
            ) -> nn.Module:
        raise NotImplementedError

    takes_weight_only = False  # has a weight-only form (netshrink.quant.weight_only)

    def weight_only(self, module: nn.Module, config: WeightOnly,
                    hessian: torch.Tensor | None) -> nn.Module:
        raise NotImplementedError


def quantize_weight(weight: torch.Tensor, plan: WeightPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight, one scale per output channel) of a float weight (as the forward reads it,
    masked: pruned entries are 0 and stay 0)."""
    w = weight.detach().float()
    scale = plan.scale
    if scale is None:
        obs = make_observer(plan.observer, plan.scheme)
        obs.update(w)
        scale, _ = obs.qparams()
    scale = scale.reshape(-1).to(w.device)
    per_out = scale.expand(w.shape[0]) if scale.numel() == 1 else scale
    view = per_out.view(-1, *([1] * (w.dim() - 1)))
    return quantize(w, view, torch.zeros_like(view), plan.scheme), per_out.clone()


def _finish(layer: nn.Module, module: nn.Module, plan: WeightPlan) -> nn.Module:
    """Fill an integer layer from the float `module` (weight, scales, bias), on its device."""
    device = module.weight.device
    layer.check(device)
    weight_int, scale = quantize_weight(module.weight, plan)
    layer = layer.to(device)
    layer.set_weight(weight_int, scale)
    if module.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(module.bias.detach().float())
    return layer


class LinearHandler(Handler):
    name = "linear"

    def integer(
        self,
        module: nn.Module,
        name: str,
        weight: WeightPlan,
        activation: ActivationSpec,
        kernel: str | None,
    ) -> nn.Module:
        layer = QuantLinear(module.in_features, module.out_features, module.bias is not None,
                            weight.scheme.bits, activation, kernel, name)
        return _finish(layer, module, weight)

    def qat(self, module: nn.Module, weight: Scheme, activation: Scheme, lsq: bool) -> nn.Module:
        return QATLinear.from_float(module, weight_scheme=weight, input_scheme=activation,
                                    lsq=lsq)

    takes_weight_only = True

    def weight_only(
        self,
        module: nn.Module,
        config: WeightOnly,
        hessian: torch.Tensor | None,
    ) -> nn.Module:
        return weight_only.quantize_linear(module, config, hessian)


class ConvHandler(Handler):
    """Conv1d / Conv2d / Conv3d, every padding mode, groups (depthwise included)."""

    def __init__(self, dims: int, integer_cls: type, qat_cls: type):
        self.dims, self.integer_cls, self.qat_cls = dims, integer_cls, qat_cls
        self.name = f"conv{dims}d"

    def integer(
        self,
        module: nn.Module,
        name: str,
        weight: WeightPlan,
        activation: ActivationSpec,
        kernel: str | None,
    ) -> nn.Module:
        if activation.granularity != "tensor":
            activation = ActivationSpec(activation.bits, activation.symmetric, "tensor",
                                        activation.static)
        padding, pre_pad = _explicit_padding(module)
        layer = self.integer_cls(module.in_channels, module.out_channels, module.kernel_size,
                                 module.stride, padding, module.dilation, module.groups,
                                 module.bias is not None, weight.scheme.bits, activation,
                                 kernel, name, pre_pad, module.padding_mode)
        return _finish(layer, module, weight)

    def qat(self, module: nn.Module, weight: Scheme, activation: Scheme, lsq: bool) -> nn.Module:
        return self.qat_cls.from_float(module, weight_scheme=weight, input_scheme=activation,
                                       lsq=lsq)


def _explicit_padding(conv: nn.modules.conv._ConvNd) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(zero padding inside the kernel, padding applied to the input first in F.pad's order).

    "same" becomes numbers (the extra one of an even kernel goes after, as PyTorch does);
    non-zero padding modes are always applied first.
    """
    dims = len(conv.kernel_size)
    if conv.padding == "valid":
        padding = (0,) * dims
        before = after = padding
    elif conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        before = tuple(t // 2 for t in total)
        after = tuple(t - t // 2 for t in total)
    else:
        before = after = tuple(conv.padding)
    if conv.padding_mode == "zeros" and before == after:
        return before, ()
    pre_pad: list[int] = []
    for b, a in zip(reversed(before), reversed(after), strict=True):  # last dimension first
        pre_pad += [b, a]
    return (0,) * dims, tuple(pre_pad)


class EmbeddingHandler(Handler):
    """Embedding tables: int8 rows with one scale each (lookups are exact; no input range)."""

    name = "embedding"
    takes_input_range = False

    def fan_ins(self, module: nn.Module) -> list[int]:
        return []

    def integer(
        self,
        module: nn.Module,
        name: str,
        weight: WeightPlan,
        activation: ActivationSpec,
        kernel: str | None,
    ) -> nn.Module:
        if module.max_norm is not None or module.scale_grad_by_freq or module.sparse:
            raise NetshrinkError(f"layer {name!r}: embeddings with max_norm, "
                                 "scale_grad_by_freq or sparse have no integer form; skip it")
        bits = weight.scheme.bits
        if weight.scale is None:
            return QuantEmbedding.from_float(module, bits)
        layer = QuantEmbedding(module.num_embeddings, module.embedding_dim, bits,
                               module.padding_idx)
        scheme = Scheme(bits, symmetric=True, granularity="channel")
        scale = weight.scale.reshape(-1).to(module.weight.device)
        with torch.no_grad():
            layer.weight.copy_(quantize(module.weight.detach().float(), scale[:, None],
                                        torch.zeros_like(scale[:, None]), scheme))
            layer.weight_scale.copy_(scale)
        return layer.to(module.weight.device)

    def qat(self, module: nn.Module, weight: Scheme, activation: Scheme, lsq: bool) -> nn.Module:
        row = Scheme(weight.bits, symmetric=True, granularity="channel")
        return QATEmbedding.from_float(module, weight_scheme=row, lsq=lsq)

    takes_weight_only = True

    def weight_only(
        self,
        module: nn.Module,
        config: WeightOnly,
        hessian: torch.Tensor | None,
    ) -> nn.Module:
        return weight_only.quantize_embedding(module, config)


class AttentionHandler(Handler):
    """nn.MultiheadAttention: decomposed into ProjectedAttention (same function, masks
    carried), whose Linear projections are then quantized like any Linear. The products of
    two activations (Q K^T, softmax(.) V) stay float."""

    name = "attention"
    expands = True

    def fan_ins(self, module: nn.Module) -> list[int]:
        return [module.embed_dim, module.kdim, module.vdim, module.embed_dim]

    def expand(self, module: nn.MultiheadAttention) -> tuple[nn.Module, dict]:
        return decompose(module)


LINEAR = LinearHandler()
CONV = {1: ConvHandler(1, QuantConv1d, QATConv1d), 2: ConvHandler(2, QuantConv2d, QATConv2d),
        3: ConvHandler(3, QuantConv3d, QATConv3d)}
EMBEDDING = EmbeddingHandler()
ATTENTION = AttentionHandler()

# float layer type -> handler
HANDLERS: dict[type, Handler] = {
    nn.Linear: LINEAR, nn.Conv1d: CONV[1], nn.Conv2d: CONV[2], nn.Conv3d: CONV[3],
    nn.Embedding: EMBEDDING, nn.MultiheadAttention: ATTENTION,
}
# fake-quantizing layer type -> handler that converts it to integers
QAT_HANDLERS: dict[type, Handler] = {
    QATLinear: LINEAR, QATConv1d: CONV[1], QATConv2d: CONV[2], QATConv3d: CONV[3],
    QATEmbedding: EMBEDDING,
}
INTEGER_TYPES = (QuantLinear, QuantConv1d, QuantConv2d, QuantConv3d, QuantEmbedding,
                 *WEIGHT_ONLY_TYPES)
# Layers that hold parameters but stay float, and why.
FLOAT_REASONS: dict[type, str] = {
    **{t: "normalization stays float" for t in (
        nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
        nn.InstanceNorm3d, nn.LocalResponseNorm)},
    **{t: "normalization stays float (folded into the layer before it where it can be)"
       for t in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)},
    **{t: "no integer transposed convolution; it stays float" for t in (
        nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)},
    nn.EmbeddingBag: "no integer EmbeddingBag; it stays float",
    nn.PReLU: "activation parameters stay float",
    **{t: "recurrent layers stay float" for t in (nn.RNN, nn.LSTM, nn.GRU)},
    ProjectedAttention: "attention products stay float (its projections are quantized)",
}


def handler_for(module: nn.Module, table: dict[type, Handler] = HANDLERS) -> Handler | None:
    """The handler of `module`'s type: exact, or its parent's when it keeps the parent's
    forward (so a subclass with a forward of its own is never swapped)."""
    kind = base_type(module)
    if kind in table:
        return table[kind]
    for parent in kind.__mro__[1:]:
        if parent in table and kind.forward is parent.forward:
            return table[parent]
    return None


def float_reason(module: nn.Module) -> str | None:
    """Why a layer that holds parameters stays float (None: it holds none directly)."""
    own = [n for n, p in module.named_parameters(recurse=False) if p is not None]
    if not own and not hasattr(module, "parametrizations"):
        return None
    kind = base_type(module)
    for parent in kind.__mro__:
        if parent in FLOAT_REASONS:
            return FLOAT_REASONS[parent]
    if isinstance(module, nn.Linear | nn.modules.conv._ConvNd | nn.Embedding):
        return (f"{kind.__name__} subclasses {kind.__mro__[1].__name__} with a forward of its "
                "own; no handler knows what that forward does (add one in "
                "netshrink.quant.handlers)")
    names = ", ".join(own) or "its parameters"
    return f"no handler for {kind.__name__} ({names} stay float; add one in " \
           "netshrink.quant.handlers)"
