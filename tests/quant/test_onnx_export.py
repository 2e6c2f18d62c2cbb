import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, Static, export_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from netshrink.quant.onnx_export import onnx_session  # noqa: E402


@pytest.mark.parametrize("name", ["lenet5", "resnet"])
def test_exported_qdq_model_runs_in_onnxruntime_and_matches(name, tmp_path):
    torch.manual_seed(0)
    kw = {"depth": 8, "width": 4} if name == "resnet" else {}
    model = models.create(name, (1, 12, 12), 10, **kw).eval()
    x = torch.rand(64, 1, 12, 12)
    netshrink.quantize_(model, Static(observer="minmax"), data=x)
    expected = model(x)
    path = export_onnx(model, x[:2], tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    ops = {node.op_type for node in graph.nodes} if hasattr(graph, "nodes") else \
        {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) == sum(1 for m in model.modules() if hasattr(m, "weight_bits"))
    got = torch.from_numpy(onnx_session(path, threads=1).run(None, {"input": x.numpy()})[0])
    # onnxruntime computes in float on the same integers: equal up to float rounding, which
    # can move a value across a rounding boundary of the next layer's input (one step)
    step = float(expected.abs().max()) / 100
    assert float((got - expected).abs().max()) < step
    assert (got.argmax(1) == expected.argmax(1)).float().mean() >= 0.95


def test_dynamic_models_have_no_qdq_form(tmp_path):
    model = models.create("lenet300", (1, 8, 8), 10)
    netshrink.quantize_(model, Dynamic())
    with pytest.raises(NetshrinkError, match="dynamically"):
        export_onnx(model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_weight_only_model_is_pointed_to_torch_onnx_export(tmp_path):
    from netshrink.quant import WeightOnly

    model = models.create("lenet300", (1, 8, 8), 10)
    netshrink.quantize_(model, WeightOnly(rounding="rtn"))
    with pytest.raises(NetshrinkError, match=r"weight-only model exports .* torch\.onnx\.export"):
        export_onnx(model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx")


def test_float_models_are_refused(tmp_path):
    with pytest.raises(NetshrinkError, match="no int8 layers"):
        export_onnx(models.create("lenet300", (1, 8, 8), 10), torch.rand(1, 1, 8, 8),
                    tmp_path / "m.onnx")
