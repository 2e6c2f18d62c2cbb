"""Quantization-aware training: Linear, Conv1d/2d/3d and Embedding that fake-quantize their
weights (and inputs; an embedding's input is integers already).

Fake quantization rounds to the integer grid and back in the forward pass and lets gradients
through by the straight-through estimator (zero where a value is clipped), so training learns
weights that survive rounding. The input range is tracked by a moving-average min-max observer
(Jacob et al. 2018) or learned together with the weights' step sizes (LSQ, Esser et al. 2020:
scale gradients multiplied by 1 / sqrt(N * Q_P), steps initialized to 2 * mean|v| / sqrt(Q_P)).

These are plain modules: train them with `netshrink.train.fit`, then `netshrink.quant.convert`
turns each into an integer layer (QuantLinear, QuantConv1d/2d/3d, QuantEmbedding) with the
learned scales.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.quant.scheme import Scheme, choose_qparams, fake_quantize


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x in the forward pass; its gradient multiplied by `factor` in the backward pass."""
    scaled = x * factor
    return (x - scaled).detach() + scaled


class FakeQuantize(nn.Module):
    """Fake-quantizes inputs (per tensor) or weights (per channel) during training.

    Inputs: the range is a moving average of batch min/max (updated in training mode only) or,
    with `lsq`, a learned step size. Weights: the step is each channel's max |w| / Q_P, or
    learned with `lsq`.
    """

    def __init__(self, scheme: Scheme, channels: int = 1, lsq: bool = False,
                 averaging: float = 0.01, is_weight: bool = False):
        super().__init__()
        self.scheme, self.lsq, self.averaging, self.is_weight = scheme, lsq, averaging, is_weight
        shape = (channels,) if scheme.granularity == "channel" else ()
        self.register_buffer("lo", torch.zeros(shape))
        self.register_buffer("hi", torch.zeros(shape))
        self.register_buffer("zero_point", torch.zeros(shape))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.scale = nn.Parameter(torch.ones(shape), requires_grad=lsq)

    def _view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.scheme.granularity == "channel" and x.dim() > 1:
            return t.view(-1, *([1] * (x.dim() - 1)))
        return t

    def _batch_range(self, x: torch.Tensor):
        if self.scheme.granularity == "channel":
            flat = x.detach().reshape(x.shape[0], -1)
            return flat.amin(1), flat.amax(1)
        return x.detach().min(), x.detach().max()

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        lo, hi = self._batch_range(x)
        self.lo.copy_(lo)
        self.hi.copy_(hi)
        scale, zero_point = choose_qparams(lo, hi, self.scheme)
        if self.lsq:  # the LSQ paper's initial step: 2 * mean|v| / sqrt(Q_P)
            flat = x.detach().abs().reshape(x.shape[0], -1) if self.scheme.granularity == \
                "channel" else x.detach().abs().reshape(1, -1)
            mean_abs = flat.mean(1).reshape(self.scale.shape)
            scale = (2 * mean_abs / math.sqrt(self.scheme.qmax)).clamp(min=1e-8)
        self.scale.copy_(scale)
        self.zero_point.copy_(zero_point)
        self.initialized.fill_(True)

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (scale, zero point) the forward pass uses now (detached)."""
        if self.lsq:
            return self.scale.detach().abs().clamp(min=1e-8), self.zero_point
        return choose_qparams(self.lo, self.hi, self.scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self._initialize(x)
        if self.lsq:
            numel = x[0].numel() if self.is_weight or x.dim() > 1 else x.numel()
            factor = 1.0 / math.sqrt(numel * self.scheme.qmax)
            scale = grad_scale(self.scale.abs().clamp(min=1e-8), factor)
            zero_point = self.zero_point
        else:
            if self.training or self.is_weight:
                self._track(x)
            scale, zero_point = choose_qparams(self.lo, self.hi, self.scheme)
        return fake_quantize(x, self._view(scale, x), self._view(zero_point, x), self.scheme)

    @torch.no_grad()
    def _track(self, x: torch.Tensor) -> None:
        lo, hi = self._batch_range(x)
        if self.is_weight:  # a weight's range is simply its current min and max
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            return
        self.lo.add_(self.averaging * (lo - self.lo))
        self.hi.add_(self.averaging * (hi - self.hi))


class _QATMixin:
    weight_fq: FakeQuantize
    input_fq: FakeQuantize

    def _setup(self, weight_scheme: Scheme, input_scheme: Scheme, lsq: bool, averaging: float):
        self.weight_fq = FakeQuantize(weight_scheme, self.weight.shape[0], lsq, is_weight=True)
        self.input_fq = FakeQuantize(input_scheme, 1, lsq, averaging)

    def qat_spec(self) -> dict:
        return {"weight": self.weight_fq.scheme.to_dict(), "input": self.input_fq.scheme.to_dict(),
                "lsq": self.weight_fq.lsq, "averaging": self.input_fq.averaging}


class QATLinear(nn.Linear, _QATMixin):
    """nn.Linear whose weight and input are fake-quantized."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        weight_scheme: Scheme,
        input_scheme: Scheme,
        lsq: bool = False,
        averaging: float = 0.01,
    ):
        super().__init__(in_features, out_features, bias)
        self._setup(weight_scheme, input_scheme, lsq, averaging)

    @classmethod
    def from_float(cls, module: nn.Linear, **kw: Any) -> QATLinear:
        out = cls(module.in_features, module.out_features, module.bias is not None, **kw)
        out.load_state_dict(module.state_dict(), strict=False)
        return out.to(module.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_fq(x), self.weight_fq(self.weight), self.bias)

    def spec(self) -> dict:
        return {"type": "qat_linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                **self.qat_spec()}


class _QATConv(_QATMixin):
    """What the fake-quantizing convolutions share (the torch class provides the rest)."""

    type_name = ""

    def _qat_init(self, torch_conv: type, args, kwargs, weight_scheme: Scheme,
                  input_scheme: Scheme, lsq: bool, averaging: float) -> None:
        torch_conv.__init__(self, *args, **kwargs)
        self._setup(weight_scheme, input_scheme, lsq, averaging)

    @classmethod
    def from_float(cls, module: nn.modules.conv._ConvNd, **kw):
        out = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                  module.padding, module.dilation, module.groups, module.bias is not None,
                  module.padding_mode, **kw)
        out.load_state_dict(module.state_dict(), strict=False)
        return out.to(module.weight.device)

    def forward(self, x):
        return self._conv_forward(self.input_fq(x), self.weight_fq(self.weight), self.bias)

    def spec(self) -> dict:
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {"type": self.type_name, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": padding,
                "dilation": list(self.dilation), "groups": self.groups,
                "bias": self.bias is not None, "padding_mode": self.padding_mode,
                **self.qat_spec()}


def _qat_conv(torch_conv: type, type_name: str) -> type:
    """A fake-quantizing subclass of `torch_conv` (nn.Conv1d, nn.Conv2d or nn.Conv3d)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, weight_scheme: Scheme,
                 input_scheme: Scheme, lsq: bool = False, averaging: float = 0.01):
        self._qat_init(torch_conv, (in_channels, out_channels, kernel_size, stride, padding,
                                    dilation, groups, bias, padding_mode), {}, weight_scheme,
                       input_scheme, lsq, averaging)

    name = f"QAT{torch_conv.__name__}"
    return type(name, (_QATConv, torch_conv), {
        "__init__": __init__, "type_name": type_name, "__module__": __name__,
        "__qualname__": name, "__doc__": f"{torch_conv.__name__} whose weight and input are "
                                         "fake-quantized."})


QATConv1d = _qat_conv(nn.Conv1d, "qat_conv1d")
QATConv2d = _qat_conv(nn.Conv2d, "qat_conv2d")
QATConv3d = _qat_conv(nn.Conv3d, "qat_conv3d")


class QATEmbedding(nn.Embedding):
    """nn.Embedding whose table is fake-quantized, one scale per row (as QuantEmbedding)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 weight_scheme: Scheme, lsq: bool = False):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.weight_fq = FakeQuantize(weight_scheme, num_embeddings, lsq, is_weight=True)

    @classmethod
    def from_float(cls, module: nn.Embedding, weight_scheme: Scheme, lsq: bool = False,
                   **_: object) -> QATEmbedding:
        out = cls(module.num_embeddings, module.embedding_dim, module.padding_idx,
                  weight_scheme=weight_scheme, lsq=lsq)
        out.load_state_dict(module.state_dict(), strict=False)
        return out.to(module.weight.device)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.weight_fq(self.weight), self.padding_idx)

    def spec(self) -> dict:
        return {"type": "qat_embedding", "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "padding_idx": self.padding_idx,
                "weight": self.weight_fq.scheme.to_dict(), "lsq": self.weight_fq.lsq}


_QAT_CONVS = {"qat_conv1d": QATConv1d, "qat_conv2d": QATConv2d, "qat_conv3d": QATConv3d}


def qat_from_spec(spec: dict) -> nn.Module:
    """An untrained QAT module of the kind and shape `spec` describes."""
    if spec["type"] == "qat_embedding":
        return QATEmbedding(spec["num_embeddings"], spec["embedding_dim"], spec["padding_idx"],
                            weight_scheme=Scheme.from_dict(spec["weight"]), lsq=spec["lsq"])
    kw = {"weight_scheme": Scheme.from_dict(spec["weight"]),
          "input_scheme": Scheme.from_dict(spec["input"]), "lsq": spec["lsq"],
          "averaging": spec["averaging"]}
    if spec["type"] == "qat_linear":
        return QATLinear(spec["in_features"], spec["out_features"], spec["bias"], **kw)
    if spec["type"] not in _QAT_CONVS:
        raise NetshrinkError(f"unknown QAT layer type {spec['type']!r}; upgrade netshrink")
    return _QAT_CONVS[spec["type"]](spec["in_channels"], spec["out_channels"],
                                    spec["kernel_size"], spec["stride"], spec["padding"],
                                    spec["dilation"], spec["groups"], spec["bias"],
                                    spec.get("padding_mode", "zeros"), **kw)
