"""Schedules: the cubic curve of Zhu and Gupta, gradual pruning in the loop, iterative rounds."""

import itertools

import pytest
import torch

from netshrink import NetshrinkError, models
from netshrink.prune import (
    GradualPruning,
    cubic_sparsity,
    current_mask,
    density,
    iterative_prune,
    prune_,
    round_sparsity,
)
from netshrink.train import TrainConfig, fit


def mlp(digits):
    torch.manual_seed(0)
    return models.create("mlp", input_shape=digits.input_shape, widths=(32,))


def test_cubic_schedule_endpoints_and_shape():
    kw = {"final": 0.9, "initial": 0.1, "start": 100, "end": 1100, "frequency": 100}
    assert cubic_sparsity(0, **kw) == 0.1
    assert cubic_sparsity(100, **kw) == 0.1
    assert cubic_sparsity(1100, **kw) == pytest.approx(0.9)
    assert cubic_sparsity(5000, **kw) == pytest.approx(0.9)
    # halfway: s_f + (s_i - s_f) * 0.5^3
    assert cubic_sparsity(600, **kw) == pytest.approx(0.9 - 0.8 * 0.125)
    steps = [cubic_sparsity(t, **kw) for t in range(100, 1101, 100)]
    assert steps == sorted(steps)
    gains = [b - a for a, b in itertools.pairwise(steps)]
    assert gains == sorted(gains, reverse=True)  # prunes fast first, then slows down


def test_round_sparsity():
    assert round_sparsity(0.2, 2) == pytest.approx(0.36)
    with pytest.raises(NetshrinkError, match="rate"):
        round_sparsity(1.0, 2)


def test_gradual_pruning_reaches_its_target_during_training(digits):
    model = mlp(digits)
    callback = GradualPruning(0.8, start=2, end=12, frequency=2)
    fit(model, digits, TrainConfig(batch_size=64, iterations=16, device="cpu"),
        callbacks=[callback], progress=False)
    assert density(model) == pytest.approx(0.2, abs=2e-3)
    sparsities = [s for _, s in callback.history]
    assert sparsities == sorted(sparsities) and len(sparsities) >= 4
    assert [t for t, _ in callback.history][-1] == 12


def test_gradual_pruning_refuses_a_bad_schedule():
    with pytest.raises(NetshrinkError):
        GradualPruning(0.5, initial_sparsity=0.6)
    with pytest.raises(NetshrinkError, match="sparsity"):
        GradualPruning(1.2)


def test_iterative_rounds_shrink_and_rewind(digits):
    model = mlp(digits)
    config = TrainConfig(batch_size=64, iterations=5, device="cpu")
    fit(model, digits, config, progress=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    results = iterative_prune(model, digits, config, rounds=2, rate=0.2,
                              layer_rates={"3": 0.1}, rewind_state=start)
    assert [r.round for r in results] == [1, 2]
    mask = current_mask(model)
    assert float(mask["1.weight"].float().mean()) == pytest.approx(0.64, abs=1e-3)
    assert float(mask["3.weight"].float().mean()) == pytest.approx(0.81, abs=1e-2)
    assert results[1].density < results[0].density


def test_one_shot_is_prune_then_train(digits):
    model = mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.9)
    fit(model, digits, TrainConfig(batch_size=64, iterations=5, device="cpu"), progress=False)
    assert density(model) == pytest.approx(mask.density())
