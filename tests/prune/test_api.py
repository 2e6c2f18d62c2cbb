"""prune_: exact counts, scopes, overrides, shrinking masks, layer collapse, bad input."""

import pytest
import torch
from torch import nn

from netshrink import NetshrinkError, models
from netshrink.prune import (
    METHODS,
    LayerCollapseError,
    PruneConfig,
    density,
    prune_,
    report,
    round_sparsity,
)


def mlp(digits, seed=0, **kw):
    torch.manual_seed(seed)
    return models.create("mlp", input_shape=digits.input_shape, widths=(32,), **kw)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_exact_sparsity_is_reached(digits, method):
    model = mlp(digits)
    options = {"hessian": "hutchinson", "samples": 2} if method == "obd" else {}
    if method == "synflow":
        options = {"iterations": 5}
    mask = prune_(model, method, digits, sparsity=0.83, seed=1, **options)
    size = mask.size()
    assert mask.kept() == size - round(0.83 * size)
    assert density(model) == pytest.approx(mask.density())


def test_layerwise_scope_prunes_each_layer_exactly(digits):
    model = mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.6, scope="layerwise")
    for name, keep in mask.items():
        assert int(keep.sum()) == keep.numel() - round(0.6 * keep.numel()), name


def test_per_layer_override(digits):
    model = mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.8, layer_sparsity={"3": 0.1})
    assert int((~mask["3.weight"]).sum()) == 32  # 10% of 320
    assert int((~mask["1.weight"]).sum()) == round(0.8 * 2048)


def test_compression_is_one_over_density(digits):
    model = mlp(digits)
    mask = prune_(model, "random", compression=10)
    assert mask.kept() == mask.size() - round(0.9 * mask.size())


def test_two_rounds_of_20_percent_leave_64_percent(digits):
    model = mlp(digits)
    first = prune_(model, "magnitude", sparsity=round_sparsity(0.2, 1))
    second = prune_(model, "magnitude", sparsity=round_sparsity(0.2, 2))
    assert second.density() == pytest.approx(0.64, abs=1e-3)
    assert second.is_subset_of(first)


@pytest.mark.parametrize("method", ["random", "snip", "taylor"])
def test_masks_only_shrink_across_rounds(digits, method):
    """Even methods whose scores change between rounds never revive a pruned weight."""
    model = mlp(digits)
    previous = None
    for r in range(1, 5):
        mask = prune_(model, method, digits, sparsity=round_sparsity(0.3, r), seed=r)
        if previous is not None:
            assert mask.is_subset_of(previous)
        previous = mask


def test_asking_for_less_sparsity_than_there_is_is_refused(digits):
    model = mlp(digits)
    prune_(model, "magnitude", sparsity=0.5)
    with pytest.raises(NetshrinkError, match="masks only shrink"):
        prune_(model, "magnitude", sparsity=0.3)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_scores_are_deterministic_under_a_seed(digits, method):
    options = {"hessian": "hutchinson", "samples": 2} if method == "obd" else {}
    masks = []
    for _ in range(2):
        model = mlp(digits, dropout=0.3)
        masks.append(prune_(model, method, digits, sparsity=0.7, seed=5, **options))
    assert all(torch.equal(masks[0][n], masks[1][n]) for n in masks[0])


def test_the_seed_matters_for_random(digits):
    a = prune_(mlp(digits), "random", sparsity=0.5, seed=1)
    b = prune_(mlp(digits), "random", sparsity=0.5, seed=2)
    assert not torch.equal(a["1.weight"], b["1.weight"])


def test_skip_patterns_choose_the_layers(digits):
    model = mlp(digits)
    mask = prune_(model, "magnitude", sparsity=0.5, skip=["3"])
    assert list(mask) == ["1.weight"]
    assert torch.count_nonzero(model[3].weight) == model[3].weight.numel()
    same = prune_(mlp(digits), PruneConfig(sparsity=0.5, skip=("3*",)))
    assert list(same) == ["1.weight"] and torch.equal(same["1.weight"], mask["1.weight"])
    with pytest.raises(NetshrinkError, match="'fc9' matches no layer"):
        prune_(mlp(digits), "magnitude", sparsity=0.5, skip=["fc9"])
    with pytest.raises(NetshrinkError, match="instead of filter"):
        prune_(mlp(digits), "magnitude", sparsity=0.5, filter=lambda name, m: True)


def test_layer_patterns_give_layers_their_own_rate(digits):
    model = models.create("lenet5", input_shape=digits.input_shape)
    prune_(model, PruneConfig(sparsity=0.8, layers={"*": 0.5, "0": 0.1}))
    rows = {r.name: r.density for r in report(model)}
    assert rows["0.weight"] == pytest.approx(0.9, abs=0.01)  # the last matching pattern wins
    assert all(d == pytest.approx(0.5, abs=0.01) for n, d in rows.items() if n != "0.weight")


def test_scoring_leaves_batchnorm_statistics_and_mode_alone(digits):
    torch.manual_seed(0)
    model = models.create("vgg", input_shape=digits.input_shape, width=4)
    model.eval()
    stats = {n: b.clone() for n, b in model.named_buffers()}
    prune_(model, "snip", digits, sparsity=0.5)
    assert not model.training
    assert all(torch.equal(b, stats[n]) for n, b in model.named_buffers() if n in stats)


# --- layer collapse ----------------------------------------------------------------------------


def collapsing_model():
    """Layer 0's weights are tiny, so global magnitude pruning empties it first."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    with torch.no_grad():
        model[0].weight.mul_(1e-3)
    return model


def test_layer_collapse_is_refused_with_the_layer_and_a_safe_compression():
    model = collapsing_model()
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(LayerCollapseError, match=r"0\.weight.*largest compression") as info:
        prune_(model, "magnitude", sparsity=0.7)
    assert info.value.layers == ("0.weight",)
    safe = info.value.safe_compression
    assert f"{safe:.4g}" in str(info.value)
    assert 1 < safe < 1 / 0.3
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # untouched
    prune_(model, "magnitude", compression=safe * 0.99)  # just below: no collapse


def test_layer_collapse_is_recorded_when_allowed():
    model = collapsing_model()
    mask = prune_(model, "magnitude", sparsity=0.7, allow_collapse=True)
    assert mask.collapsed == ("0.weight",)
    assert density(model) == pytest.approx(0.3, abs=1e-2)


def test_synflow_avoids_the_collapse_magnitude_runs_into():
    model = collapsing_model()
    mask = prune_(model, "synflow", sparsity=0.97, input_shape=(8,), iterations=20)
    assert mask.collapsed == ()
    assert all(int(keep.sum()) > 0 for keep in mask.values())


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_outside_the_unit_interval(digits, sparsity):
    with pytest.raises(NetshrinkError, match=r"sparsity=.*\[0, 1\)"):
        prune_(mlp(digits), "magnitude", sparsity=sparsity)


@pytest.mark.parametrize("compression", [0.5, 0, -3, float("inf")])
def test_compression_below_one(digits, compression):
    with pytest.raises(NetshrinkError, match=r"compression=.*>= 1"):
        prune_(mlp(digits), "magnitude", compression=compression)


def test_sparsity_and_compression_together_or_neither(digits):
    with pytest.raises(NetshrinkError, match="exactly one"):
        prune_(mlp(digits), "magnitude", sparsity=0.5, compression=2)
    with pytest.raises(NetshrinkError, match="exactly one"):
        prune_(mlp(digits), "magnitude")


def test_a_model_with_nothing_to_prune():
    with pytest.raises(NetshrinkError, match="nothing to prune"):
        prune_(nn.Sequential(nn.ReLU(), nn.Tanh()), "magnitude", sparsity=0.5)


@pytest.mark.parametrize("method", ["obd", "taylor", "snip", "grasp"])
def test_data_missing_for_a_method_that_needs_it(digits, method):
    with pytest.raises(NetshrinkError, match=f"{method}.*needs data"):
        prune_(mlp(digits), method, sparsity=0.5)


def test_unknown_method_scope_and_layer(digits):
    with pytest.raises(NetshrinkError, match="unknown pruning method"):
        prune_(mlp(digits), "psychic", sparsity=0.5)
    with pytest.raises(NetshrinkError, match="scope"):
        prune_(mlp(digits), "magnitude", sparsity=0.5, scope="everywhere")
    with pytest.raises(NetshrinkError, match="'9' matches no layer"):
        prune_(mlp(digits), "magnitude", sparsity=0.5, layer_sparsity={"9": 0.1})
    with pytest.raises(NetshrinkError, match="bad option"):
        prune_(mlp(digits), "synflow", sparsity=0.5, wibble=3)


def test_random_pruning_is_independent_of_the_weights(digits):
    """A model initialized after torch.manual_seed(s) and pruned with seed s: the kept weights
    must look like the pruned ones (same mean |w|, half of them positive). Scoring with the
    stream that drew the weights would keep mostly positive weights."""
    torch.manual_seed(0)
    model = models.create("vgg", input_shape=(1, 28, 28), width=8)
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = prune_(model, "random", sparsity=0.7, seed=0)
    kept = torch.cat([weights[n][k] for n, k in mask.items()])
    pruned = torch.cat([weights[n][~k] for n, k in mask.items()])
    assert 0.47 < float((kept > 0).float().mean()) < 0.53
    assert float(kept.abs().mean()) == pytest.approx(float(pruned.abs().mean()), rel=0.03)
