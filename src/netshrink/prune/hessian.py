"""The diagonal of the loss Hessian with respect to chosen weights (for Optimal Brain Damage).

Two ways, both of the true Hessian of the mean loss over the given examples:

- `exact_diagonal`: one Hessian-vector product per weight entry (forward-over-reverse, batched
  with vmap), so every h_kk is exact up to floating point. Its cost grows with the number of
  weights; use it for small networks (LeCun et al. had 2,578 free parameters).
- `hutchinson_diagonal`: Hutchinson's estimator diag(H) ~ mean over Rademacher probes v of
  v * (H v) (Bekas, Kokiopoulou and Saad 2007), unbiased, `samples` Hessian-vector products in
  all, whatever the network's size.

Both sum the products batch by batch (the Hessian of a sum is the sum of the Hessians), so
memory holds one batch's activations at a time, and `plan` sizes the batches and the number
of products computed at once from the memory available, measured before anything starts.
Second derivatives of attention go through PyTorch's composite (math) attention kernel: the
fused CPU kernels have no double backward.

(LeCun et al. used the Gauss-Newton / Levenberg-Marquardt approximation of the diagonal, which
drops the terms with second derivatives of the activations; near a minimum it is close to the
exact diagonal computed here.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad, jvp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from netshrink.data.inputs import Inputs, take, to_device
from netshrink.prune.functional import forward, gradients

# A re-iterable of (inputs, targets) batches; inputs are a tensor, a tuple or a dict of tensors.
Batches = Callable[[], Iterable[tuple[Inputs, torch.Tensor]]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MAX_CHUNK = 256  # Hessian-vector products computed at once
MEMORY_FRACTION = 0.25  # of the memory available when the computation starts
# A product's forward-over-reverse pass holds about this many times the activations that a
# plain backward pass saves (primal and tangent of the forward and of the backward).
EXACT_FACTOR, HUTCHINSON_FACTOR = 4, 3


@contextlib.contextmanager
def second_order() -> Iterator[None]:
    """Attention through the math kernel, whose derivatives are differentiable again."""
    with sdpa_kernel([SDPBackend.MATH]):
        yield


@contextlib.contextmanager
def forward_differentiable(model: nn.Module) -> Iterator[None]:
    """oneDNN off while a model holding an nn.LSTM runs: its oneDNN kernel has no forward-mode
    derivative (the exact diagonal's jvp), PyTorch's own LSTM has one. Other models keep it."""
    if not any(isinstance(m, nn.LSTM) for m in model.modules()):
        yield
        return
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was


def available_memory(device: torch.device) -> int:
    """Bytes free on `device` now (CPU: the kernel's MemAvailable; 4 GiB if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def saved_bytes_per_example(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    x: Inputs,
    y: torch.Tensor,
    loss_fn: LossFn,
) -> float:
    """Bytes of activations one backward pass keeps per example (measured on `x`)."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    leaves = {n: w.detach().requires_grad_(True) for n, w in weights.items()}
    with second_order(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_fn(forward(model, leaves, x), y)
    return total / max(1, len(y))


@dataclass(frozen=True)
class Plan:
    """How to compute within the memory budget: examples per batch, products at once."""

    batch_size: int
    chunk: int


def plan(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    x: Inputs,
    y: torch.Tensor,
    loss_fn: LossFn,
    method: str,
    batch_size: int,
    budget: int | None = None,
) -> Plan | None:
    """The largest batch (up to `batch_size`) and chunk that fit in `budget` bytes (default:
    a quarter of the free memory); None when even one example and one product do not."""
    device = next(iter(weights.values())).device
    budget = int(MEMORY_FRACTION * available_memory(device)) if budget is None else budget
    probe = min(len(y), 16)
    per_example = saved_bytes_per_example(model, weights,
                                          to_device(take(x, slice(0, probe)), device),
                                          y[:probe].to(device), loss_fn)
    largest = max(w.numel() for w in weights.values())
    chunk = 1 if method == "hutchinson" else min(MAX_CHUNK, largest)
    factor = HUTCHINSON_FACTOR if method == "hutchinson" else EXACT_FACTOR
    while chunk >= 1:
        batch = int(budget // (chunk * factor * max(per_example, 1.0)))
        if batch >= 1:
            return Plan(min(batch_size, batch), chunk)
        chunk //= 2
    return None


def _basis(start: int, stop: int, n: int, like: torch.Tensor) -> torch.Tensor:
    rows = torch.zeros(stop - start, n, dtype=like.dtype, device=like.device)
    rows[torch.arange(stop - start), torch.arange(start, stop)] = 1
    return rows


def exact_diagonal(
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    batches: Batches,
    loss_fn: LossFn,
    chunk: int = MAX_CHUNK,
) -> dict[str, torch.Tensor]:
    """Exact d2L/dw_k^2 for every entry of every tensor in `weights` (L: mean loss)."""
    total = sum(len(y) for _, y in batches())
    out = {}
    with second_order(), forward_differentiable(model):
        for name, w in weights.items():
            w = w.detach()
            flat, n = w.flatten(), w.numel()
            diag = torch.zeros(n, dtype=w.dtype, device=w.device)
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                basis = _basis(start, stop, n, w)
                for x, y in batches():
                    def loss_of(f, x=x, y=y, name=name, shape=w.shape):
                        out_ = forward(model, {**weights, name: f.view(shape)}, x)
                        return loss_fn(out_, y) * (len(y) / total)

                    def hvp(v, loss_of=loss_of, flat=flat):
                        return jvp(grad(loss_of), (flat,), (v,))[1]

                    products = vmap(hvp)(basis).detach()
                    diag[start:stop] += products[:, start:stop].diagonal()
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
    with second_order():
        for _ in range(samples):
            probes = {n: (torch.randint(0, 2, w.shape, generator=generator) * 2 - 1)
                      .to(w.device, w.dtype) for n, w in leaves.items()}
            for x, y in batches():
                loss = loss_fn(forward(model, leaves, x), y) * (len(y) / total)
                grads = gradients(loss, [leaves[n] for n in names], create_graph=True)
                dot = sum((g * probes[n]).sum() for g, n in zip(grads, names, strict=True))
                hv = gradients(dot, [leaves[n] for n in names])
                for n, h in zip(names, hv, strict=True):
                    sums[n] += probes[n] * h.detach()
    return {n: s / samples for n, s in sums.items()}
