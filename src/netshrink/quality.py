"""How closely a compressed sentence encoder agrees with the original, on the same sentences.

    figures = netshrink.quality.agreement(reference, candidate)   # (N, D) embeddings each

- cosine: per sentence, the cosine of the candidate's embedding to the reference's; reported
  as the mean and the 5th percentile (the worst twentieth of the sentences);
- neighbours: for each sentence, its k nearest other sentences by cosine among the N, under
  the reference and under the candidate; the overlap |A & B| / k, averaged (what a search
  index built on the candidate would return differently);
- spearman: Spearman's rank correlation between the two models' cosine similarities of all
  N (N - 1) / 2 pairs of sentences (what a ranking or clustering built on them would keep).

Quality is measured against the original float model, not against labels: a perfect copy
scores 1 on all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from netshrink.errors import NetshrinkError

NEIGHBOURS = 10
PERCENTILE = 0.05


@dataclass(frozen=True)
class Agreement:
    """The agreement figures of a candidate's embeddings with the reference's."""

    cosine_mean: float
    cosine_p5: float
    neighbours: float
    spearman: float
    sentences: int
    k: int = NEIGHBOURS

    def to_dict(self) -> dict:
        return asdict(self)


def _check(reference: torch.Tensor, candidate: torch.Tensor, k: int) -> None:
    if reference.dim() != 2 or reference.shape != candidate.shape:
        raise NetshrinkError(f"reference and candidate must be (sentences, dims) embeddings of "
                             f"one shape, got {tuple(reference.shape)} and "
                             f"{tuple(candidate.shape)}")
    if reference.shape[0] <= k:
        raise NetshrinkError(f"neighbour overlap at k={k} needs more than {k} sentences, got "
                             f"{reference.shape[0]}")


def cosines(reference: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Each sentence's cosine between the candidate's embedding and the reference's."""
    return F.cosine_similarity(candidate.double(), reference.double(), dim=-1)


def similarities(embeddings: torch.Tensor) -> torch.Tensor:
    """(N, N) cosine similarities of every pair of sentences."""
    unit = F.normalize(embeddings.double(), dim=-1)
    return unit @ unit.T


def neighbour_overlap(reference: torch.Tensor, candidate: torch.Tensor,
                      k: int = NEIGHBOURS) -> float:
    """Mean over sentences of |top-k neighbours (reference) & top-k (candidate)| / k."""
    _check(reference, candidate, k)
    n = reference.shape[0]

    def top(embeddings):
        sim = similarities(embeddings)
        sim.fill_diagonal_(-torch.inf)  # a sentence is not its own neighbour
        return sim.topk(k, dim=1).indices

    a, b = top(reference), top(candidate)
    hits = torch.zeros(n, n, dtype=torch.bool)
    hits.scatter_(1, a, True)
    return float(hits.gather(1, b).sum(1).double().mean() / k)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(len(values), dtype=values.dtype)
    return ranks


def spearman(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """Spearman's rho between the two models' similarities of all pairs of sentences."""
    _check(reference, candidate, 1)
    rows, cols = torch.triu_indices(reference.shape[0], reference.shape[0], offset=1)
    a = _ranks(similarities(reference)[rows, cols])
    b = _ranks(similarities(candidate)[rows, cols])
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def agreement(reference: torch.Tensor, candidate: torch.Tensor,
              k: int = NEIGHBOURS) -> Agreement:
    """Every figure of the module docstring, for embeddings of the same N sentences."""
    _check(reference, candidate, k)
    cos = cosines(reference, candidate)
    return Agreement(float(cos.mean()), float(torch.quantile(cos, PERCENTILE)),
                     neighbour_overlap(reference, candidate, k), spearman(reference, candidate),
                     reference.shape[0], k)
