"""Every registered model builds for each input shape, runs forward and backward."""

import pytest
import torch

from netshrink import models
from netshrink.errors import NetshrinkError

IMAGE_MODELS = [name for name in models.names() if name != "minilm"]  # minilm takes tokens


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_forward_and_backward(name, shape):
    model = models.create(name, input_shape=shape, num_classes=7)
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 7)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_errors_name_the_problem():
    with pytest.raises(NetshrinkError, match=r"unknown model 'nope'.*models\.register"):
        models.create("nope")
    with pytest.raises(NetshrinkError, match="has no argument width"):
        models.create("lenet300", width=3)
    with pytest.raises(NetshrinkError, match="init"):
        models.create("lenet300", init="zeros")


def test_glorot_init_is_seeded_and_zero_bias():
    torch.manual_seed(0)
    a = models.create("lenet300", init="glorot")
    torch.manual_seed(0)
    b = models.create("lenet300", init="glorot")
    assert torch.equal(a[1].weight, b[1].weight)
    assert float(a[1].bias.detach().abs().sum()) == 0
    assert abs(float(a[1].weight.detach().std()) - (2 / (784 + 300)) ** 0.5) < 2e-3


def test_the_builtin_table_is_what_names_lists():
    assert set(models.BUILTIN) <= set(models.names())
    assert {"lenet300", "mlp", "lenet5", "vgg", "resnet"} <= set(models.BUILTIN)


def test_defaults_are_the_builders_and_inits():
    assert models.defaults("mlp") == {"init": "default", "widths": (1200, 1200),
                                      "dropout": 0.0, "input_dropout": 0.0}
    assert models.defaults("lenet300") == {"init": "default"}
    assert models.defaults("not-a-model") == {}
