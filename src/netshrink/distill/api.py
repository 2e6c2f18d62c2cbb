"""`netshrink.distill(student, teacher, data, config, train_config)`: the one entry point."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from netshrink.data import Splits, first_inputs, tensors_of
from netshrink.data.inputs import call, to_device
from netshrink.distill.augment import Jitter, check_images
from netshrink.distill.cache import TeacherCache
from netshrink.distill.callback import DistillationLoss, agreement, attention_mask
from netshrink.distill.config import DistillConfig
from netshrink.distill.hints import FeatureCapture, make_projection
from netshrink.distill.losses import hard_label_loss, no_label_loss
from netshrink.distill.relations import relation_loss
from netshrink.distill.teachers import as_teacher, member_logits
from netshrink.distill.transfer import check_labels
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainConfig, TrainResult, fit, resolve_device, seed_everything


@dataclass
class DistillResult(TrainResult):
    """The training result, plus where the teacher's outputs came from.

    cache: "hit" or "miss" when cached teacher outputs were used, None when the teacher ran at
    every step; teacher_seconds: time spent loading or computing the cached outputs.
    test_cosine: for the output losses ("cosine", "embedding_mse"), the mean cosine of the
    student's outputs to the teacher's on the test split (test_accuracy and test_loss are then
    NaN: there are no classes to be right about).
    """

    cache: str | None = None
    cache_file: str | None = None
    teacher_seconds: float = 0.0
    test_cosine: float | None = None


def distill(
    student: nn.Module,
    teacher: nn.Module | Sequence[nn.Module],
    data: Splits,
    config: DistillConfig | None = None,
    train_config: TrainConfig | None = None,
    callbacks: Sequence[Callback] = (),
    log_csv: str | os.PathLike | None = None,
    progress: bool | None = None,
    restore_best: bool = False,
) -> DistillResult:
    """Train `student` on the transfer set `data.train` to match `teacher`, in netshrink.train.fit.

    teacher: a model, or a list of models (an ensemble: their softened probabilities are
    averaged). Teacher and student take the same inputs, of any shape (a tensor, a tuple or a
    dict of tensors; see netshrink.data.inputs); jitter needs float images.
    Training labels of -1 mark unlabeled examples (soft targets only). Validation
    (early stopping) and test use the hard labels. With an output loss ("cosine",
    "embedding_mse": a teacher of embeddings or any regression output) labels are ignored,
    the history's rows get "val_cosine" and the result `test_cosine` (agreement with the
    teacher); restore_best is refused there (no validation loss chooses a best state).
    The teacher runs in eval mode and is left
    unchanged (its mode restored, on the training device); the hint hooks are removed
    afterwards, even when training fails.
    """
    if not isinstance(student, nn.Module):
        raise NetshrinkError(f"student must be a torch nn.Module, got {type(student).__name__}")
    teacher = as_teacher(teacher)
    if not isinstance(data, Splits):
        raise NetshrinkError(
            "data must be a netshrink.data.Splits; use netshrink.data.load(name) or "
            "netshrink.data.from_tensors(train, test)"
        )
    config = config or DistillConfig()
    train_config = train_config or TrainConfig()
    if not isinstance(config, DistillConfig):
        raise NetshrinkError(f"config must be a DistillConfig, got {type(config).__name__}")
    if config.matches_outputs:
        if restore_best:
            raise NetshrinkError(f"restore_best with loss={config.loss!r}: there is no "
                                 "validation loss to choose a best state by; drop restore_best")
    else:
        check_labels(data)
    if config.jitter:
        check_images(first_inputs(data.train, 1))
    device = resolve_device(train_config.device)
    teacher_was_training = teacher.training
    teacher.to(device).eval()
    student.to(device)
    try:
        return _distill(student, teacher, data, config, train_config, callbacks, log_csv,
                        progress, restore_best, device)
    finally:
        teacher.train(teacher_was_training)


def _distill(student, teacher, data, config, train_config, callbacks, log_csv, progress,
             restore_best, device) -> DistillResult:
    seed_everything(train_config.seed)
    projections = _check_and_project(student, teacher, data, config, device)
    inputs, _ = tensors_of(data.train)
    cached, cache_state, cache_file, teacher_seconds = None, None, None, 0.0
    if config.cache_dir is not None:
        cache = TeacherCache(config.cache_dir)
        start = time.perf_counter()
        cached = cache.logits(teacher, inputs, device)
        teacher_seconds = time.perf_counter() - start
        cache_state = "hit" if cache.hits else "miss"
        cache_file = str(cache.last_path)
    outputs = config.matches_outputs
    val_inputs = tensors_of(data.val)[0] if outputs and len(data.val) else None
    loss_callback = DistillationLoss(teacher, config, cached, inputs if cached is not None
                                     else None, projections, val_inputs)
    plan: list[Callback] = [Jitter(config.jitter)] if config.jitter else []
    plan += [loss_callback, *callbacks]
    try:
        result = fit(student, data, train_config, plan,
                     loss_fn=no_label_loss if outputs else hard_label_loss, log_csv=log_csv,
                     progress=progress, restore_best=restore_best)
    finally:
        loss_callback.close()
    values = {f.name: getattr(result, f.name) for f in dataclasses.fields(TrainResult)}
    test_cosine = None
    if outputs:
        values.update(test_accuracy=math.nan, test_loss=math.nan,
                      early_stop_iteration=None, early_stop_test_accuracy=None, best_state=None)
        test_cosine = agreement(student, teacher, tensors_of(data.test)[0], device)
    return DistillResult(**values, cache=cache_state, cache_file=cache_file,
                         teacher_seconds=teacher_seconds, test_cosine=test_cosine)


def check_inputs(student: nn.Module, teacher: nn.Module | Sequence[nn.Module], data: Splits,
                 config: DistillConfig | None = None, device: str = "cpu") -> None:
    """Refuse bad input before anything is written: class counts, labels, hint module names."""
    config = config or DistillConfig()
    if not config.matches_outputs:
        check_labels(data)
    teacher = as_teacher(teacher)
    resolved = resolve_device(device)
    teacher.to(resolved)
    student.to(resolved)
    _check_and_project(student, teacher, data, config, resolved)


def _run(forward, role: str, data: Splits) -> torch.Tensor:
    """One forward pass on the data's inputs; a mismatch becomes one clear error."""
    try:
        return forward()
    except (RuntimeError, TypeError, IndexError) as err:
        raise NetshrinkError(
            f"the {role} does not fit the inputs of {data.name!r} (per example "
            f"{data.input_shape}): {str(err).splitlines()[0]}; was it built for another "
            f"data set?"
        ) from None


@torch.no_grad()
def _check_and_project(student: nn.Module, teacher: nn.Module, data: Splits,
                       config: DistillConfig, device: torch.device) -> list[nn.Module]:
    """Run teacher and student on two examples: check classes (or output shapes), hints and
    relations, build projections."""
    x = to_device(first_inputs(data.train, 2), device)
    teacher_names = [t for t, _ in config.hints] + [n for r in config.relations
                                                    for n in r.teacher]
    student_names = [s for _, s in config.hints] + [n for r in config.relations
                                                    for n in r.student]
    was_training = student.training
    student.eval()
    try:
        with FeatureCapture(teacher, teacher_names, "teacher") as t_cap, \
                FeatureCapture(student, student_names, "student") as s_cap:
            teacher_out = _run(lambda: member_logits(teacher, x), "teacher", data)
            student_out = _run(lambda: call(student, x), "student", data)
            features = [(s_cap.take(s), t_cap.take(t)) for t, s in config.hints]
            for relation in config.relations:
                relation_loss(tuple(t_cap.features[n] for n in relation.teacher),
                              tuple(s_cap.features[n] for n in relation.student),
                              relation.heads, attention_mask(x, relation.mask))
    finally:
        student.train(was_training)
    if config.matches_outputs:
        if teacher_out.shape[1:] != student_out.shape:
            raise NetshrinkError(
                f"loss={config.loss!r} matches outputs, but the teacher outputs "
                f"{tuple(teacher_out.shape[2:])} per example and the student "
                f"{tuple(student_out.shape[1:])}; they must agree"
            )
        return [make_projection(s.shape[1:], t.shape[1:]).to(device) for s, t in features]
    t_classes, s_classes = teacher_out.shape[-1], student_out.shape[-1]
    if t_classes != s_classes:
        raise NetshrinkError(
            f"the teacher predicts {t_classes} classes but the student {s_classes}; build the "
            f"student with num_classes={t_classes}"
        )
    if s_classes != data.num_classes:
        raise NetshrinkError(
            f"teacher and student predict {s_classes} classes but the data set "
            f"{data.name!r} has {data.num_classes}"
        )
    return [make_projection(s.shape[1:], t.shape[1:]).to(device) for s, t in features]
