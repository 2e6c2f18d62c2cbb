import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, OnnxRunner, export_onnx

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def two_input_model(tmp_path_factory):
    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(6, 3), torch.nn.Linear(4, 3)

        def forward(self, x, y):
            return self.a(x) - self.b(y)

    torch.manual_seed(0)
    model = Pair()
    netshrink.quantize_(model, Dynamic(bits=7, activation_bits=8, granularity="tensor"))
    path = tmp_path_factory.mktemp("onnx") / "pair.onnx"
    export_onnx(model, (torch.rand(2, 6), torch.rand(2, 4)), path, mode="integer",
                input_names=["x", "y"])
    return model, path


def test_runner_takes_positional_and_keyword_tensors(two_input_model):
    model, path = two_input_model
    runner = OnnxRunner(path, threads=1)
    assert runner.input_names == ["x", "y"] and runner.output_names == ["output"]
    x, y = torch.rand(5, 6), torch.rand(5, 4)
    expected = model(x, y)
    for got in (runner(x, y), runner(x, y=y), runner(y=y, x=x)):
        assert isinstance(got, torch.Tensor) and got.shape == (5, 3)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_runner_refuses_wrong_inputs(two_input_model):
    runner = OnnxRunner(two_input_model[1], threads=1)
    x, y = torch.rand(1, 6), torch.rand(1, 4)
    with pytest.raises(NetshrinkError, match="missing input"):
        runner(x)
    with pytest.raises(NetshrinkError, match="no input 'z'"):
        runner(x, y, z=x)
    with pytest.raises(NetshrinkError, match="given twice"):
        runner(x, y, x=x)
    with pytest.raises(NetshrinkError, match="3 inputs"):
        runner(x, y, x)
    with pytest.raises(NetshrinkError, match="threads"):
        OnnxRunner(two_input_model[1], threads=0)


def test_runner_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(NetshrinkError, match="no such ONNX file"):
        OnnxRunner(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(NetshrinkError, match="not a valid ONNX model"):
        OnnxRunner(bad)


def test_runner_runs_a_qdq_export_too(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", (1, 8, 8), 10).eval()
    x = torch.rand(16, 1, 8, 8)
    netshrink.quantize_(model, netshrink.quant.Static(observer="minmax"), data=x)
    path = export_onnx(model, x[:1], tmp_path / "q.onnx")
    assert OnnxRunner(path, threads=1)(x).shape == (16, 10)
