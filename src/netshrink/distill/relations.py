"""MiniLM's deep self-attention transfer (Wang et al. 2020): match how a layer attends.

For one self-attention layer of the teacher and one of the student (the last of each, as MiniLM
does), with Q, K, V the outputs of their query, key and value projections, split into R
relation heads of width d:

    attention  A = softmax(Q K^T / sqrt(d))      value relation  VR = softmax(V V^T / sqrt(d))
    loss = mean over heads and real query tokens of KL(A_t || A_s) + KL(VR_t || VR_s)

Padded key positions are masked out of every softmax (the `mask` input, an attention mask of
ones and zeros) and padded query positions are left out of the mean. With R equal to the
teacher's (and student's) head count these are exactly MiniLM's attention distributions and
value relations; the student may be narrower than the teacher (fewer heads, after structured
pruning), as only the (tokens x tokens) relations are compared: Q, K and V are split into R
relation heads of their own width / R (MiniLMv2's relation heads), so R must divide both widths.

Q, K and V are captured by forward hooks on the named projection modules
(netshrink.distill.hints.FeatureCapture), so no model is rewritten.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from netshrink.errors import NetshrinkError, reject_unknown_fields


@dataclass(frozen=True)
class Relation:
    """One pair of attention layers whose relations the student learns.

    teacher, student: the (query, key, value) module names of each model's layer.
    heads: the relation heads R (the teacher's head count gives MiniLM's own loss).
    weight: weight of this pair's loss in the total.
    mask: the input (a keyword of the forward) holding the attention mask; None: no padding.
    """

    teacher: tuple[str, str, str]
    student: tuple[str, str, str]
    heads: int
    weight: float = 1.0
    mask: str | None = "attention_mask"

    def __post_init__(self) -> None:
        for role in ("teacher", "student"):
            names = tuple(getattr(self, role))
            if len(names) != 3 or not all(isinstance(n, str) and n for n in names):
                raise NetshrinkError(f"relation {role}={names!r} must name the (query, key, "
                                     "value) modules of one attention layer")
            object.__setattr__(self, role, names)
        if isinstance(self.heads, bool) or not isinstance(self.heads, int) or self.heads < 1:
            raise NetshrinkError(f"relation heads={self.heads!r} must be a positive integer "
                                 "(the teacher's head count for MiniLM's loss)")
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight)
                and self.weight >= 0):
            raise NetshrinkError(f"relation weight={self.weight!r} must be a number >= 0")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["teacher"], out["student"] = list(self.teacher), list(self.student)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> Relation:
        if isinstance(values, Relation):
            return values
        if not isinstance(values, dict):
            raise NetshrinkError(f"a relation must be a mapping, not {type(values).__name__}")
        reject_unknown_fields(cls, values, "relation option")
        return cls(**{k: tuple(v) if k in ("teacher", "student") else v
                      for k, v in values.items()})

    def module_names(self, role: str) -> tuple[str, str, str]:
        return self.teacher if role == "teacher" else self.student


def split_heads(x: torch.Tensor, heads: int, role: str) -> torch.Tensor:
    """(batch, tokens, width) -> (batch, heads, tokens, width / heads)."""
    if x.dim() != 3:
        raise NetshrinkError(f"relation: the {role}'s projection output has shape "
                             f"{tuple(x.shape)}, not (batch, tokens, width)")
    if x.shape[-1] % heads:
        raise NetshrinkError(f"relation: the {role}'s width {x.shape[-1]} is not divisible by "
                             f"heads={heads}; choose relation heads dividing both widths")
    return x.unflatten(-1, (heads, x.shape[-1] // heads)).transpose(1, 2).float()


def log_relation(a: torch.Tensor, b: torch.Tensor, key_mask: torch.Tensor | None
                 ) -> torch.Tensor:
    """log softmax(a b^T / sqrt(d)) over the keys, padded keys excluded."""
    scores = a @ b.transpose(-1, -2) / math.sqrt(a.shape[-1])
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], torch.finfo(scores.dtype).min)
    return F.log_softmax(scores, dim=-1)


def relation_kl(teacher_log: torch.Tensor, student_log: torch.Tensor,
                query_mask: torch.Tensor | None) -> torch.Tensor:
    """KL(teacher || student) per query row, averaged over heads and real query tokens."""
    p = teacher_log.exp()
    kl = (p * (teacher_log - student_log)).sum(-1)  # batch, heads, queries
    if query_mask is None:
        return kl.mean()
    weights = query_mask[:, None, :].to(kl.dtype).expand_as(kl)
    return (kl * weights).sum() / weights.sum().clamp(min=1)


def relation_loss(teacher_qkv: tuple[torch.Tensor, ...], student_qkv: tuple[torch.Tensor, ...],
                  heads: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MiniLM's attention-distribution plus value-relation loss for one pair of layers."""
    tq, tk, tv = (split_heads(t.detach(), heads, "teacher") for t in teacher_qkv)
    sq, sk, sv = (split_heads(s, heads, "student") for s in student_qkv)
    if tq.shape[-2] != sq.shape[-2]:
        raise NetshrinkError(f"relation: teacher and student saw {tq.shape[-2]} and "
                             f"{sq.shape[-2]} tokens; they must read the same inputs")
    keep = None if mask is None else mask.bool()
    attention = relation_kl(log_relation(tq, tk, keep), log_relation(sq, sk, keep), keep)
    values = relation_kl(log_relation(tv, tv, keep), log_relation(sv, sv, keep), keep)
    return attention + values
