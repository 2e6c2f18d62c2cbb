"""The diagonal of the loss Hessian with respect to chosen weights (for Optimal Brain Damage).

Two ways, both of the true Hessian of the mean loss over the given examples:

- `exact_diagonal`: one Hessian-vector product per weight entry (forward-over-reverse, batched
  with vmap), so every h_kk is exact up to floating point. Its cost grows with the number of
  weights; use it for small networks (LeCun et al. had 2,578 free parameters).
- `hutchinson_diagonal`: Hutchinson's estimator diag(H) ~ mean over Rademacher probes v of
  v * (H v) (Bekas, Kokiopoulou and Saad 2007), unbiased, `samples` Hessian-vector products in
  all, whatever the network's size.

(LeCun et al. used the Gauss-Newton / Levenberg-Marquardt approximation of the diagonal, which
drops the terms with second derivatives of the activations; near a minimum it is close to the
exact diagonal computed here.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _mean_loss(model, weights, batches: Batches, loss_fn: LossFn, total: int) -> torch.Tensor:
    loss = 0.0
    for x, y in batches():
        out = functional_call(model, weights, (x,), strict=False)
        loss = loss + loss_fn(out, y) * (len(y) / total)
    return loss


def exact_diagonal(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    batches: Batches,
    loss_fn: LossFn,
    chunk: int = 256,
) -> dict[str, torch.Tensor]:
    """Exact d2L/dw_k^2 for every entry of every tensor in `weights` (L: mean loss)."""
    total = sum(len(y) for _, y in batches())
    out = {}
    for name, w in weights.items():
        w = w.detach()

        def loss_of(flat: torch.Tensor, name=name, shape=w.shape) -> torch.Tensor:
            return _mean_loss(model, {**weights, name: flat.view(shape)}, batches, loss_fn,
                              total)

        flat = w.flatten()

        def hvp(v: torch.Tensor, flat=flat) -> torch.Tensor:
            return jvp(grad(loss_of), (flat,), (v,))[1]

        n = w.numel()
        diag = torch.empty(n, dtype=w.dtype, device=w.device)
        eye = torch.eye(n, dtype=w.dtype, device=w.device)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            products = vmap(hvp)(eye[start:stop]).detach()
            diag[start:stop] = products[:, start:stop].diagonal()
        out[name] = diag.view_as(w)
    return out


def hutchinson_diagonal(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    batches: Batches,
    loss_fn: LossFn,
    samples: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Hutchinson's unbiased estimate of the Hessian diagonal from `samples` probes."""
    total = sum(len(y) for _, y in batches())
    leaves = {n: w.detach().clone().requires_grad_(True) for n, w in weights.items()}
    names = list(leaves)
    sums = {n: torch.zeros_like(w) for n, w in leaves.items()}
    for _ in range(samples):
        probes = {n: (torch.randint(0, 2, w.shape, generator=generator) * 2 - 1)
                  .to(w.device, w.dtype) for n, w in leaves.items()}
        for x, y in batches():
            out = functional_call(model, leaves, (x,), strict=False)
            loss = loss_fn(out, y) * (len(y) / total)
            grads = torch.autograd.grad(loss, [leaves[n] for n in names], create_graph=True)
            dot = sum((g * probes[n]).sum() for g, n in zip(grads, names, strict=True))
            hv = torch.autograd.grad(dot, [leaves[n] for n in names])
            for n, h in zip(names, hv, strict=True):
                sums[n] += probes[n] * h.detach()
    return {n: s / samples for n, s in sums.items()}
