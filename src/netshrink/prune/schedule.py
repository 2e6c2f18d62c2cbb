"""When to prune: one shot (just `prune_`), iterative prune-and-retrain rounds, or gradually
during training on the cubic schedule of Zhu and Gupta (2017)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from netshrink.data import Splits
from netshrink.errors import NetshrinkError
from netshrink.prune.api import prune_, target_sparsity
from netshrink.prune.mask import density
from netshrink.train import Callback, TrainConfig, TrainState, fit


def round_sparsity(rate: float, rounds: int) -> float:
    """Sparsity after `rounds` rounds that each remove `rate` of the remaining weights."""
    if not 0 <= rate < 1:
        raise NetshrinkError(f"rate={rate} must be in [0, 1): the fraction of the remaining "
                             "weights each round removes")
    return 1 - (1 - rate) ** rounds


def cubic_sparsity(step: int, final: float, initial: float = 0.0, start: int = 0,
                   end: int = 1, frequency: int = 1) -> float:
    """Zhu and Gupta's schedule: s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3.

    Pruning happens at t0, t0 + dt, ..., t0 + n dt (n dt = end - start, rounded to whole
    steps of `frequency`); before t0 the sparsity is s_i, after the end it is s_f.
    """
    n = max(1, round((end - start) / frequency))
    if step <= start:
        return initial
    if step >= end:
        return final
    progress = min(1.0, ((step - start) // frequency) / n)
    return final + (initial - final) * (1 - progress) ** 3


class GradualPruning(Callback):
    """Prune during training: every `frequency` steps from `start` to `end` (default: the
    first three quarters of training), up to `final_sparsity` on the cubic schedule.

    Extra keyword arguments go to `prune_` (method, scope, data for data-driven methods, ...);
    Zhu and Gupta prune by magnitude, layerwise.
    """

    def __init__(self, final_sparsity: float, start: int = 0, end: int | None = None,
                 frequency: int = 100, initial_sparsity: float = 0.0,
                 method: str = "magnitude", **prune_kwargs: Any):
        self.final = target_sparsity(final_sparsity, None)
        self.initial = target_sparsity(initial_sparsity, None)
        if self.initial > self.final:
            raise NetshrinkError("initial_sparsity must not exceed final_sparsity")
        if frequency < 1 or start < 0:
            raise NetshrinkError("frequency must be >= 1 and start >= 0")
        self.start, self.end, self.frequency = start, end, frequency
        self.method, self.prune_kwargs = method, {"scope": "layerwise", **prune_kwargs}
        self.history: list[tuple[int, float]] = []

    def _prune(self, state: TrainState, sparsity: float) -> None:
        if self.history and sparsity <= self.history[-1][1]:
            return
        prune_(state.model, self.method, sparsity=sparsity, **self.prune_kwargs)
        self.history.append((state.iteration, sparsity))

    def on_fit_start(self, state: TrainState) -> None:
        if self.end is None:
            self.end = max(self.start + 1, (3 * state.total_iterations) // 4)
        if self.end <= self.start:
            raise NetshrinkError(f"end={self.end} must come after start={self.start}")
        if self.start == 0 and self.initial > 0:
            self._prune(state, self.initial)

    def after_step(self, state: TrainState) -> None:
        t, end = state.iteration, self.end
        assert end is not None
        if self.start <= t <= end and ((t - self.start) % self.frequency == 0 or t == end):
            self._prune(state, cubic_sparsity(t, self.final, self.initial, self.start, end,
                                              self.frequency))


@dataclass(frozen=True)
class RoundResult:
    """One round of iterative pruning: the target, the density reached, the retrained model's
    test accuracy (at the end and at early stopping)."""

    round: int
    sparsity: float
    density: float
    test_accuracy: float
    early_stop_iteration: int | None
    early_stop_test_accuracy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def layer_targets(rounds: int, rate: float, layer_rates: Mapping[str, float] | None
                  ) -> tuple[float, dict[str, float]]:
    """(overall sparsity, {layer: sparsity}) after `rounds` rounds at these per-round rates."""
    return round_sparsity(rate, rounds), {
        name: round_sparsity(r, rounds) for name, r in (layer_rates or {}).items()}


def iterative_prune(
    model: nn.Module,
    data: Splits,
    config: TrainConfig,
    rounds: int,
    rate: float = 0.2,
    method: str = "magnitude",
    layer_rates: Mapping[str, float] | None = None,
    rewind_state: Mapping | None = None,
    callbacks: Sequence[Callback] = (),
    **prune_kwargs: Any,
) -> list[RoundResult]:
    """`rounds` times: prune `rate` of the remaining weights, (rewind,) retrain.

    The model should be trained already (the first round prunes it). layer_rates: per-round
    rates of some layers (the Lottery Ticket paper prunes the output layer at half the rate).
    rewind_state: a state_dict loaded after each pruning (masked) before retraining.
    """
    if rounds < 1:
        raise NetshrinkError(f"rounds={rounds} must be at least 1")
    results = []
    for r in range(1, rounds + 1):
        overall, per_layer = layer_targets(r, rate, layer_rates)
        prune_(model, method, data, sparsity=overall, layer_sparsity=per_layer, **prune_kwargs)
        if rewind_state is not None:
            model.load_state_dict(rewind_state)
        result = fit(model, data, config, callbacks=callbacks, progress=False)
        results.append(RoundResult(r, overall, density(model), result.test_accuracy,
                                   result.early_stop_iteration,
                                   result.early_stop_test_accuracy))
    return results
