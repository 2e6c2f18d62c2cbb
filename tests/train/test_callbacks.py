"""netshrink.train.callbacks: the default hooks change nothing, and the loop finds the hooks a
callback overrides."""

import torch
from torch import nn

from netshrink.train.callbacks import Callback, TrainState, overriding


class Scale(Callback):
    def loss(self, state, inputs, targets, indices, outputs, loss):
        return 2 * loss


class Stopper(Scale):
    def on_eval(self, state, metrics):
        state.stop = True


def test_default_hooks_pass_everything_through():
    model = nn.Linear(2, 2)
    state = TrainState(model, None, None, torch.device("cpu"), total_iterations=5)  # no
    # optimizer: building one costs torch's first-use import of its compiler, seconds
    assert (state.iteration, state.epoch, state.stop, state.extra) == (0, 0, False, {})
    cb = Callback()
    x, y, i = torch.randn(3, 2), torch.tensor([0, 1, 0]), torch.arange(3)
    assert cb.on_batch(state, x, y, i) == (x, y)
    loss = torch.tensor(1.5)
    assert cb.loss(state, x, y, i, model(x), loss) is loss
    assert cb.trainable_parameters() == []
    for hook in ("on_fit_start", "after_backward", "after_step", "on_fit_end"):
        assert getattr(cb, hook)(state) is None
    assert cb.on_eval(state, {}) is None and not state.stop


def test_overriding_finds_overrides_including_inherited_ones():
    plain, scale, stopper = Callback(), Scale(), Stopper()
    callbacks = [plain, scale, stopper]
    assert overriding(callbacks, "loss") == [scale, stopper]
    assert overriding(callbacks, "on_eval") == [stopper]
    assert overriding(callbacks, "after_step") == []
    assert overriding([], "loss") == []


def test_an_instance_attribute_is_not_an_override():
    cb = Callback()
    cb.loss = lambda *args: 0  # only the class counts (the loop calls type(cb) hooks)
    assert overriding([cb], "loss") == []
