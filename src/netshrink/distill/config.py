"""The distillation configuration: a small frozen dataclass that round-trips to a dict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from netshrink import checks
from netshrink.distill.relations import Relation
from netshrink.errors import NetshrinkError, reject_unknown_fields

# Losses on class logits, and losses on any output (embeddings, regression): the latter match
# the teacher's outputs themselves and use no labels.
LOGIT_LOSSES = ("kl", "cross_entropy", "mse")
OUTPUT_LOSSES = ("cosine", "embedding_mse")
LOSSES = LOGIT_LOSSES + OUTPUT_LOSSES


@dataclass(frozen=True)
class DistillConfig:
    """How the student learns from the teacher (Hinton, Vinyals & Dean 2015; FitNets hints).

    temperature: T of the softmax for teacher and student; the soft loss is scaled by T^2 so its
        gradients keep their size when T changes (unused by "mse").
    alpha: weight of the soft-target loss; the hard-label loss gets 1 - alpha. Unlabeled
        examples (label -1) learn from the soft targets alone.
    loss: on class logits, "kl" (KL(p_T || q_T)), "cross_entropy" (H(p_T, q_T), same gradient)
        or "mse" (logit matching on per-example zero-meaned logits: the high-temperature
        limit); on any output (a sentence embedding, a regression), "cosine" (1 - the cosine
        of the student's output to the teacher's, per example) or "embedding_mse" (their mean
        squared difference): these use no labels (alpha and temperature are unused; training
        labels must be -1) and the result reports the agreement instead of an accuracy.
    hints: (teacher module name, student module name) pairs whose outputs are matched by mean
        squared error, through a learned projection when their shapes differ.
    hint_weight: weight of the summed hint losses.
    cache_dir: folder of cached teacher outputs (computed once, reused across students); None
        runs the teacher at every step.
    jitter: augment each training batch by random shifts of up to this many pixels (the teacher
        then runs on the shifted batch, so it cannot be cached).
    relations: MiniLM's self-attention transfer, one netshrink.distill.Relation (or its dict)
        per pair of attention layers (netshrink.distill.relations), added to the total.
    """

    temperature: float = 4.0
    alpha: float = 0.9
    loss: str = "kl"
    hints: tuple[tuple[str, str], ...] = ()
    hint_weight: float = 1.0
    cache_dir: str | None = None
    jitter: int = 0
    relations: tuple[Relation, ...] = ()

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise NetshrinkError(f"temperature={t!r} must be a positive number (T > 0), e.g. 4")
        checks.real(self.alpha, "alpha", 0.0, 1.0)
        checks.choice(self.loss, "loss", LOSSES)
        checks.real(self.hint_weight, "hint_weight", 0)
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int) or self.jitter < 0:
            raise NetshrinkError(f"jitter={checks.show(self.jitter)} must be a whole number of "
                                 "pixels >= 0")
        if self.cache_dir is not None:
            checks.text(self.cache_dir, "cache_dir")
        if isinstance(self.hints, str | dict) or not isinstance(self.hints, tuple | list):
            raise NetshrinkError(f"hints={checks.show(self.hints)} must be a list of "
                                 "(teacher module, student module) pairs")
        if not all(isinstance(pair, tuple | list) for pair in self.hints):
            raise NetshrinkError(f"hints={checks.show(self.hints)}: each hint is a (teacher "
                                 "module, student module) pair of names")
        hints = tuple(tuple(pair) for pair in self.hints)
        for pair in hints:
            if len(pair) != 2 or not all(isinstance(name, str) for name in pair):
                raise NetshrinkError(
                    f"hint {pair!r} must be a (teacher module, student module) pair of names"
                )
        object.__setattr__(self, "hints", hints)
        if self.cache_dir is not None and self.jitter:
            raise NetshrinkError(
                f"cache_dir with jitter={self.jitter}: teacher outputs for randomly shifted "
                "inputs differ at every step and cannot be cached; drop cache_dir (the teacher "
                "then runs on each shifted batch) or set jitter=0"
            )
        if isinstance(self.relations, Relation | dict | str):
            raise NetshrinkError("relations must be a list of netshrink.distill.Relation")
        object.__setattr__(self, "relations",
                           tuple(Relation.from_dict(r) for r in self.relations))
        if self.cache_dir is not None and self.relations:
            raise NetshrinkError(
                "cache_dir with relations: only the teacher's outputs are cached, not its "
                "attention; drop cache_dir (the teacher then runs at every step) or relations"
            )
        if self.cache_dir is not None and hints:
            raise NetshrinkError(
                "cache_dir with hints: only the teacher's outputs are cached, not its inner "
                "features; drop cache_dir (the teacher then runs at every step) or the hints"
            )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hints"] = [list(pair) for pair in self.hints]
        out["relations"] = [r.to_dict() for r in self.relations]
        return out

    @property
    def matches_outputs(self) -> bool:
        """Whether the loss matches the teacher's outputs themselves (no classes, no labels)."""
        return self.loss in OUTPUT_LOSSES

    @classmethod
    def from_dict(cls, values: dict) -> DistillConfig:
        if not isinstance(values, dict):
            raise NetshrinkError(f"distillation options must be a mapping, not "
                                 f"{type(values).__name__}")
        reject_unknown_fields(cls, values, "distillation option")
        values = dict(values)
        if isinstance(values.get("hints"), list):
            values["hints"] = tuple(tuple(pair) if isinstance(pair, list) else pair
                                    for pair in values["hints"])
        return cls(**values)
