"""netshrink.models.zoo: the builders give the networks of the papers, at their sizes, and
refuse bad arguments by name."""

import pytest
import torch
from torch import nn

from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.models import zoo


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_paper_sizes():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(models.create("lenet300")) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    mlp = models.create("mlp", widths=[800, 800])
    assert count(mlp) == 784 * 800 + 800 + 800 * 800 + 800 + 800 * 10 + 10
    assert models.create("lenet5")[7].in_features == 16 * 5 * 5


def test_resnet_has_residual_blocks_and_batchnorm():
    model = models.create("resnet", depth=8)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"BasicBlock", "BatchNorm2d"} <= kinds
    with pytest.raises(NetshrinkError, match="6n\\+2"):
        models.create("resnet", depth=10)


def test_lenet5_caffe_has_431k_weights_on_28x28_and_no_relu_after_its_convolutions():
    model = zoo.lenet5_caffe((1, 28, 28), 10)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    assert weights == 20 * 25 + 20 * 50 * 25 + 800 * 500 + 500 * 10
    assert [type(m).__name__ for m in model[:4]] == ["Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d"]
    assert zoo.lenet5_caffe((1, 8, 8), 10)[0].padding == (2, 2)  # small inputs keep a map


def test_lenet5_pads_its_second_convolution_only_on_small_inputs():
    assert zoo.lenet5((1, 28, 28), 10)[3].padding == (0, 0)
    small = zoo.lenet5((1, 8, 8), 10)
    assert small[3].padding == (2, 2) and small(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_mlp_layers_and_dropout():
    model = zoo.mlp((1, 4, 4), 3, widths=[5], dropout=0.5, input_dropout=0.2)
    assert [type(m).__name__ for m in model] == ["Flatten", "Dropout", "Linear", "ReLU",
                                                  "Dropout", "Linear"]
    assert (model[1].p, model[4].p) == (0.2, 0.5)
    assert [type(m).__name__ for m in zoo.mlp((3,), 2, widths=(4,))] == ["Flatten", "Linear",
                                                                          "ReLU", "Linear"]


@pytest.mark.parametrize("widths", [[], [0], [3, -1], [True], [2.5], "300", None])
def test_mlp_refuses_bad_widths(widths):
    with pytest.raises(NetshrinkError, match=r"mlp widths=.* must be a non-empty list of "
                                             r"positive integers"):
        zoo.mlp((1, 4, 4), 3, widths=widths)


@pytest.mark.parametrize(("field", "value"), [("dropout", 1.0), ("input_dropout", -0.1),
                                              ("dropout", float("nan"))])
def test_mlp_refuses_bad_dropout_by_name(field, value):
    with pytest.raises(NetshrinkError, match=f"mlp {field}="):
        zoo.mlp((1, 4, 4), 3, **{field: value})


def test_lottery_convs_skip_pools_once_the_map_is_1x1():
    pools = lambda m: sum(isinstance(x, nn.MaxPool2d) for x in m)  # noqa: E731
    assert pools(zoo.conv6((1, 28, 28), 10)) == 3
    small = zoo.conv6((1, 2, 2), 10)  # 2x2 -> 1x1 after the first pool, then no more pools
    assert pools(small) == 1 and small(torch.rand(2, 1, 2, 2)).shape == (2, 10)
    conv2 = zoo.conv2((1, 8, 8), 10)
    assert [m.out_features for m in conv2 if isinstance(m, nn.Linear)] == [256, 256, 10]
    assert conv2[-5].in_features == 64 * 4 * 4


def test_vgg_width_and_batchnorm():
    model = zoo.vgg((3, 8, 8), 5, width=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [2, 4, 8, 8, 16, 16, 16, 16]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8
    with pytest.raises(NetshrinkError, match="vgg width="):
        zoo.vgg((1, 8, 8), 10, width=0)


def test_resnet_stages_and_projection_shortcuts():
    model = zoo.resnet((3, 8, 8), 4, depth=14, width=2)
    blocks = list(model.blocks)
    assert len(blocks) == 6  # (14 - 2) / 6 = 2 blocks per stage
    assert [b.conv1.out_channels for b in blocks] == [2, 2, 4, 4, 8, 8]
    assert [len(b.shortcut) > 0 for b in blocks] == [False, False, True, False, True, False]
    assert [b.conv1.stride for b in blocks][2] == (2, 2)
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    for bad, words in [({"width": 0}, "resnet width="), ({"depth": 20.0}, "resnet depth="),
                       ({"depth": 2}, "must be 6n\\+2 with n >= 1")]:
        with pytest.raises(NetshrinkError, match=words):
            zoo.resnet((1, 8, 8), 10, **bad)
