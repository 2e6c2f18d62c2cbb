"""How real numbers map to small integers: bits, symmetric or not, one scale per tensor/channel/row.

    q = clamp(round(x / scale) + zero_point, qmin, qmax)        x ≈ (q - zero_point) * scale

Round-to-nearest with clamping, never the textbook `floor(128 * x / a)`: floor biases every
value down by half a step on average, and at x = a it gives 128, one past int8's largest value.

Symmetric schemes are signed and narrow (8 bits: -127..127, zero point 0), so +a and -a are
both exact. Asymmetric schemes are unsigned (8 bits: 0..255) with an integer zero point, so a
range such as [0, 6] after a ReLU uses every level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from netshrink.errors import NetshrinkError

GRANULARITIES = ("tensor", "channel", "row")
MIN_BITS, MAX_BITS = 2, 8
# The smallest scale we hand out: a tensor of zeros gets this instead of 0 (no division by 0).
TINY_SCALE = 1e-12


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme.

    bits: 2 to 8.
    symmetric: signed, zero point 0 (weights); else unsigned with a zero point (activations).
    granularity: "tensor" (one scale), "channel" (one per slice along dimension 0: a weight's
    output channels) or "row" (one per row of the last dimension: an activation's tokens).
    """

    bits: int = 8
    symmetric: bool = True
    granularity: str = "tensor"

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not (
            MIN_BITS <= self.bits <= MAX_BITS
        ):
            raise NetshrinkError(
                f"bits={self.bits!r} is not supported; use an integer from {MIN_BITS} to "
                f"{MAX_BITS} (the integer kernels take 8-bit operands)"
            )
        if self.granularity not in GRANULARITIES:
            raise NetshrinkError(
                f"granularity={self.granularity!r} is not one of {', '.join(GRANULARITIES)}"
            )

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.symmetric else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    @property
    def levels(self) -> int:
        return self.qmax - self.qmin + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Scheme:
        return cls(**values)


def reduce_dims(x: torch.Tensor, scheme: Scheme) -> tuple[int, ...] | None:
    """The dimensions one scale spans (None: all of them)."""
    if scheme.granularity == "tensor" or x.dim() == 0:
        return None
    if scheme.granularity == "channel":
        return tuple(range(1, x.dim()))
    return (x.dim() - 1,)


def tensor_range(x: torch.Tensor, scheme: Scheme) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max) of `x` per scale of the scheme, shaped to broadcast against `x`."""
    dims = reduce_dims(x, scheme)
    if dims is None:
        return x.min(), x.max()
    return x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)


def choose_qparams(
    lo: torch.Tensor, hi: torch.Tensor, scheme: Scheme
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) that cover [lo, hi] (widened to include 0, so 0 is exact)."""
    lo = torch.as_tensor(lo, dtype=torch.float32).clamp(max=0)
    hi = torch.as_tensor(hi, dtype=torch.float32).clamp(min=0)
    if scheme.symmetric:
        scale = torch.maximum(-lo, hi) / scheme.qmax
        scale = scale.clamp(min=TINY_SCALE)
        return scale, torch.zeros_like(scale)
    scale = ((hi - lo) / (scheme.qmax - scheme.qmin)).clamp(min=TINY_SCALE)
    zero_point = (scheme.qmin - torch.round(lo / scale)).clamp(scheme.qmin, scheme.qmax)
    return scale, zero_point


def quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: Scheme
) -> torch.Tensor:
    """Integers of `x` (round half to even, then clamp), as int8 (symmetric) or uint8."""
    q = torch.clamp(torch.round(x / scale) + zero_point, scheme.qmin, scheme.qmax)
    return q.to(torch.int8 if scheme.symmetric else torch.uint8)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """Real values of integers `q`: (q - zero_point) * scale."""
    return (q.to(torch.float32) - zero_point) * scale


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass, the identity in the backward pass (straight-through)."""
    return x + (torch.round(x) - x).detach()


def fake_quantize(
    x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, scheme: Scheme
) -> torch.Tensor:
    """quantize then dequantize, differentiable by the straight-through estimator.

    The gradient to `x` is 1 inside the representable range and 0 where `x` is clipped; the
    gradient to `scale` (when it requires one) is LSQ's (Esser et al. 2020): round(v) - v inside,
    qmin - z or qmax - z at the clip, with v = x / scale.
    """
    q = torch.clamp(round_ste(x / scale) + zero_point, scheme.qmin, scheme.qmax)
    return (q - zero_point) * scale


def quantization_error_bound(scale: torch.Tensor) -> torch.Tensor:
    """The largest |x - dequantize(quantize(x))| for an x inside the representable range."""
    return scale / 2
