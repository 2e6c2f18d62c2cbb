"""fit and evaluate on models whose inputs are token ids, two tensors or keyword arguments."""

import dataclasses

import pytest
import torch
from torch.utils.data import Dataset

from netshrink import measure
from netshrink.data import inputs
from netshrink.train import Callback, TrainConfig, batches, evaluate, fit

QUICK = TrainConfig(iterations=60, batch_size=32, lr=1e-2, device="cpu", optimizer="adam")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only fights the other processes of a small machine."""
    with measure.threads(1):
        yield


class SeenInputs(Callback):
    def __init__(self):
        self.seen = []

    def on_batch(self, state, x, targets, indices):
        self.seen.append(inputs.describe(x))
        return x, targets


@pytest.mark.parametrize("case", ["tokens", "pair", "keywords"])
def test_fit_learns_on_inputs_of_any_shape(any_inputs, case):
    build, splits = any_inputs[case]
    torch.manual_seed(0)
    model = build()
    _, before = evaluate(model, splits.test)
    seen = SeenInputs()
    result = fit(model, splits, QUICK, callbacks=[seen], progress=False)
    assert result.iterations == 60
    assert result.test_accuracy > 0.75 and result.test_accuracy > before + 0.2
    assert seen.seen[0] == inputs.describe(splits.train.inputs), "dtypes reach the model"
    assert evaluate(model, splits.test)[1] == result.test_accuracy


class Lazy(Dataset):
    """A map-style data set of ((a, b), label) items, batched by a DataLoader."""

    def __init__(self, examples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        x, y = self.examples[i]
        return list(x), y  # a list: the loop must read it as positional inputs too


def test_a_lazy_dataset_of_pairs_batches_and_trains(any_inputs):
    build, splits = any_inputs["pair"]
    lazy = dataclasses.replace(splits, train=Lazy(splits.train), test=Lazy(splits.test))
    x, _, _ = next(batches(lazy.train, 8, shuffle=False))
    assert isinstance(x, tuple) and inputs.equal(x, inputs.take(splits.train.inputs,
                                                                  slice(0, 8)))
    torch.manual_seed(0)
    model = build()
    result = fit(model, lazy, QUICK, progress=False)
    assert result.test_accuracy == evaluate(model, splits.test)[1]
