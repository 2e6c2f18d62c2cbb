"""Pruning scores: how much each weight matters. Higher score = kept; the lowest are removed.

Each method is a small class whose `scores(ctx)` returns {weight name: tensor of scores}. The
scores are computed on a functional copy of the weights (`ctx.weights`, already masked), so
scoring never changes the model; `prune_` turns scores into a mask with an exact count.

Method                      score (kept when high)                     data
Random                      uniform random                             no
Magnitude                   |w|                                        no
OBD (LeCun et al. 1990)     h_kk w^2 / 2 (h_kk: Hessian diagonal)       yes
Taylor (Molchanov et al.)   |w dL/dw|                                  yes
SNIP (Lee et al. 2019)      |w dL/dw| / sum |w dL/dw|, one minibatch    yes
GraSP (Wang et al. 2020)    w (H g); the paper removes the largest     yes
                            S(-w) = -w (H g), i.e. keeps the largest w (H g)
SynFlow (Tanaka et al.)     dR/dw w, R = 1' prod|W| 1; 100 iterations   no
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netshrink import checks
from netshrink.data.inputs import Inputs, Shape, count, filled, take, to_device
from netshrink.errors import NetshrinkError
from netshrink.prune import hessian
from netshrink.prune.functional import divided, forward, gradients, output_tensors

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MAX_SYNFLOW_ITERATIONS = 10_000  # the paper uses 100; each is a forward and backward pass


@dataclass
class Context:
    """What a score may use. `weights` are the current (masked) prunable weights, detached.

    inputs: the training examples' inputs (a tensor, a tuple or a dict of tensors; see
    netshrink.data.inputs) with their `targets`; input_shape: one example's shape (for
    data-free scores), as `Splits.input_shape` holds it.
    """

    model: nn.Module
    weights: dict[str, torch.Tensor]
    inputs: Inputs | None
    targets: torch.Tensor | None
    loss_fn: LossFn
    generator: torch.Generator
    input_shape: Shape | None = None

    @property
    def device(self) -> torch.device:
        return next(iter(self.weights.values())).device

    def sample(self, examples: int | None) -> tuple[Inputs, torch.Tensor]:
        """`examples` examples drawn at random (seeded) without replacement; None: all."""
        assert self.inputs is not None and self.targets is not None
        n = count(self.inputs)
        if examples is None or examples >= n:
            return self.inputs, self.targets
        idx = torch.randperm(n, generator=self.generator)[:examples]
        return take(self.inputs, idx), self.targets[idx]

    def batches(self, x: Inputs, y: torch.Tensor, size: int
                ) -> Callable[[], Iterator[tuple[Inputs, torch.Tensor]]]:
        """A re-iterable of (inputs, targets) batches of `size`, on the weights' device."""
        def run():
            for start in range(0, len(y), size):
                part = slice(start, start + size)
                yield to_device(take(x, part), self.device), y[part].to(self.device)
        return run


class Score:
    """A pruning criterion. `iterations` > 1: prune in that many steps, re-scoring each time,
    on an exponential schedule of density (SynFlow)."""

    name = "score"
    needs_data = False
    train_mode = False  # score with the model in train mode (BatchNorm batch statistics)
    iterations = 1

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def scoring_seed(seed: int) -> int:
    """The seed of a score's random numbers, derived from `seed` so that they never replay the
    stream that initialized the weights: a model built after torch.manual_seed(0) and scored
    with torch.Generator().manual_seed(0) would get "random" scores equal to its own uniform
    initialization draws, and random pruning would keep mostly positive weights."""
    state = np.random.SeedSequence([int(seed), 0x6E657473]).generate_state(1, dtype=np.uint64)
    return int(state[0]) & (2**63 - 1)


@contextlib.contextmanager
def scoring_mode(model: nn.Module, train: bool, seed: int) -> Iterator[None]:
    """Run with the model in train/eval mode, the global RNG forked and seeded (dropout), and
    the buffers (BatchNorm running statistics) restored afterwards."""
    was_training = model.training
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    devices = [b.device for b in model.buffers() if b.device.type == "cuda"]
    with torch.random.fork_rng(devices=sorted({d.index or 0 for d in devices})):
        torch.manual_seed(scoring_seed(seed))
        model.train(train)
        try:
            yield
        finally:
            model.train(was_training)
            with torch.no_grad():
                for name, b in model.named_buffers():
                    b.copy_(saved[name])


def _gradients(ctx: Context, x: Inputs, y: torch.Tensor, batch_size: int,
               temperature: float = 1.0, create_graph: bool = False
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(leaves, dL/dw) of the mean loss over (x, y), with logits divided by `temperature`."""
    leaves = {n: w.detach().clone().requires_grad_(True) for n, w in ctx.weights.items()}
    names = list(leaves)
    total = {n: torch.zeros_like(w) for n, w in leaves.items()}
    for xb, yb in ctx.batches(x, y, batch_size)():
        out = forward(ctx.model, leaves, xb)
        loss = ctx.loss_fn(divided(out, temperature), yb) * (len(yb) / len(y))
        grads = gradients(loss, [leaves[n] for n in names], create_graph=create_graph)
        for n, g in zip(names, grads, strict=True):
            total[n] = total[n] + g
    return leaves, total


class Random(Score):
    """Uniform random scores: the baseline every criterion must beat."""

    name = "random"

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        return {n: torch.rand(w.shape, generator=ctx.generator).to(w.device)
                for n, w in ctx.weights.items()}


class Magnitude(Score):
    """|w| (Han et al. 2015; the Lottery Ticket paper's criterion)."""

    name = "magnitude"

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        return {n: w.abs() for n, w in ctx.weights.items()}


class Taylor(Score):
    """|w dL/dw|: the first-order Taylor estimate of the loss change when w is removed.

    The gradient is of the mean loss over `examples` training examples (seeded sample; None:
    all the data given), computed in train mode.
    """

    name = "taylor"
    needs_data = True
    train_mode = True

    def __init__(self, examples: int | None = 2048, batch_size: int = 256):
        self.examples = checks.optional_integer(examples, "taylor examples", 1)
        self.batch_size = checks.positive_integer(batch_size, "taylor batch_size")

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        x, y = ctx.sample(self.examples)
        _, grads = _gradients(ctx, x, y, self.batch_size)
        return {n: (w * grads[n]).abs() for n, w in ctx.weights.items()}


class SNIP(Score):
    """Connection sensitivity (Lee, Ajanthan and Torr 2019): s = |g| / sum |g| with
    g = dL/dc at c = 1 for the gate c on each weight, i.e. g = w dL/dw, on one random
    minibatch of `batch_size` training examples (the paper: 100 on MNIST, 128 on CIFAR)."""

    name = "snip"
    needs_data = True
    train_mode = True

    def __init__(self, batch_size: int = 128):
        self.batch_size = checks.positive_integer(batch_size, "snip batch_size")

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        x, y = ctx.sample(self.batch_size)
        _, grads = _gradients(ctx, x, y, self.batch_size)
        sensitivity = {n: (w * grads[n]).abs() for n, w in ctx.weights.items()}
        norm = sum(s.sum() for s in sensitivity.values())
        return {n: s / norm if norm > 0 else s for n, s in sensitivity.items()}


class GraSP(Score):
    """Gradient Signal Preservation (Wang, Zhang and Grosse 2020).

    g = dL/dw and the Hessian-gradient product Hg on `samples_per_class` examples of each
    class, with the logits divided by `temperature` (the paper: 10 per class, T = 200). The
    paper's score is S(-w) = -w (Hg) and it removes the weights with the largest S; we return
    w (Hg), so keeping the highest is the same rule.
    """

    name = "grasp"
    needs_data = True
    train_mode = True

    def __init__(self, samples_per_class: int = 10, temperature: float = 200.0,
                 batch_size: int = 256):
        self.samples_per_class = checks.positive_integer(samples_per_class,
                                                         "grasp samples_per_class")
        self.temperature = checks.real(temperature, "grasp temperature", 0, low_open=True)
        self.batch_size = checks.positive_integer(batch_size, "grasp batch_size")

    def _balanced(self, ctx: Context) -> tuple[Inputs, torch.Tensor]:
        assert ctx.inputs is not None and ctx.targets is not None
        order = torch.randperm(len(ctx.targets), generator=ctx.generator)
        chosen = []
        for label in ctx.targets.unique(sorted=True):
            members = order[ctx.targets[order] == label]
            chosen.append(members[: self.samples_per_class])
        idx = torch.cat(chosen)
        return take(ctx.inputs, idx), ctx.targets[idx]

    def _scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        x, y = self._balanced(ctx)
        _, g = _gradients(ctx, x, y, self.batch_size, self.temperature)
        g = {n: t.detach() for n, t in g.items()}
        leaves, g2 = _gradients(ctx, x, y, self.batch_size, self.temperature,
                                create_graph=True)
        names = list(leaves)
        z = sum((g2[n] * g[n]).sum() for n in names)
        hg = gradients(z, [leaves[n] for n in names])
        return {n: ctx.weights[n] * h for n, h in zip(names, hg, strict=True)}

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        with hessian.second_order():  # the Hessian-gradient product differentiates twice
            return self._scores(ctx)


class OBD(Score):
    """Optimal Brain Damage (LeCun, Denker and Solla 1990): saliency h_kk w_k^2 / 2.

    h_kk is the diagonal of the Hessian of the mean training loss (eval mode) over `examples`
    examples (None: all given): exact (one Hessian-vector product per weight) when the model
    has at most `exact_limit` prunable weights and one product fits in memory, or with
    hessian="exact"; otherwise Hutchinson's estimator with `samples` Rademacher probes
    (hessian="hutchinson"), also under "auto" for a model with an operation that has no
    forward-mode derivative (nn.EmbeddingBag), which the exact products need. Batches (at
    most `batch_size` examples) and the number of products computed at once are sized from
    the memory free when it starts, so it never asks for more (netshrink.prune.hessian).
    `last_method` says which ran.
    """

    name = "obd"
    needs_data = True

    def __init__(self, hessian: str = "auto", examples: int | None = None,
                 samples: int = 64, exact_limit: int = 5_000, batch_size: int = 1024):
        checks.choice(hessian, "obd hessian", ("auto", "exact", "hutchinson"))
        for label, value in (("samples", samples), ("exact_limit", exact_limit),
                             ("batch_size", batch_size), ("examples", examples)):
            checks.optional_integer(value, f"obd {label}", 1)
        self.hessian, self.examples, self.samples = hessian, examples, samples
        self.exact_limit, self.batch_size = exact_limit, batch_size
        self.last_method: str | None = None

    def method_for(self, weights: dict[str, torch.Tensor]) -> str:
        """exact or hutchinson by size alone (`diagonal` also asks whether exact fits)."""
        if self.hessian != "auto":
            return self.hessian
        size = sum(w.numel() for w in weights.values())
        return "exact" if size <= self.exact_limit else "hutchinson"

    def diagonal(self, ctx: Context) -> dict[str, torch.Tensor]:
        x, y = ctx.sample(self.examples)
        if self.method_for(ctx.weights) == "exact":
            fits = hessian.plan(ctx.model, ctx.weights, x, y, ctx.loss_fn, "exact",
                                self.batch_size)
            if fits is not None or self.hessian == "exact":
                try:
                    return self._run(ctx, x, y, "exact", fits)
                except RuntimeError as err:  # an op without a forward-mode derivative
                    if self.hessian == "exact":  # (nn.EmbeddingBag) fails the exact jvp
                        raise NetshrinkError(
                            f"obd: the exact Hessian needs forward-mode derivatives, which an "
                            f"operation of this model lacks ({str(err).splitlines()[0]}); use "
                            "hessian='hutchinson' (reverse mode only) or 'auto'") from None
        # hutchinson asked for, or under "auto" the exact products do not fit or cannot run
        return self._run(ctx, x, y, "hutchinson", hessian.plan(
            ctx.model, ctx.weights, x, y, ctx.loss_fn, "hutchinson", self.batch_size))

    def _run(self, ctx: Context, x: Inputs, y: torch.Tensor, method: str,
             fits: hessian.Plan | None) -> dict[str, torch.Tensor]:
        """The diagonal by `method` on (x, y), in the batches `fits` sized (None: none fit)."""
        if fits is None:
            raise NetshrinkError(
                f"obd: even one example's {method} Hessian product does not fit in a quarter "
                "of the free memory; use fewer examples or a smaller model")
        self.last_method = method
        batches = ctx.batches(x, y, fits.batch_size)
        if method == "exact":
            return hessian.exact_diagonal(ctx.model, ctx.weights, batches, ctx.loss_fn,
                                          fits.chunk)
        return hessian.hutchinson_diagonal(ctx.model, ctx.weights, batches, ctx.loss_fn,
                                           self.samples, ctx.generator)

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        h = self.diagonal(ctx)
        return {n: h[n] * w.pow(2) / 2 for n, w in ctx.weights.items()}


class SynFlow(Score):
    """Iterative Synaptic Flow Pruning (Tanaka, Kunin, Yamins and Ganguli 2020), data-free.

    The network is linearized: every weight replaced by its absolute value (in float64),
    BatchNorm in eval mode (a per-channel scale |gamma| / sqrt(running_var + eps)), the input is
    all ones, and R = sum of the outputs (of every output tensor, for a tuple or dict). With
    biases="zero" (default) biases, BatchNorm shifts and running means are zeroed, so R is
    exactly the paper's 1' prod_l |W_l| 1 and the conservation law holds; biases="abs" uses
    |b| instead, as the authors' code does. The score is dR/dw * w for the masked absolute
    weights; `iterations` rounds (100 in the paper) remove weights on an exponential schedule
    of density. The model's own weights are never touched, so their signs are kept.

    Data-free: only the shape of one input is used, from `input_shape`, from the data when
    some is given, or from a zoo model's spec; a tuple or dict of shapes gets ones in each.
    The all-ones input is float, so SynFlow applies to models whose inputs are floating point
    (images, features). A model that takes token ids or other integer inputs (an Embedding
    first) has no all-ones input to linearize, and synflow refuses it with an error: prune it
    by magnitude or by a data-driven score (taylor, snip, grasp, obd).
    """

    name = "synflow"

    def __init__(self, iterations: int = 100, biases: str = "zero"):
        self.iterations = checks.integer(iterations, "synflow iterations", 1,
                                         MAX_SYNFLOW_ITERATIONS)
        self.biases = checks.choice(biases, "synflow biases", ("zero", "abs"))

    def _linearized(self, model: nn.Module) -> dict[str, torch.Tensor]:
        out = {}
        for name, p in model.named_parameters():
            shift = name.rpartition(".")[2] == "bias"
            out[name] = (torch.zeros_like(p, dtype=torch.float64)
                         if shift and self.biases == "zero" else p.detach().abs().double())
        for name, b in model.named_buffers():
            if not b.is_floating_point():
                out[name] = b
            elif name.endswith("running_mean") and self.biases == "zero":
                out[name] = torch.zeros_like(b, dtype=torch.float64)
            else:
                out[name] = b.detach().abs().double()
        return out

    def scores(self, ctx: Context) -> dict[str, torch.Tensor]:
        if ctx.input_shape is None:
            raise NetshrinkError(
                "synflow needs the shape of one input: pass input_shape=(C, H, W), or data "
                "(only its shape is used), or use a model built by netshrink.models.create"
            )
        model = ctx.model
        linear = self._linearized(model)
        leaves = {n: w.detach().abs().double().requires_grad_(True)
                  for n, w in ctx.weights.items()}
        for alias in _tied_aliases(model, leaves):
            linear.pop(alias, None)  # functional_call refuses two values for one tied tensor
        linear.update(leaves)
        ones = filled(ctx.input_shape, 1.0, torch.float64, ctx.device)
        was_training = model.training
        model.eval()
        try:
            outputs = output_tensors(forward(model, linear, ones))
        except (RuntimeError, TypeError, IndexError) as err:
            raise NetshrinkError(
                f"synflow runs the model on an all-ones float input of shape "
                f"{ctx.input_shape} and the model failed on it: {str(err).splitlines()[0]}. "
                "SynFlow needs a model whose inputs are floating point; a model of token ids "
                "or other integer inputs cannot be linearized: prune it by magnitude or by a "
                "data-driven score (taylor, snip, grasp, obd)"
            ) from None
        finally:
            model.train(was_training)
        if not outputs:
            raise NetshrinkError("synflow: the model's forward returned no floating-point "
                                 "tensor to sum")
        r = sum(t.sum() for t in outputs)
        if not math.isfinite(float(r.detach())):
            raise NetshrinkError("synflow: R overflowed even in float64; the model is too deep")
        names = list(leaves)
        grads = gradients(r, [leaves[n] for n in names])
        return {n: (g * leaves[n]).detach() for n, g in zip(names, grads, strict=True)}


def _tied_aliases(model: nn.Module, leaves: dict[str, torch.Tensor]) -> list[str]:
    """The other names of parameters tied to one of `leaves` (an embedding whose weight is the
    output layer's): functional_call gives them the leaf's value through the tie."""
    names: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return [n for group in names.values() if len(group) > 1 and any(g in leaves for g in group)
            for n in group if n not in leaves]


METHODS: dict[str, type[Score]] = {
    cls.name: cls for cls in (Random, Magnitude, OBD, Taylor, SNIP, GraSP, SynFlow)
}


def make(method: str | Score, **options: Any) -> Score:
    """A score from its name and options, or `method` itself when it is a Score already."""
    if isinstance(method, Score):
        if options:
            raise NetshrinkError("options go to the Score's constructor, not to prune_")
        return method
    key = str(method).lower()
    if key not in METHODS:
        raise NetshrinkError(f"unknown pruning method {method!r}; choose from "
                             f"{', '.join(METHODS)}")
    accepted = sorted(set(inspect.signature(METHODS[key]).parameters) - {"self"})
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NetshrinkError(f"bad option for method {key!r}: {', '.join(unknown)}; it takes "
                             f"{', '.join(accepted) or 'no options'}")
    try:
        return METHODS[key](**options)
    except TypeError as err:
        raise NetshrinkError(f"bad option for method {key!r}: {err}") from None


__all__ = ["METHODS", "OBD", "SNIP", "Context", "GraSP", "Magnitude", "Random", "Score",
           "SynFlow", "Taylor", "make"]
