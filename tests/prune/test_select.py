"""netshrink.prune.select: exact kept counts per unit, no revival, NaN refused, and the
largest compression that empties no layer."""

import math

import pytest
import torch

from netshrink.errors import NetshrinkError
from netshrink.prune.select import (
    Unit,
    check_shrinks,
    collapsed,
    largest_safe_compression,
    pruned_count,
    select,
    unit_density,
    units_for,
)


@pytest.mark.parametrize(("sparsity", "size", "expected"), [
    (0.0, 10, 0), (0.5, 10, 5), (0.25, 10, 3),   # 2.5 rounds up
    (0.15, 10, 2), (0.14, 10, 1), (0.999, 10, 10), (0.9, 0, 0), (0.5, 1, 1),
])
def test_pruned_count_rounds_halves_up_and_never_exceeds_the_size(sparsity, size, expected):
    assert pruned_count(sparsity, size) == expected


def test_units_for_global_layerwise_and_overrides():
    names = ["a", "b", "c"]
    assert units_for(names, 0.5, "global", {}) == [Unit(("a", "b", "c"), 0.5)]
    assert units_for(names, 0.5, "layerwise", {}) == [Unit(("a",), 0.5), Unit(("b",), 0.5),
                                                     Unit(("c",), 0.5)]
    assert units_for(names, 0.5, "global", {"b": 0.9}) == [Unit(("b",), 0.9),
                                                          Unit(("a", "c"), 0.5)]
    assert units_for(["a"], 0.5, "global", {"a": 0.1}) == [Unit(("a",), 0.1)]


def test_select_keeps_exactly_the_top_scores_of_each_unit():
    scores = {"a": torch.tensor([[4.0, 1.0], [3.0, 2.0]]), "b": torch.tensor([5.0, 0.5, 6.0])}
    keep = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    glob = select(scores, keep, [Unit(("a", "b"), 4 / 7)])  # keeps 3 of 7: 6, 5, 4
    assert glob["a"].tolist() == [[True, False], [False, False]]
    assert glob["b"].tolist() == [True, False, True]
    per_layer = select(scores, keep, [Unit(("a",), 0.5), Unit(("b",), 0.5)])
    assert per_layer["a"].tolist() == [[True, False], [True, False]]
    assert per_layer["b"].tolist() == [False, False, True]  # 1.5 pruned rounds to 2
    assert unit_density(Unit(("a", "b"), 0.0), glob) == pytest.approx(3 / 7)


def test_select_never_revives_a_pruned_weight_and_ignores_its_score():
    scores = {"a": torch.tensor([10.0, 1.0, 2.0, 3.0])}
    keep = {"a": torch.tensor([False, True, True, True])}
    new = select(scores, keep, [Unit(("a",), 0.5)])
    assert new["a"].tolist() == [False, False, True, True]
    assert select(scores, keep, [Unit(("a",), 0.0)])["a"].tolist() == keep["a"].tolist()


def test_select_refuses_nan_scores_of_alive_weights_only():
    keep = {"a": torch.tensor([False, True, True])}
    new = select({"a": torch.tensor([math.nan, 1.0, 2.0])}, keep, [Unit(("a",), 0.5)])
    assert new["a"].tolist() == [False, False, True]
    with pytest.raises(NetshrinkError, match="the scores of a, b contain NaN"):
        select({"a": torch.tensor([1.0, math.nan, 2.0]), "b": torch.ones(2)},
               {"a": torch.ones(3, dtype=torch.bool), "b": torch.ones(2, dtype=torch.bool)},
               [Unit(("a", "b"), 0.5)])


def test_check_shrinks_refuses_a_target_below_the_current_sparsity():
    keep = {"a": torch.tensor([True, False, False, False]), "b": torch.ones(4, dtype=torch.bool)}
    check_shrinks([Unit(("a",), 0.75)], keep)
    with pytest.raises(NetshrinkError, match=r"^a already have sparsity 0\.7500, more than the "
                                             r"requested 0\.5000; .*>= 0\.7500\)$"):
        check_shrinks([Unit(("a",), 0.5)], keep)
    with pytest.raises(NetshrinkError, match=r"the weights ranked globally already have "
                                             r"sparsity 0\.3750"):
        check_shrinks([Unit(("a", "b"), 0.2)], keep)


def test_collapsed_names_empty_layers():
    keep = {"a": torch.zeros(3, dtype=torch.bool), "b": torch.tensor([False, True])}
    assert collapsed(keep) == ["a"]


def test_largest_safe_compression_global_unit():
    # "small" survives while its best weight (2.0) is kept: 3 weights of "big" score higher.
    scores = {"big": torch.tensor([5.0, 4.0, 3.0, 1.0, 0.5, 0.1]),
              "small": torch.tensor([2.0, 0.2])}
    keep = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    units = [Unit(("big", "small"), 0.5)]
    assert largest_safe_compression(scores, keep, units, set()) == pytest.approx(8 / 4)
    # at that compression (keep 4 of 8), no layer is emptied; one more and "small" is
    new = select(scores, keep, [Unit(("big", "small"), 1 - 4 / 8)])
    assert not collapsed(new)
    assert collapsed(select(scores, keep, [Unit(("big", "small"), 1 - 3 / 8)])) == ["small"]


def test_largest_safe_compression_layerwise_and_overridden():
    scores = {"a": torch.rand(10), "b": torch.rand(4), "c": torch.rand(5)}
    keep = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    # layerwise: the smallest layer (4) keeps one weight, density 1/4 everywhere: 3 + 1 = 4;
    # "c" is overridden at 0.6: it keeps 2
    units = [Unit(("a",), 0.9), Unit(("b",), 0.9), Unit(("c",), 0.6)]
    assert largest_safe_compression(scores, keep, units, {"c"}) == pytest.approx(19 / 6)
