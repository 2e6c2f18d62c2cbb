"""netshrink.prune.deletion: deletion curves, one-shot (ranked once) and iterative (pruned and
retrained), on a small seeded model and random data."""

import copy

import pytest
import torch
from torch import nn

from netshrink import data
from netshrink.prune import density, score_weights
from netshrink.prune.deletion import iterative_curve, measure, one_shot_curve
from netshrink.prune.select import pruned_count
from netshrink.train import TrainConfig, evaluate


@pytest.fixture(scope="module")
def splits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 6, generator=g)
    return data.from_tensors((x, (x[:, 0] > 0).long()), val_size=20)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def test_measure_is_the_train_and_test_loss_and_accuracy(splits):
    net = model()
    row = measure(net, splits)
    assert (row["train_loss"], row["train_accuracy"]) == evaluate(net, splits.train)
    assert (row["test_loss"], row["test_accuracy"]) == evaluate(net, splits.test)


def test_one_shot_curve_deletes_each_fraction_from_the_same_weights(splits):
    net = model()
    before = copy.deepcopy(net.state_dict())
    rows = one_shot_curve(net, splits, "magnitude", [0.0, 0.5, 0.9])
    assert [r["fraction"] for r in rows] == [0.0, 0.5, 0.9]
    assert all(r["mode"] == "one-shot" and "predicted_train_loss" not in r for r in rows)
    assert rows[0]["train_loss"] == pytest.approx(measure(net, splits)["train_loss"])
    assert rows[2]["train_loss"] != rows[0]["train_loss"]
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # untouched
    assert density(net) == 1.0


def test_one_shot_obd_predicts_the_loss_from_the_deleted_saliencies(splits):
    options = {"hessian": "hutchinson", "samples": 2}
    rows = one_shot_curve(model(), splits, "obd", [0.0, 0.1], seed=3, **options)
    assert rows[0]["predicted_train_loss"] == pytest.approx(rows[0]["train_loss"])
    scores = score_weights(model(), "obd", splits, seed=3, **options)
    flat = torch.cat([s.flatten() for s in scores.values()]).double()
    lowest = flat.sort().values[:pruned_count(0.1, flat.numel())]  # the deleted ones
    assert rows[1]["predicted_train_loss"] == pytest.approx(rows[0]["train_loss"]
                                                             + float(lowest.sum()))


def test_iterative_curve_prunes_in_increasing_order_and_retrains_a_copy(splits):
    net = model()
    retrain = TrainConfig(iterations=2, batch_size=32, device="cpu")
    rows = iterative_curve(net, splits, "magnitude", [0.5, 0.0], retrain)
    assert [r["fraction"] for r in rows] == [0.0, 0.5]
    assert all(r["mode"] == "iterative" for r in rows)
    assert {"train_loss_before", "test_accuracy_before", "train_loss_after",
            "test_accuracy_after"} <= set(rows[0])
    assert rows[0]["train_loss_before"] == pytest.approx(measure(net, splits)["train_loss"])
    assert rows[0]["train_loss_after"] != rows[0]["train_loss_before"]  # it retrained
    assert density(net) == 1.0  # the model given is left alone
