"""The distillation loss as a callback of the one training loop.

The loop computes the student's outputs and the hard-label loss; this callback's `loss` hook
adds the soft-target (or logit-matching) loss against the teacher's outputs on the same batch,
and the hint losses, and returns the weighted total. The teacher either runs on the batch (after
any augmentation) or its outputs are looked up by example index in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from netshrink.data.inputs import Inputs, equal, take
from netshrink.distill.config import DistillConfig
from netshrink.distill.hints import FeatureCapture, hint_loss
from netshrink.distill.losses import (
    UNLABELED,
    logit_matching_loss,
    soft_target_loss,
    soft_targets,
)
from netshrink.distill.teachers import member_logits
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainState


class DistillationLoss(Callback):
    """total = (1 - alpha) * hard + mean_i(w_i * soft_i) + hint_weight * sum(hints).

    w_i = alpha for a labeled example and 1 for an unlabeled one (label -1); soft_i is
    T^2 * KL (or cross-entropy) at temperature T, or the logit-matching loss for "mse".
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

    def loss(self, state, inputs, targets, indices, outputs, loss):
        cfg = self.config
        teacher_logits = self._teacher_logits(inputs, indices)
        if teacher_logits.shape[-2:] != outputs.shape:
            raise NetshrinkError(
                f"teacher outputs {tuple(teacher_logits.shape[-2:])} but student outputs "
                f"{tuple(outputs.shape)} for this batch; they must predict the same classes"
            )
        if cfg.loss == "mse":
            soft = logit_matching_loss(outputs, teacher_logits)
        else:
            t = cfg.temperature
            probs = soft_targets(teacher_logits, t)
            soft = t * t * soft_target_loss(outputs, probs, t, cfg.loss)
        weight = torch.where(targets == UNLABELED, 1.0, cfg.alpha)
        total = (1.0 - cfg.alpha) * loss + (weight * soft).mean()
        if cfg.hints:
            for (t_name, s_name), projection in zip(cfg.hints, self.projections, strict=True):
                student_feature = self._student_capture.take(s_name)
                teacher_feature = self._teacher_capture.take(t_name)
                total = total + cfg.hint_weight * hint_loss(projection, student_feature,
                                                            teacher_feature)
        return total

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
        for capture in (self._student_capture, self._teacher_capture):
            if capture is not None:
                capture.close()
        self._student_capture = self._teacher_capture = None
