"""The training loop: learns, records early stopping, is seeded, runs callbacks, logs."""

import csv

import pytest
import torch

from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainConfig, evaluate, fit

FAST = TrainConfig(epochs=3, batch_size=64, lr=3e-3, device="cpu", eval_every=10)


def test_training_learns_digits(digits):
    torch.manual_seed(0)
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    _, before = evaluate(model, digits.test)
    result = fit(model, digits, FAST, progress=False)
    assert before < 0.3
    assert result.test_accuracy > 0.85
    assert result.iterations == 3 * 20  # 1238 examples / 64 = 20 batches per epoch


def test_early_stopping_is_the_minimum_validation_loss(digits):
    torch.manual_seed(0)
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    result = fit(model, digits, FAST, progress=False, restore_best=True)
    best = min(result.history, key=lambda row: row["val_loss"])
    assert result.early_stop_iteration == best["iteration"]
    _, acc = evaluate(model, digits.test)
    assert acc == result.early_stop_test_accuracy


def test_same_seed_same_result(digits):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = models.create("lenet5", digits.input_shape, digits.num_classes)
        runs.append(fit(model, digits, FAST, progress=False))
    assert runs[0].history == runs[1].history


def test_deterministic_mode_is_restored(digits):
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    fit(model, digits, TrainConfig(iterations=2, deterministic=True, device="cpu"),
        progress=False)
    assert not torch.are_deterministic_algorithms_enabled()


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, state):
        self.calls.append("start")

    def loss(self, state, inputs, targets, indices, outputs, loss):
        assert len(indices) == len(targets)
        return loss * 0.0  # no learning signal: the weights must not move

    def after_step(self, state):
        self.calls.append(state.iteration)
        if state.iteration == 5:
            state.stop = True

    def on_fit_end(self, state):
        self.calls.append("end")


def test_callbacks_shape_the_loss_and_can_stop(digits):
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    before = [p.detach().clone() for p in model.parameters()]
    recorder = Recorder()
    result = fit(model, digits, TrainConfig(optimizer="sgd", momentum=0.0, device="cpu"),
                 callbacks=[recorder], progress=False)
    assert recorder.calls == ["start", 1, 2, 3, 4, 5, "end"]
    assert result.iterations == 5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_csv_log(digits, tmp_path):
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    fit(model, digits, FAST, log_csv=tmp_path / "log.csv", progress=False)
    with open(tmp_path / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [10, 20, 30, 40, 50, 60]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(rows[0])


def test_iterations_override_epochs_and_cosine(digits):
    model = models.create("lenet300", digits.input_shape, digits.num_classes)
    config = TrainConfig(epochs=50, iterations=7, lr_schedule="cosine", device="cpu")
    assert fit(model, digits, config, progress=False).iterations == 7


def test_fit_refuses_raw_data():
    with pytest.raises(NetshrinkError, match="Splits"):
        fit(models.create("lenet300"), (torch.rand(3, 784), torch.zeros(3)))


class LogitsAndExtra(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return out, out.detach()


def test_a_tuple_output_is_one_clear_error_in_fit_and_evaluate(digits):
    model = LogitsAndExtra()
    with pytest.raises(NetshrinkError, match=r"cross-entropy.*returns a tuple.*\[0\]"):
        fit(model, digits, TrainConfig(epochs=1))
    with pytest.raises(NetshrinkError, match=r"evaluate.*returns a tuple"):
        evaluate(model, digits.test)


def test_a_float64_model_is_one_clear_error_naming_the_way_out(digits):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).double()
    with pytest.raises(NetshrinkError, match=r"fit: .*float32 .*float64: use model\.float\(\)"):
        fit(model, digits, TrainConfig(epochs=1))
    fit(model.float(), digits, TrainConfig(epochs=1))
