"""The distillation losses, per example, so labeled and unlabeled examples can be weighted apart.

Soft targets (Hinton et al. 2015, section 2): teacher and student softmax at temperature T. The
gradient of the cross-entropy with respect to a student logit z_i is (q_i - p_i) / T, so the loss
is multiplied by T^2 (by the caller) to keep its gradients the same size as T changes. At high T,
with per-example zero-meaned logits, T^2 times that gradient tends to (z_i - v_i) / N: the
gradient of logit matching 1/(2N) * sum_i (z_i - v_i)^2, which `logit_matching_loss` computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

UNLABELED = -1


def _wide(t: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are widened to float32 for the softmax; others are kept."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Teacher probabilities at temperature T, (B, C).

    `teacher_logits` is (B, C) for one teacher or (M, B, C) for an ensemble of M, whose softened
    probabilities are averaged (the paper's ensemble teacher).
    """
    probs = torch.softmax(_wide(teacher_logits) / temperature, dim=-1)
    return probs.mean(0) if probs.dim() == 3 else probs


def soft_target_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float,
    kind: str = "kl",
) -> torch.Tensor:
    """Per-example KL(p_T || q_T) ("kl") or cross-entropy H(p_T, q_T); not yet scaled by T^2.

    Both have the same gradient in the student logits; "kl" is zero when the student matches.
    """
    log_q = F.log_softmax(_wide(student_logits) / temperature, dim=-1)
    cross = -(teacher_probs * log_q).sum(-1)
    if kind == "cross_entropy":
        return cross
    return cross + torch.special.xlogy(teacher_probs, teacher_probs).sum(-1)


def logit_matching_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-example 1/(2N) * sum_i (z_i - v_i)^2 of zero-meaned logits (N classes).

    For an ensemble ((M, B, C) logits) the members' logits are averaged first.
    """
    v = _wide(teacher_logits)
    if v.dim() == 3:
        v = v.mean(0)
    z = _wide(student_logits)
    z = z - z.mean(-1, keepdim=True)
    v = v - v.mean(-1, keepdim=True)
    return 0.5 * (z - v).pow(2).mean(-1)


def hard_label_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the labels, where label -1 marks an unlabeled example (it adds 0).

    Summed over the labeled examples and divided by the batch size, so a batch without labels
    gives 0 (not NaN) and equals F.cross_entropy when every example is labeled.
    """
    labeled = targets != UNLABELED
    per_example = F.cross_entropy(outputs, targets.clamp(min=0), reduction="none")
    return (per_example * labeled).sum() / max(1, len(targets))


def output_loss(student_outputs: torch.Tensor, teacher_outputs: torch.Tensor,
                kind: str = "cosine") -> torch.Tensor:
    """Per-example distance of the student's outputs to the teacher's, for any output shape.

    "cosine": 1 - cos(student, teacher) of each example's flattened output (a sentence
    embedding's own measure: 0 when the directions agree); "embedding_mse": the mean squared
    difference. For an ensemble ((M, B, ...) outputs) the members' outputs are averaged first.
    """
    t = _wide(teacher_outputs)
    if t.dim() == student_outputs.dim() + 1:
        t = t.mean(0)
    s = _wide(student_outputs).flatten(1)
    t = t.flatten(1).to(s.dtype)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(s, t, dim=-1)
    return (s - t).pow(2).mean(-1)


def no_label_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loop's own loss when the student learns from the teacher's outputs alone: zero
    (kept in the graph, so the distillation terms added to it train the student)."""
    return outputs.sum() * 0.0
