"""Deletion curves (LeCun et al. 1990's experiment): loss and accuracy of a trained network as
a growing fraction of its weights is deleted in order of a score, without retraining (ranked
once) and with retraining (prune, retrain, re-score, as OBD's procedure iterates)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from netshrink.data import Splits
from netshrink.prune import select
from netshrink.prune.api import prune_, score_weights
from netshrink.prune.mask import apply_mask, prunable
from netshrink.train import TrainConfig, evaluate, fit


def measure(model: nn.Module, data: Splits) -> dict:
    """Training loss (the objective OBD predicts) and accuracy, and test loss and accuracy."""
    device = next(model.parameters()).device
    train_loss, train_acc = evaluate(model, data.train, device)
    test_loss, test_acc = evaluate(model, data.test, device)
    return {"train_loss": train_loss, "train_accuracy": train_acc, "test_loss": test_loss,
            "test_accuracy": test_acc}


def one_shot_curve(model: nn.Module, data: Splits, method: str, fractions: Sequence[float],
                   seed: int = 0, **options: Any) -> list[dict]:
    """Delete the lowest-scored weights (scored once, on `model`) at each fraction; no
    retraining. For OBD also the predicted loss: loss before + sum of deleted saliencies."""
    scores = score_weights(model, method, data, seed=seed, **options)
    names = list(prunable(model))
    everything = {n: torch.ones_like(scores[n], dtype=torch.bool) for n in names}
    base = measure(model, data)
    rows = []
    for fraction in fractions:
        keep = select.select(scores, everything, select.units_for(names, fraction, "global",
                                                                  {}))
        trial = copy.deepcopy(model)
        apply_mask(trial, keep)
        row = {"mode": "one-shot", "fraction": fraction, **measure(trial, data)}
        if method == "obd":
            removed = sum(float(scores[n][~keep[n]].sum()) for n in names)
            row["predicted_train_loss"] = base["train_loss"] + removed
        rows.append(row)
    return rows


def iterative_curve(model: nn.Module, data: Splits, method: str, fractions: Sequence[float],
                    retrain: TrainConfig, seed: int = 0, **options: Any) -> list[dict]:
    """For each fraction in increasing order: prune `model` to it (re-scored on the current,
    retrained weights), measure, retrain with `retrain`, measure again."""
    model = copy.deepcopy(model)
    rows = []
    for fraction in sorted(fractions):
        if fraction > 0:
            prune_(model, method, data, sparsity=fraction, seed=seed, **options)
        before = measure(model, data)
        fit(model, data, retrain, progress=False)
        after = measure(model, data)
        rows.append({"mode": "iterative", "fraction": fraction,
                     **{f"{k}_before": v for k, v in before.items()},
                     **{f"{k}_after": v for k, v in after.items()}})
    return rows
