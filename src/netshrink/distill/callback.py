"""The distillation loss as a callback of the one training loop.

The loop computes the student's outputs and the hard-label loss; this callback's `loss` hook
adds the soft-target (or logit-matching) loss against the teacher's outputs on the same batch
(or, for a teacher of embeddings, the distance of the outputs themselves), the hint losses
and MiniLM's attention relations, and returns the weighted total. The teacher either runs on
the batch (after any augmentation) or its outputs are looked up by example index in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from netshrink.data.inputs import Inputs, call, count, equal, take, to_device
from netshrink.distill.config import DistillConfig
from netshrink.distill.hints import FeatureCapture, hint_loss
from netshrink.distill.losses import (
    UNLABELED,
    logit_matching_loss,
    output_loss,
    soft_target_loss,
    soft_targets,
)
from netshrink.distill.relations import relation_loss
from netshrink.distill.teachers import member_logits
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainState


class DistillationLoss(Callback):
    """total = (1 - alpha) * hard + mean_i(w_i * soft_i) + hint_weight * sum(hints)
    + sum(relation weight * relation loss).

    w_i = alpha for a labeled example and 1 for an unlabeled one (label -1); soft_i is
    T^2 * KL (or cross-entropy) at temperature T, or the logit-matching loss for "mse". For
    the output losses ("cosine", "embedding_mse") total = mean_i(distance_i) + hints +
    relations (the loop's own loss is then zero).
    val_inputs: inputs on which each evaluation adds "val_cosine" (the mean cosine of the
    student's outputs to the teacher's) to the history row, for the output losses.
    cached_logits: the teacher's (M, N, C) logits on `train_inputs`, looked up by index; the
    batch is checked against `train_inputs` so augmented inputs never meet cached outputs.
    projections: one module per hint (in `config.hints` order), trained with the student.
    """

    def __init__(
        self,
        teacher: nn.Module,
        config: DistillConfig,
        cached_logits: torch.Tensor | None = None,
        train_inputs: Inputs | None = None,
        projections: Sequence[nn.Module] = (),
        val_inputs: Inputs | None = None,
    ):
        if cached_logits is not None and train_inputs is None:
            raise ValueError("cached_logits need the train_inputs they were computed on")
        self.teacher = teacher
        self.config = config
        self.cached = cached_logits
        self.train_inputs = train_inputs
        self.projections = nn.ModuleList(projections)
        self._student_capture: FeatureCapture | None = None
        self._teacher_capture: FeatureCapture | None = None
        self._relation_captures: tuple[FeatureCapture, FeatureCapture] | None = None
        self.val_inputs = val_inputs

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.projections.parameters())

    def on_fit_start(self, state: TrainState) -> None:
        if self.cached is not None:
            self.cached = self.cached.to(state.device)
        else:
            self.teacher.to(state.device).eval()
        self.projections.to(state.device)
        if self.config.hints:
            teacher_names = [t for t, _ in self.config.hints]
            student_names = [s for _, s in self.config.hints]
            self._teacher_capture = FeatureCapture(self.teacher, teacher_names, "teacher")
            self._student_capture = FeatureCapture(state.model, student_names, "student")
        if self.config.relations:
            self._relation_captures = (
                FeatureCapture(self.teacher, _relation_names(self.config, "teacher"), "teacher"),
                FeatureCapture(state.model, _relation_names(self.config, "student"), "student"))

    def loss(
        self,
        state: TrainState,
        inputs: Inputs,
        targets: torch.Tensor,
        indices: torch.Tensor,
        outputs: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        cfg = self.config
        teacher_logits = self._teacher_logits(inputs, indices)
        if teacher_logits.shape[-2:] != outputs.shape:
            raise NetshrinkError(
                f"teacher outputs {tuple(teacher_logits.shape[-2:])} but student outputs "
                f"{tuple(outputs.shape)} for this batch; they must predict the same classes"
            )
        if cfg.matches_outputs:
            total = loss + output_loss(outputs, teacher_logits, cfg.loss).mean()
        else:
            if cfg.loss == "mse":
                soft = logit_matching_loss(outputs, teacher_logits)
            else:
                t = cfg.temperature
                probs = soft_targets(teacher_logits, t)
                soft = t * t * soft_target_loss(outputs, probs, t, cfg.loss)
            weight = torch.where(targets == UNLABELED, 1.0, cfg.alpha)
            total = (1.0 - cfg.alpha) * loss + (weight * soft).mean()
        if cfg.relations:
            total = total + self._relations(inputs)
        if cfg.hints:
            for (t_name, s_name), projection in zip(cfg.hints, self.projections, strict=True):
                student_feature = self._student_capture.take(s_name)
                teacher_feature = self._teacher_capture.take(t_name)
                total = total + cfg.hint_weight * hint_loss(projection, student_feature,
                                                            teacher_feature)
        return total

    def _relations(self, inputs: Inputs) -> torch.Tensor:
        teacher_capture, student_capture = self._relation_captures
        total = 0.0
        for relation in self.config.relations:
            t = tuple(teacher_capture.take(n) for n in relation.teacher)
            s = tuple(student_capture.take(n) for n in relation.student)
            total = total + relation.weight * relation_loss(t, s, relation.heads,
                                                            attention_mask(inputs, relation.mask))
        return total

    def on_eval(self, state: TrainState, metrics: dict) -> None:
        if self.config.matches_outputs and self.val_inputs is not None and \
                count(self.val_inputs) > 0:
            metrics["val_cosine"] = agreement(state.model, self.teacher, self.val_inputs,
                                              state.device)

    def _teacher_logits(self, inputs: Inputs, indices: torch.Tensor) -> torch.Tensor:
        if self.cached is None:
            self.teacher.eval()
            return member_logits(self.teacher, inputs)
        expected = take(self.train_inputs, indices.cpu())
        if not equal(inputs, expected):
            raise NetshrinkError(
                "this batch's inputs differ from the stored training examples (augmentation "
                "or jitter?): cached teacher outputs belong to the unchanged examples. Run "
                "without cache_dir so the teacher sees each augmented batch"
            )
        return self.cached[:, indices.to(self.cached.device)]

    def on_fit_end(self, state: TrainState) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hint hooks (idempotent; also called when training fails)."""
        for capture in (self._student_capture, self._teacher_capture,
                        *(self._relation_captures or ())):
            if capture is not None:
                capture.close()
        self._student_capture = self._teacher_capture = self._relation_captures = None


def _relation_names(config: DistillConfig, role: str) -> list[str]:
    names = [n for r in config.relations for n in r.module_names(role)]
    return list(dict.fromkeys(names))


def attention_mask(inputs: Inputs, key: str | None) -> torch.Tensor | None:
    """The attention mask among keyword inputs (None when `key` is None), or a clear error."""
    if key is None:
        return None
    if not isinstance(inputs, dict) or key not in inputs:
        raise NetshrinkError(f"relation mask={key!r}: the inputs have no {key!r} keyword; name "
                             "the attention mask input, or set mask=None for unpadded inputs")
    return inputs[key]


@torch.no_grad()
def agreement(student: nn.Module, teacher: nn.Module, inputs: Inputs,
              device: torch.device | str = "cpu", batch_size: int = 256) -> float:
    """Mean cosine of the student's outputs to the teacher's on `inputs` (eval mode, restored)."""
    was_training = student.training
    student.eval()
    total, n = 0.0, count(inputs)
    try:
        for start in range(0, n, batch_size):
            batch = to_device(take(inputs, slice(start, start + batch_size)), device)
            distance = output_loss(call(student, batch), member_logits(teacher, batch))
            total += float((1.0 - distance).sum())
    finally:
        student.train(was_training)
    return total / max(1, n)
