"""Calibration observers: watch example tensors, then propose the range a scheme should cover.

- "minmax": the smallest and largest value seen. Nothing is clipped; one outlier widens every step.
- "moving_average": min and max of each batch, averaged exponentially (the range QAT tracks).
- "percentile": the p-th percentile of |x| (or the two tails), clipping the rarest values.
- "mse": the clipping range that minimizes the mean squared quantization error on the values
  seen (a grid search over shrink factors of the min-max range), trading clipping error
  against rounding error.

The sample-based observers ("percentile", "mse") keep a uniform random sample of at most
`max_samples` values per scale (seeded, so calibration is reproducible).
"""

from __future__ import annotations

import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.scheme import Scheme, choose_qparams

OBSERVERS = ("minmax", "moving_average", "percentile", "mse")


class Observer:
    """Base class: `update(x)` with example tensors, then `qparams()` -> (scale, zero_point)."""

    def __init__(self, scheme: Scheme):
        if scheme.granularity == "row":
            raise NetshrinkError(
                "a 'row' granularity has one scale per input row, chosen at run time; "
                "calibrate with granularity 'tensor' or use dynamic quantization"
            )
        self.scheme = scheme
        self.seen = 0

    def _groups(self, x: torch.Tensor) -> torch.Tensor:
        """`x` as (number of scales, values per scale)."""
        x = x.detach().float()
        if self.scheme.granularity == "channel" and x.dim() > 1:
            return x.reshape(x.shape[0], -1)
        return x.reshape(1, -1)

    def update(self, x: torch.Tensor) -> None:
        if x.numel() == 0:
            raise NetshrinkError("an observer was given an empty tensor; calibrate on real data")
        self._update(self._groups(x))
        self.seen += 1

    def _update(self, groups: torch.Tensor) -> None:
        raise NotImplementedError

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, hi), each of shape (number of scales,)."""
        raise NotImplementedError

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero_point), each of shape (number of scales,)."""
        if not self.seen:
            raise NetshrinkError("the observer has seen no data; run calibration batches first")
        lo, hi = self.range()
        return choose_qparams(lo, hi, self.scheme)


class MinMax(Observer):
    def __init__(self, scheme: Scheme):
        super().__init__(scheme)
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None

    def _update(self, groups: torch.Tensor) -> None:
        lo, hi = groups.amin(1), groups.amax(1)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo, self.hi = torch.minimum(self.lo, lo), torch.maximum(self.hi, hi)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lo, self.hi


class MovingAverageMinMax(MinMax):
    """min/max per batch, averaged: range <- range + averaging * (batch range - range)."""

    def __init__(self, scheme: Scheme, averaging: float = 0.01):
        super().__init__(scheme)
        if not 0 < averaging <= 1:
            raise NetshrinkError(f"averaging={averaging} must be in (0, 1]")
        self.averaging = averaging

    def _update(self, groups: torch.Tensor) -> None:
        lo, hi = groups.amin(1), groups.amax(1)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.lo + self.averaging * (lo - self.lo)
            self.hi = self.hi + self.averaging * (hi - self.hi)


class _Sampled(Observer):
    """Keeps a uniform random sample (drawn with replacement) of the values seen, per scale."""

    def __init__(self, scheme: Scheme, max_samples: int = 1 << 16, seed: int = 0):
        super().__init__(scheme)
        self.max_samples = int(max_samples)
        self.sample: torch.Tensor | None = None
        self.count = 0
        self.generator = torch.Generator().manual_seed(seed)

    def _pick(self, values: torch.Tensor, k: int) -> torch.Tensor:
        if values.shape[1] <= k:
            return values
        idx = torch.randint(values.shape[1], (k,), generator=self.generator)  # with replacement
        return values[:, idx]

    def _update(self, groups: torch.Tensor) -> None:
        groups = groups.cpu()
        n = groups.shape[1]
        if self.sample is None:
            self.sample, self.count = self._pick(groups, self.max_samples), n
            return
        total = self.count + n
        keep_old = round(self.max_samples * self.count / total)
        old = self._pick(self.sample, keep_old)
        new = self._pick(groups, self.max_samples - old.shape[1])
        self.sample, self.count = torch.cat([old, new], dim=1), total


class Percentile(_Sampled):
    """Clip at the `percentile`-th percentile of |x| (symmetric) or of each tail."""

    def __init__(self, scheme: Scheme, percentile: float = 99.99, **kw: int):
        super().__init__(scheme, **kw)
        if not 50 < percentile <= 100:
            raise NetshrinkError(f"percentile={percentile} must be in (50, 100]")
        self.q = percentile / 100

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.sample
        if self.scheme.symmetric:
            hi = torch.quantile(s.abs(), self.q, dim=1)
            return -hi, hi
        return torch.quantile(s, 1 - self.q, dim=1), torch.quantile(s, self.q, dim=1)


class MSE(_Sampled):
    """The clipping range [r*lo, r*hi] (r on a grid in (0, 1]) of least squared error."""

    def __init__(self, scheme: Scheme, grid: int = 100, **kw: int):
        super().__init__(scheme, **kw)
        self.grid = int(grid)

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.sample
        lo, hi = s.amin(1), s.amax(1)
        best_err = torch.full_like(lo, float("inf"))
        best_r = torch.ones_like(lo)
        for i in range(1, self.grid + 1):
            r = i / self.grid
            scale, zp = choose_qparams(r * lo, r * hi, self.scheme)
            err = _squared_error(s, scale[:, None], zp[:, None], self.scheme)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_r = torch.where(better, torch.full_like(best_r, r), best_r)
        return best_r * lo, best_r * hi


@torch.no_grad()
def _squared_error(x, scale, zero_point, scheme: Scheme) -> torch.Tensor:
    """Mean squared quantization error of each row of `x`."""
    q = torch.round(x / scale).add_(zero_point).clamp_(scheme.qmin, scheme.qmax)
    return q.sub_(zero_point).mul_(scale).sub_(x).pow_(2).mean(1)


def make_observer(name: str, scheme: Scheme, **kw: float) -> Observer:
    """An observer by name: minmax, moving_average, percentile or mse."""
    classes = {"minmax": MinMax, "moving_average": MovingAverageMinMax, "percentile": Percentile,
               "mse": MSE}
    if name not in classes:
        raise NetshrinkError(f"observer={name!r} is not one of {', '.join(OBSERVERS)}")
    return classes[name](scheme, **kw)
