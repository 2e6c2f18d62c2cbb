"""The lottery ticket search: rewinding, per-layer rates, and its two controls."""

import pytest
import torch

from netshrink import NetshrinkError
from netshrink.prune import LotteryConfig, find_ticket
from netshrink.prune.lottery import control_rounds_for, output_layer, zoo_factory
from netshrink.train import TrainConfig


@pytest.fixture(scope="module")
def search(digits):
    make = zoo_factory("mlp", digits, widths=(32,))
    config = LotteryConfig(rounds=2, rate=0.2, output_rate=0.1, control_rounds=(2,))
    train = TrainConfig(batch_size=64, iterations=8, eval_every=4, device="cpu")
    models_seen = []
    results = find_ticket(make, digits, train, config, seed=3,
                          on_result=lambda r: models_seen.append(r))
    return results, models_seen, make


def test_rounds_arms_and_densities(search):
    results, seen, _ = search
    assert [(r.round, r.arm) for r in results] == [
        (0, "ticket"), (1, "ticket"), (2, "ticket"), (2, "reinit"), (2, "shuffle")]
    assert seen == results
    assert results[0].density == 1.0
    hidden, output = 64 * 32, 32 * 10
    expected = (hidden * 0.64 + output * 0.81) / (hidden + output)
    for r in results[2:]:
        assert r.density == pytest.approx(expected, abs=2e-3)
    assert all(r.early_stop_iteration in (4, 8) for r in results)


def test_the_ticket_restarts_from_its_initial_weights(digits):
    """After pruning, the kept weights are reset to their values at initialization."""
    make = zoo_factory("mlp", digits, widths=(32,))
    initial = make(3).state_dict()
    starts = []

    from netshrink.prune import lottery

    original = lottery.fit

    def spying_fit(model, *args, **kwargs):
        starts.append({k: v.clone() for k, v in model.state_dict().items()})
        return original(model, *args, **kwargs)

    lottery.fit = spying_fit
    try:
        find_ticket(make, digits, TrainConfig(batch_size=64, iterations=3, device="cpu"),
                    LotteryConfig(rounds=1), seed=3)
    finally:
        lottery.fit = original
    assert torch.equal(starts[0]["1.weight"], initial["1.weight"])
    second = starts[1]["1.weight"]
    kept = second != 0
    assert 0.79 < float(kept.float().mean()) < 0.81
    assert torch.equal(second[kept], initial["1.weight"][kept])


def test_controls_keep_the_layer_counts(search):
    results, _, _ = search
    ticket, reinit, shuffle = results[2:]
    assert ticket.density == reinit.density == shuffle.density


def test_shuffled_mask_has_the_same_count_per_layer(digits):
    torch.manual_seed(0)
    from netshrink.prune import prune_

    model = zoo_factory("mlp", digits, widths=(32,))(0)
    mask = prune_(model, "magnitude", sparsity=0.7, scope="layerwise")
    shuffled = mask.shuffled(torch.Generator().manual_seed(1))
    for name in mask:
        assert int(mask[name].sum()) == int(shuffled[name].sum())
        assert not torch.equal(mask[name], shuffled[name])


def test_rewinding_to_an_iteration(digits):
    make = zoo_factory("mlp", digits, widths=(32,))
    results = find_ticket(make, digits, TrainConfig(batch_size=64, iterations=6,
                                                    device="cpu"),
                          LotteryConfig(rounds=1, rewind_iteration=2), seed=0)
    assert [r.iterations for r in results] == [6, 4]
    with pytest.raises(NetshrinkError, match="beyond"):
        find_ticket(make, digits, TrainConfig(batch_size=64, iterations=3, device="cpu"),
                    LotteryConfig(rounds=1, rewind_iteration=5), seed=0)


def test_bad_configs():
    with pytest.raises(NetshrinkError, match="control_rounds"):
        LotteryConfig(rounds=2, control_rounds=(3,))
    with pytest.raises(NetshrinkError, match="unknown control"):
        LotteryConfig(controls=("magic",))
    with pytest.raises(NetshrinkError, match="rate"):
        LotteryConfig(rate=1.0)


def test_paper_percentages_map_to_rounds(digits):
    """LeNet-300-100 at 20% per round (output 10%): 51.3% after 3 rounds, ..., 1.9% after 18."""
    model = zoo_factory("lenet300", digits.__class__(
        "x", None, None, None, 10, (1, 28, 28)))(0)
    rounds = control_rounds_for([51.3, 21.1, 7.0, 3.6, 1.9], LotteryConfig(), model)
    assert rounds == (3, 7, 12, 15, 18)
    assert output_layer(model) == "5.weight"


def test_per_layer_rates(digits):
    make = zoo_factory("mlp", digits, widths=(32,))
    config = LotteryConfig(rounds=2, rate=0.2, output_rate=None, layer_rates={"1": 0.5})
    find_ticket(make, digits, TrainConfig(batch_size=64, iterations=2, device="cpu"), config)
    from netshrink.prune.lottery import round_targets

    sparsity, overrides = round_targets(make(0), config, 2)
    assert sparsity == pytest.approx(0.36) and overrides == {"1": pytest.approx(0.75)}
    with pytest.raises(NetshrinkError, match=r"layer_rates\[1\]"):
        LotteryConfig(layer_rates={"1": 1.5})
