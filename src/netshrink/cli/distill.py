"""`netshrink distill`: train a student from saved teacher files (one, or several: an ensemble)."""

from __future__ import annotations

import argparse

from netshrink.cli.options import (
    add_train_options,
    data_and_model,
    finite_float,
    integer,
    load_splits,
    load_teachers,
    out_dir,
    pct,
    train_config,
    write_json,
)
from netshrink.errors import NetshrinkError


def add_distill(sub: argparse._SubParsersAction) -> None:
    from netshrink.distill import DistillConfig
    from netshrink.distill.config import LOSSES

    d = DistillConfig()
    p = sub.add_parser(
        "distill", help="distill a student from teacher model files",
        description="Train --model (the student) to match the teachers' soft targets "
        "(Hinton et al. 2015). Several teacher files make an ensemble.")
    p.add_argument("--teacher", required=True, metavar="FILE[,FILE...]",
                   help="teacher model file(s) written by netshrink; several = an ensemble")
    add_train_options(p)
    p.set_defaults(model=None)  # --model lenet300 unless --student names a file
    p.add_argument("--student", default=None, metavar="FILE",
                   help="start from this saved model instead of a fresh --model (a pruned file "
                        "keeps its zeros: distillation as the retraining after pruning)")
    p.add_argument("--temperature", type=finite_float, default=d.temperature)
    p.add_argument("--alpha", type=finite_float, default=d.alpha,
                   help="weight of the soft-target loss (1 - alpha: hard labels)")
    p.add_argument("--loss", default=d.loss, choices=LOSSES)
    p.add_argument("--hint", action="append", metavar="TEACHER_MODULE:STUDENT_MODULE",
                   help="match a teacher module's output with a student module's (repeatable)")
    p.add_argument("--hint-weight", type=finite_float, default=d.hint_weight)
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="cache the teacher's outputs in DIR (reused by later students)")
    p.add_argument("--jitter", type=integer, default=0, help="shift inputs by up to N pixels")
    p.add_argument("--unlabeled", action="store_true",
                   help="ignore the training labels: learn from soft targets only")
    p.add_argument("--omit-class", type=integer, action="append", default=[], metavar="C",
                   help="leave class C out of the transfer set (repeatable)")
    p.add_argument("--out", default="runs/distill", help="folder for model, log and results")
    p.set_defaults(run=run_distill)


def _hints(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items or []:
        teacher, sep, student = item.partition(":")
        if not sep or not teacher or not student:
            raise NetshrinkError(f"--hint {item!r} must look like TEACHER_MODULE:STUDENT_MODULE")
        pairs.append((teacher, student))
    return tuple(pairs)


def _data_and_student(args):
    """The data set and the student: a fresh zoo model, or a saved file (its masks replayed)."""
    if args.student is None:
        args.model = args.model or "lenet300"
        return data_and_model(args)
    if args.model or args.arg or args.init != "default":
        raise NetshrinkError("--student FILE starts from a saved model; drop --model, --arg "
                             "and --init (they build a fresh one)")
    import netshrink

    return load_splits(args), netshrink.load(args.student)


def _size(model) -> str:
    """Parameters, and the density of the prunable weights when some are masked."""
    from netshrink import measure
    from netshrink.prune import density

    text = f"{measure.count_parameters(model):,d} parameters"
    if _masked(model):
        text += f", {100 * density(model):.1f}% of the prunable weights kept (masked)"
    return text


def _masked(model) -> bool:
    from netshrink.prune import current_mask

    return current_mask(model).size() > 0


def run_distill(args: argparse.Namespace) -> int:
    import netshrink
    from netshrink.distill import DistillConfig, distill, transfer_set
    from netshrink.distill.api import check_inputs
    from netshrink.train import evaluate, resolve_device

    files, teachers = load_teachers(args.teacher)
    config = DistillConfig(temperature=args.temperature, alpha=args.alpha, loss=args.loss,
                           hints=_hints(args.hint), hint_weight=args.hint_weight,
                           cache_dir=args.cache, jitter=args.jitter)
    train = train_config(args)
    splits, student = _data_and_student(args)
    transfer = transfer_set(splits, drop_labels=args.unlabeled, omit_classes=args.omit_class)
    check_inputs(student, teachers, transfer, config, train.device)
    folder = out_dir(args.out, files=("model.safetensors", "config.json", "result.json"))
    device = resolve_device(train.device)
    teacher_acc = [evaluate(t.to(device), splits.test, device)[1] for t in teachers]
    listing = ", ".join(f"{f} ({pct(a)})" for f, a in zip(files, teacher_acc, strict=True))
    print(f"teachers: {listing}")
    print(f"student: {args.student or args.model} ({_size(student)}), "
          f"transfer set {len(transfer.train):,d} examples, T={config.temperature:g}, "
          f"alpha={config.alpha:g}, loss={config.loss}")
    write_json(folder / "config.json", {
        "command": "distill", "teachers": files, "student_file": args.student,
        "model": getattr(student, "netshrink_spec", None),
        "data": args.data, "val_size": len(splits.val), "unlabeled": args.unlabeled,
        "omit_classes": args.omit_class, "distill": config.to_dict(), "train": train.to_dict()})
    result = distill(student, teachers, transfer, config, train, log_csv=folder / "log.csv",
                     progress=None if not args.no_progress else False)
    netshrink.save(student, folder / "model.safetensors",
                   metadata={"data": args.data, "test_accuracy": result.test_accuracy,
                             "teachers": files})
    write_json(folder / "result.json", {**result.to_dict(), "teacher_test_accuracy": teacher_acc})
    if _masked(student):
        print(f"student after training: {_size(student)}")
    if result.cache:
        print(f"teacher outputs: cache {result.cache} ({result.cache_file}, "
              f"{result.teacher_seconds:.1f} s)")
    print(f"early stopping at iteration {result.early_stop_iteration} "
          f"(test accuracy there {pct(result.early_stop_test_accuracy)})")
    print(f"saved {folder / 'model.safetensors'}, {folder / 'log.csv'}")
    print(f"test accuracy: {pct(result.test_accuracy)} (teacher"
          f"{'s' if len(files) > 1 else ''}: {', '.join(pct(a) for a in teacher_acc)})")
    return 0
