"""The handler table: every layer type's fate, named; convolutions of every shape and padding."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, Static, handler_for
from netshrink.quant.handlers import LINEAR
from netshrink.quant.modules import QuantConv1d, QuantConv2d, QuantConv3d, QuantLinear


class OwnForward(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.gain


def test_subclasses_keep_the_handler_only_when_they_keep_the_forward():
    assert handler_for(nn.modules.linear.NonDynamicallyQuantizableLinear(3, 3)) is LINEAR
    assert handler_for(OwnForward(3, 3)) is None


def test_the_report_names_every_layer_that_stays_float():
    model = nn.Sequential(nn.Linear(4, 4), OwnForward(4, 4), Scale(), nn.LayerNorm(4),
                          nn.Unflatten(1, (1, 4)), nn.ConvTranspose1d(1, 1, 3), nn.Flatten(),
                          nn.Linear(6, 2))
    report = netshrink.quantize_(model, Dynamic())
    fates = {r.name: (r.fate, r.detail) for r in report}
    assert fates["0"][0] == fates["7"][0] == "integer"
    assert fates["1"][0] == "float" and "forward of its own" in fates["1"][1]
    assert fates["2"][0] == "float" and "gain" in fates["2"][1]
    assert fates["3"] == ("float", "normalization stays float")
    assert "transposed" in fates["5"][1]
    assert "4" not in fates and "6" not in fates  # no parameters: nothing to say
    assert "integer" in str(report) and report.counts()["float"] == 4


@pytest.mark.parametrize("dims,kwargs", [
    (1, {"padding": "same"}), (1, {"padding": 2, "padding_mode": "reflect", "stride": 2}),
    (2, {"padding": "same", "dilation": 2}), (2, {"padding": 1, "padding_mode": "circular"}),
    (2, {"padding": 1, "groups": 4}), (2, {"padding": "valid", "stride": 2}),
    (3, {"padding": 1}), (3, {"padding": "same", "padding_mode": "replicate"}),
])
@pytest.mark.parametrize("config", ["dynamic", "static"])
def test_every_convolution_quantizes_and_follows_the_float_one(dims, kwargs, config):
    torch.manual_seed(0)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    kernel = 4 if kwargs.get("padding") == "same" and dims == 1 else 3
    model = nn.Sequential(conv(4, 8, kernel, **kwargs), nn.ReLU())
    x = torch.randn(6, 4, *([9] * dims))
    expected = model(x)
    quantized = {"dynamic": Dynamic(), "static": Static(observer="minmax")}[config]
    netshrink.quantize_(model, quantized, data=x if config == "static" else None)
    assert type(model[0]) is {1: QuantConv1d, 2: QuantConv2d, 3: QuantConv3d}[dims]
    out = model(x)
    assert out.shape == expected.shape
    assert float((out - expected).norm() / expected.norm()) < 0.05


def test_skip_takes_patterns_and_refuses_one_that_matches_nothing():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 2))
    report = netshrink.quantize_(model, Dynamic(skip=("[23]",)))
    assert isinstance(model[0], QuantLinear) and type(model[2]) is nn.Linear
    assert report.names("skipped") == ["2", "3"]
    with pytest.raises(NetshrinkError, match="'fc' matches no layer"):
        netshrink.quantize_(nn.Sequential(nn.Linear(4, 4)), Dynamic(skip=("fc",)))


def test_quantizing_twice_or_a_qat_model_is_refused():
    model = nn.Sequential(nn.Linear(4, 4))
    netshrink.quantize_(model, Dynamic())
    with pytest.raises(NetshrinkError, match="already quantized"):
        netshrink.quantize_(model, Dynamic())
    qat = nn.Sequential(nn.Linear(4, 4))
    netshrink.quantize_(qat, netshrink.quant.QAT())
    with pytest.raises(NetshrinkError, match="convert"):
        netshrink.quantize_(qat, Dynamic())


def test_qat_leaves_the_training_mode_as_it_was():
    model = nn.Sequential(nn.Linear(4, 4)).train()
    netshrink.quantize_(model, netshrink.quant.QAT(), data=torch.randn(8, 4))
    assert model.training
    frozen = nn.Sequential(nn.Linear(4, 4)).eval()
    netshrink.quantize_(frozen, netshrink.quant.QAT())
    assert not frozen.training
