"""netshrink.quant.onnx_pack on hand-made graphs: which weights it packs, and that the packed
file computes the same integers (the MiniLM files: tests/quant/test_minilm_deploy.py)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from netshrink.quant import onnx_pack  # noqa: E402


def _graph(path, weight, as_input=False, consumers=2):
    """y_i = MatMulInteger(x, W) for `consumers` nodes sharing one int8 initializer W."""
    k, n = weight.shape
    nodes = [helper.make_node("MatMulInteger", ["x", "W"], [f"y{i}"]) for i in range(consumers)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.UINT8, [None, k])]
    if as_input:
        inputs.append(helper.make_tensor_value_info("W", TensorProto.INT8, [k, n]))
    outputs = [helper.make_tensor_value_info(f"y{i}", TensorProto.INT32, [None, n])
               for i in range(consumers)]
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_a_shared_narrow_weight_is_packed_once_and_computes_the_same(tmp_path):
    rng = np.random.default_rng(0)
    # every column spans 16 levels at its own offset, as code - zero does
    weight = (rng.integers(0, 16, (6, 5)) - rng.integers(0, 16, 5)).astype(np.int8)
    x = rng.integers(0, 256, (3, 6)).astype(np.uint8)
    path = _graph(tmp_path / "m.onnx", weight)
    before = _run(path, x)
    assert onnx_pack.pack_narrow_weights(path) == ["W"]
    graph = onnx.load(str(path)).graph
    assert "W" not in {t.name for t in graph.initializer}
    after = _run(path, x)
    assert all((a == b).all() for a, b in zip(before, after, strict=True))
    assert (before[0] == x.astype(np.int32) @ weight.astype(np.int32)).all()


def test_wide_weights_and_weights_fed_as_inputs_are_left_alone(tmp_path):
    rng = np.random.default_rng(1)
    wide = rng.integers(-60, 60, (6, 5)).astype(np.int8)  # 7-bit weights
    path = _graph(tmp_path / "wide.onnx", wide)
    assert onnx_pack.pack_narrow_weights(path) == []
    narrow = rng.integers(-8, 8, (6, 5)).astype(np.int8)
    path = _graph(tmp_path / "input.onnx", narrow, as_input=True)  # the caller may replace it
    before = path.read_bytes()
    assert onnx_pack.pack_narrow_weights(path) == []
    assert path.read_bytes() == before
