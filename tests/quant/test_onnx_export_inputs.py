"""ONNX export of models with positional or keyword inputs: each graph input is named."""

import copy

import pytest
import torch

import netshrink
from netshrink import NetshrinkError
from netshrink.data import inputs
from netshrink.quant import Static, export_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from netshrink.quant.onnx_export import onnx_session  # noqa: E402


def integer_model(build, splits):
    torch.manual_seed(0)
    model = build().eval()
    netshrink.quantize_(model, Static(observer="minmax"), data=splits)
    return model


@pytest.mark.parametrize("mode", ["qdq", "integer"])
def test_positional_and_keyword_inputs_are_named_and_fed_by_name(any_inputs, tmp_path, mode):
    build, splits = any_inputs["pair"]
    model = integer_model(build, splits)
    a, b = splits.test.inputs
    path = export_onnx(model, (a[:2], b[:2]), tmp_path / "pair.onnx", mode=mode)
    session = onnx_session(path, threads=1)
    assert [i.name for i in session.get_inputs()] == ["input_0", "input_1"]
    got = session.run(None, {"input_0": a.numpy(), "input_1": b.numpy()})[0]
    expected = model(a, b)
    assert float((torch.from_numpy(got) - expected).abs().max()) < float(
        expected.abs().max()) / 100

    build, splits = any_inputs["keywords"]
    model = integer_model(build, splits)
    x = splits.test.inputs
    backwards = {"tokens": x["tokens"][:2], "features": x["features"][:2]}  # not forward's order
    path = export_onnx(model, backwards, tmp_path / "keywords.onnx", mode=mode)
    session = onnx_session(path, threads=1)
    assert [i.name for i in session.get_inputs()] == ["features", "tokens"]
    got = session.run(None, {k: v.numpy() for k, v in x.items()})[0]
    expected = inputs.call(model, x)
    assert float((torch.from_numpy(got) - expected).abs().max()) < float(
        expected.abs().max()) / 100


def test_bad_examples_are_refused(any_inputs, tmp_path):
    build, splits = any_inputs["pair"]
    model = integer_model(build, splits)
    with pytest.raises(NetshrinkError, match="dict of them"):
        export_onnx(copy.deepcopy(model), "a", tmp_path / "m.onnx")
    with pytest.raises(NetshrinkError, match="1 names for 2 inputs"):
        export_onnx(model, splits.test.inputs, tmp_path / "m.onnx", input_names=["x"])
    assert not (tmp_path / "m.onnx").exists()


class OptionalKeywords(torch.nn.Module):
    """A forward with parameters the example leaves out: an optional tensor and a number."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.dense = torch.nn.Linear(4, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, tokens, features=None, scale: float = 1.0):
        x = self.embed(tokens).mean(1)
        if features is not None:
            x = x + self.dense(features)
        return self.head(torch.relu(x)) * scale


@pytest.mark.parametrize("mode", ["qdq", "integer"])
def test_keyword_example_exports_only_its_own_inputs(tmp_path, mode):
    """The forward's other parameters (a Python default) are no graph inputs onnxruntime
    would then demand."""
    torch.manual_seed(0)
    x = {"features": torch.randn(32, 4), "tokens": torch.randint(0, 20, (32, 5))}
    model = OptionalKeywords().eval()
    netshrink.quantize_(model, Static(observer="minmax"), data=x)
    path = export_onnx(model, x, tmp_path / "m.onnx", mode=mode)
    session = onnx_session(path, threads=1)
    assert [i.name for i in session.get_inputs()] == ["tokens", "features"]
    got = torch.from_numpy(session.run(None, {k: v.numpy() for k, v in x.items()})[0])
    expected = inputs.call(model, x)
    assert float((got - expected).abs().max()) <= float(expected.abs().max()) / 100
    assert "forward" not in vars(model)  # the model is left as it was
