"""Lottery tickets (Frankle and Carbin 2019): iterative magnitude pruning with rewinding.

Each round trains the (masked) network, removes `rate` of the remaining weights of each layer by
magnitude of the trained weights (the output layer at `output_rate`), and resets the surviving
weights to their values at initialization (rewind_iteration = 0) or at iteration k of the dense
run (Frankle et al. 2020's rewinding; the rewound rounds then train k fewer iterations). Two
controls judge a ticket at chosen rounds: the same mask with a fresh random initialization
("reinit"), and the ticket's initial weights with the mask shuffled within each layer
("shuffle").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from netshrink import checks
from netshrink.data import Splits
from netshrink.errors import NetshrinkError
from netshrink.prune.api import prune_
from netshrink.prune.mask import Mask, apply_mask, current_mask, density, prunable
from netshrink.prune.schedule import round_sparsity
from netshrink.train import Callback, TrainConfig, TrainState, fit, seed_everything

ARMS = ("ticket", "reinit", "shuffle")
MAX_ROUNDS = 200  # 20% per round leaves 0.8**200 = 4e-20 of the weights: far past any use


@dataclass(frozen=True)
class LotteryConfig:
    """How to search for a ticket. The defaults are the paper's LeNet-300-100 protocol.

    rate: fraction of each layer's remaining weights removed per round; output_rate: the
    output layer's (None: `rate`); layer_rates: ((layer, rate), ...) for any other layer.
    """

    rounds: int = 18
    rate: float = 0.2
    output_rate: float | None = 0.1
    layer_rates: tuple[tuple[str, float], ...] = ()
    rewind_iteration: int = 0
    control_rounds: tuple[int, ...] = ()
    controls: tuple[str, ...] = ("reinit", "shuffle")

    def __post_init__(self) -> None:
        checks.integer(self.rounds, "rounds", 0, MAX_ROUNDS)
        try:
            layer_rates = dict(self.layer_rates)
        except (TypeError, ValueError):
            raise NetshrinkError(f"layer_rates={checks.show(self.layer_rates)} must map layer "
                                 "names to rates") from None
        object.__setattr__(self, "layer_rates", tuple(
            (checks.text(k, "layer_rates key"), checks.real(v, f"layer_rates[{k}]", 0, 1,
                                                             high_open=True))
            for k, v in layer_rates.items()))
        checks.real(self.rate, "rate", 0, 1, high_open=True)
        if self.output_rate is not None:
            checks.real(self.output_rate, "output_rate", 0, 1, high_open=True)
        checks.integer(self.rewind_iteration, "rewind_iteration", 0)
        if isinstance(self.controls, str) or not all(isinstance(c, str) for c in self.controls):
            raise NetshrinkError(f"controls={checks.show(self.controls)} must be a list of "
                                 "reinit, shuffle")
        unknown = set(self.controls) - set(ARMS[1:])
        if unknown:
            raise NetshrinkError(f"unknown control {', '.join(sorted(unknown))}; choose from "
                                 "reinit, shuffle")
        for r in self.control_rounds:
            checks.integer(r, "control_rounds")
        bad = [r for r in self.control_rounds if not 1 <= r <= self.rounds]
        if bad:
            raise NetshrinkError(f"control_rounds {bad} must be within 1..{self.rounds}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LotteryResult:
    """One trained network of the search: a round's ticket or one of its controls."""

    round: int
    arm: str
    density: float
    early_stop_iteration: int | None
    early_stop_test_accuracy: float | None
    test_accuracy: float
    iterations: int

    def to_dict(self) -> dict:
        return {**asdict(self), "percent_remaining": 100 * self.density}


class _Snapshot(Callback):
    """Keep a copy of the weights after iteration `at` (for rewinding)."""

    def __init__(self, at: int):
        self.at = at
        self.state: dict | None = None

    def after_step(self, state: TrainState) -> None:
        if state.iteration == self.at:
            self.state = copy.deepcopy(state.model.state_dict())


def output_layer(model: nn.Module) -> str:
    """The last prunable weight registered (the classifier in every model of the zoo)."""
    names = list(prunable(model))
    if not names:
        raise NetshrinkError("the model has nothing to prune")
    return names[-1]


def round_targets(model: nn.Module, config: LotteryConfig, r: int) -> tuple[float, dict]:
    """(sparsity of most layers, {layer: its own sparsity}) after round r."""
    overrides = {}
    if config.output_rate is not None:
        overrides[output_layer(model)] = round_sparsity(config.output_rate, r)
    for name, rate in config.layer_rates:
        overrides[name] = round_sparsity(rate, r)
    return round_sparsity(config.rate, r), overrides


def find_ticket(
    make_model: Callable[[int], nn.Module],
    data: Splits,
    train: TrainConfig,
    config: LotteryConfig,
    seed: int = 0,
    on_result: Callable[[LotteryResult], None] | None = None,
) -> list[LotteryResult]:
    """Run the search. `make_model(seed)` builds a freshly initialized network (seeded).

    Returns one result per trained network: round 0 (dense), each round's ticket, and the
    controls at `config.control_rounds`.
    """
    results: list[LotteryResult] = []

    def record(r: int, arm: str, model: nn.Module, result) -> None:
        row = LotteryResult(r, arm, density(model), result.early_stop_iteration,
                            result.early_stop_test_accuracy, result.test_accuracy,
                            result.iterations)
        results.append(row)
        if on_result is not None:
            on_result(row)

    model = make_model(seed)
    initial = copy.deepcopy(model.state_dict())
    k = config.rewind_iteration
    snapshot = _Snapshot(k)
    first = fit(model, data, train, callbacks=[snapshot] if k else [], progress=False)
    if k and snapshot.state is None:
        raise NetshrinkError(f"rewind_iteration={k} is beyond the {first.iterations} "
                             "iterations of training")
    rewind = snapshot.state if k else initial
    record(0, "ticket", model, first)
    later = replace(train, iterations=first.iterations - k) if k else train
    for r in range(1, config.rounds + 1):
        sparsity, overrides = round_targets(model, config, r)
        prune_(model, "magnitude", sparsity=sparsity, scope="layerwise",
               layer_sparsity=overrides)
        model.load_state_dict(rewind)
        record(r, "ticket", model, fit(model, data, later, progress=False))
        if r in config.control_rounds:
            mask = current_mask(model)
            for arm in config.controls:
                control = _control(arm, make_model, mask, rewind, seed, r)
                record(r, arm, control, fit(control, data, later, progress=False))
    return results


def _control(arm: str, make_model: Callable[[int], nn.Module], mask: Mask, rewind: dict,
             seed: int, r: int) -> nn.Module:
    if arm == "reinit":
        model = make_model(seed + 1_000_003 * r)  # a fresh draw from the same distribution
        apply_mask(model, mask)
        return model
    model = make_model(seed)
    model.load_state_dict(rewind)
    apply_mask(model, mask.shuffled(torch.Generator().manual_seed(seed * 1_000 + r)))
    return model


def zoo_factory(name: str, data: Splits, init: str = "glorot", **kwargs: Any
                ) -> Callable[[int], nn.Module]:
    """make_model for find_ticket from the model zoo (the paper: Gaussian Glorot init)."""
    from netshrink import models

    def make(seed: int) -> nn.Module:
        seed_everything(seed)
        return models.create(name, input_shape=data.input_shape, num_classes=data.num_classes,
                             init=init, **kwargs)

    return make


def control_rounds_for(percents: Sequence[float], config: LotteryConfig, model: nn.Module
                       ) -> tuple[int, ...]:
    """The rounds whose density is closest to each of `percents` (percent of weights left)."""
    sizes = {n: p.numel() for n, p in prunable(model).items()}
    total = sum(sizes.values())

    def percent(r: int) -> float:
        sparsity, overrides = round_targets(model, config, r)
        kept = sum(n * (1 - overrides.get(name, sparsity)) for name, n in sizes.items())
        return 100 * kept / total

    return tuple(min(range(config.rounds + 1), key=lambda r, p=p: abs(percent(r) - p))
                 for p in percents)
