"""Calibration data of any shape: token ids, positional and keyword inputs, in every form."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import netshrink
from netshrink import NetshrinkError
from netshrink.data import Examples, inputs
from netshrink.quant import Static
from netshrink.quant.calibration import calibration_batches
from netshrink.quant.modules import QuantLinear


def static(model, data):
    """A calibrated integer copy of `model`."""
    quantized = copy.deepcopy(model).eval()
    netshrink.quantize_(quantized, Static(observer="minmax"), data=data)
    return quantized


@pytest.mark.parametrize("case", ["tokens", "pair", "keywords"])
def test_static_calibrates_on_inputs_of_any_shape(any_inputs, case):
    build, splits = any_inputs[case]
    torch.manual_seed(0)
    model = build().eval()
    quantized = static(model, splits)
    assert any(isinstance(m, QuantLinear) for m in quantized.modules())
    x = splits.test.inputs
    agree = (inputs.call(quantized, x).argmax(1) == inputs.call(model, x).argmax(1)).float()
    assert float(agree.mean()) >= 0.9


def test_each_input_reaches_its_own_layers(any_inputs):
    """Scaling one positional input by 10 scales the calibrated range of its layer only."""
    build, splits = any_inputs["pair"]
    torch.manual_seed(0)
    model = build().eval()
    image, vector = splits.train.inputs
    plain, louder = static(model, (image, vector)), static(model, (image, 10 * vector))
    assert float(louder.side.input_scale / plain.side.input_scale) == pytest.approx(10, rel=1e-4)
    assert float(louder.conv.input_scale) == pytest.approx(float(plain.conv.input_scale))
    build, splits = any_inputs["keywords"]
    model = build().eval()
    x = splits.train.inputs
    plain = static(model, x)
    louder = static(model, {"features": 10 * x["features"], "tokens": x["tokens"]})
    assert float(louder.dense.input_scale / plain.dense.input_scale) == pytest.approx(10,
                                                                                      rel=1e-4)


def test_every_form_of_calibration_data_gives_the_same_batches(any_inputs):
    _, splits = any_inputs["pair"]
    x, y = splits.train.tensors
    expected = [inputs.take(x, slice(0, 100)), inputs.take(x, slice(100, None))]
    forms = {
        "loader of examples": DataLoader(Examples(x, y), batch_size=100),
        "(inputs, labels) pairs": [(inputs.take(x, slice(0, 100)), y[:100]),
                                   (inputs.take(x, slice(100, None)), y[100:])],
    }
    for name, data in forms.items():
        got = list(calibration_batches(data, torch.device("cpu")))
        assert len(got) == 2 and all(inputs.equal(g, e) for g, e in zip(got, expected,
                                                                         strict=True)), name
    for data in (x, splits, splits.train):
        joined = inputs.concat(list(calibration_batches(data, torch.device("cpu"))))
        assert inputs.equal(joined, x)


def test_calibration_data_that_does_not_fit_is_one_clear_error(any_inputs):
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3)).eval()
    x = torch.rand(16, 6)
    with pytest.raises(NetshrinkError, match="positional arguments: pass the inputs alone"):
        netshrink.quantize_(model, Static(), data=(x, torch.arange(16)))
    with pytest.raises(NetshrinkError, match="not str"):
        netshrink.quantize_(model, Static(), data="inputs")
    with pytest.raises(NetshrinkError, match="calibration data is empty"):
        netshrink.quantize_(model, Static(), data={"x": torch.empty(0, 6)})
    build, splits = any_inputs["keywords"]
    with pytest.raises(NetshrinkError, match="does not fit the model"):
        netshrink.quantize_(build().eval(), Static(), data=splits.train.inputs["features"])
