"""Quantization-aware training: Linear and Conv2d that fake-quantize weights and inputs.

Fake quantization rounds to the integer grid and back in the forward pass and lets gradients
through by the straight-through estimator (zero where a value is clipped), so training learns
weights that survive rounding. The input range is tracked by a moving-average min-max observer
(Jacob et al. 2018) or learned together with the weights' step sizes (LSQ, Esser et al. 2020:
scale gradients multiplied by 1 / sqrt(N * Q_P), steps initialized to 2 * mean|v| / sqrt(Q_P)).

These are plain modules: train them with `netshrink.train.fit`, then `netshrink.quant.convert`
turns each into an integer QuantLinear / QuantConv2d with the learned scales.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

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

    def __init__(self, in_features, out_features, bias=True, *, weight_scheme: Scheme,
                 input_scheme: Scheme, lsq: bool = False, averaging: float = 0.01):
        super().__init__(in_features, out_features, bias)
        self._setup(weight_scheme, input_scheme, lsq, averaging)

    @classmethod
    def from_float(cls, module: nn.Linear, **kw) -> QATLinear:
        out = cls(module.in_features, module.out_features, module.bias is not None, **kw)
        out.load_state_dict(module.state_dict(), strict=False)
        return out.to(module.weight.device)

    def forward(self, x):
        return F.linear(self.input_fq(x), self.weight_fq(self.weight), self.bias)

    def spec(self) -> dict:
        return {"type": "qat_linear", "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                **self.qat_spec()}


class QATConv2d(nn.Conv2d, _QATMixin):
    """nn.Conv2d whose weight and input are fake-quantized."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, weight_scheme: Scheme, input_scheme: Scheme,
                 lsq: bool = False, averaging: float = 0.01):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self._setup(weight_scheme, input_scheme, lsq, averaging)

    @classmethod
    def from_float(cls, module: nn.Conv2d, **kw) -> QATConv2d:
        out = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                  module.padding, module.dilation, module.groups, module.bias is not None, **kw)
        out.load_state_dict(module.state_dict(), strict=False)
        return out.to(module.weight.device)

    def forward(self, x):
        return self._conv_forward(self.input_fq(x), self.weight_fq(self.weight), self.bias)

    def spec(self) -> dict:
        return {"type": "qat_conv2d", "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding),
                "dilation": list(self.dilation), "groups": self.groups,
                "bias": self.bias is not None, **self.qat_spec()}


def qat_from_spec(spec: dict) -> nn.Module:
    """An untrained QAT module of the kind and shape `spec` describes."""
    kw = {"weight_scheme": Scheme.from_dict(spec["weight"]),
          "input_scheme": Scheme.from_dict(spec["input"]), "lsq": spec["lsq"],
          "averaging": spec["averaging"]}
    if spec["type"] == "qat_linear":
        return QATLinear(spec["in_features"], spec["out_features"], spec["bias"], **kw)
    return QATConv2d(spec["in_channels"], spec["out_channels"], spec["kernel_size"],
                     spec["stride"], spec["padding"], spec["dilation"], spec["groups"],
                     spec["bias"], **kw)
