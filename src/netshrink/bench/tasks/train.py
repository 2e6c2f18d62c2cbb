"""The plain "train" task, and `build`: the data, model and training a spec names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import Task
from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    from torch import nn

    from netshrink.data.splits import Splits
    from netshrink.train import TrainConfig


def build(spec: TrialSpec) -> tuple[Splits, nn.Module, TrainConfig]:
    """(splits, model, TrainConfig) for a spec, seeded by spec.seed."""
    from netshrink import data, models
    from netshrink.train import TrainConfig, seed_everything

    splits = data.load(spec.data, seed=spec.seed, **spec.data_args)
    seed_everything(spec.seed)
    model = models.create(spec.model, input_shape=splits.input_shape,
                          num_classes=splits.num_classes, **spec.model_args)
    config = TrainConfig.from_dict({"device": "cpu", **spec.train, "seed": spec.seed})
    return splits, model, config


def check_train(params: dict) -> None:
    if params:
        raise NetshrinkError(
            f"task 'train' takes no params, got {', '.join(sorted(params))}; training options "
            "go under train:, model options under model_args:"
        )


def train_task(spec: TrialSpec, workdir: Path) -> dict:
    """Train the model as the spec says; report accuracy, early stopping and time."""
    from netshrink import measure
    from netshrink.train import fit

    splits, model, config = build(spec)
    result = fit(model, splits, config, log_csv=workdir / "log.csv", progress=False)
    return {
        "test_accuracy": result.test_accuracy,
        "early_stop_iteration": result.early_stop_iteration,
        "early_stop_test_accuracy": result.early_stop_test_accuracy,
        "parameters": measure.count_parameters(model),
        "train_seconds": result.seconds,
    }


TASKS = {"train": Task(train_task, check_train)}
