"""Integer ONNX export: integer operators, the same arithmetic in onnxruntime, no saturation."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.quant import (
    ActivationSpec,
    Dynamic,
    OnnxRunner,
    QuantLinear,
    Static,
    export_onnx,
    kernels,
)
from netshrink.quant.modules import QuantConvNd
from netshrink.quant.onnx_integer import (
    DYNAMIC,
    IntegerMatMul,
    input_quantization,
    weight_is_signed,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ONNX_DYNAMIC = Dynamic(bits=7, activation_bits=8, granularity="tensor")
FLOAT_PRODUCTS = {"MatMul", "Gemm", "Conv"}


def _graph(path):
    return onnx.load(str(path)).graph


def _op_types(path) -> set[str]:
    return {node.op_type for node in _graph(path).node}


def _initializer_types(path) -> dict[str, int]:
    return {t.name: t.data_type for t in _graph(path).initializer}


def test_dynamic_mlp_exports_matmul_integer_and_matches_the_model(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", (1, 8, 8), 10).eval()
    netshrink.quantize_(model, ONNX_DYNAMIC)
    x = torch.randn(32, 1, 8, 8)
    path = export_onnx(model, x[:2], tmp_path / "m.onnx", mode="integer")
    ops = _op_types(path)
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert not ops & FLOAT_PRODUCTS  # every product is an integer one
    weights = [t for name, t in _initializer_types(path).items() if name.endswith("onnx_weight")]
    assert weights == [onnx.TensorProto.INT8] * 3  # 7-bit weights stay int8 (see below)
    got = OnnxRunner(path, threads=1)(x)
    expected = model(x)  # netshrink's own integer kernel, the same integers
    # Same int32 sums; the output is one float multiply-add of them, which onnxruntime may
    # fuse (FMA): equal to float32 rounding, and a later layer's input can move one step
    # only if a value lies within that rounding of a rounding tie (not for these inputs).
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_static_cnn_exports_conv_integer_and_matches_the_model(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet5", (1, 12, 12), 10).eval()
    x = torch.rand(64, 1, 12, 12)
    netshrink.quantize_(model, Static(observer="minmax"), data=x)
    path = export_onnx(model, x[:2], tmp_path / "m.onnx", mode="integer")
    ops = _op_types(path)
    assert {"QuantizeLinear", "ConvInteger", "MatMulInteger"} <= ops
    # inputs narrower than uint8 (7-bit on CPUs without VNNI) are clipped into their range
    # first; 8-bit ones need no Clip (QuantizeLinear saturates at 0 and 255)
    narrow = any((how.qmin, how.qmax) != (0, 255) for how in
                 (input_quantization(m) for m in model.modules()
                  if isinstance(m, (QuantLinear, QuantConvNd))))
    assert ("Clip" in ops) == narrow
    assert not ops & FLOAT_PRODUCTS
    expected = model(x)
    got = OnnxRunner(path, threads=1)(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def _exact_linear(k: int, n: int, weight_bits: int, weight_value: int) -> QuantLinear:
    """A dynamic per-tensor layer with every weight integer equal to `weight_value`."""
    layer = QuantLinear(k, n, bias=False, weight_bits=weight_bits,
                        activation=ActivationSpec(8, False, "tensor", static=False),
                        kernel="reference", name="worst")
    layer.set_weight(torch.full((n, k), weight_value, dtype=torch.int8), torch.ones(n))
    return layer.eval()


@pytest.mark.parametrize("weight_bits, weight_value, stored", [
    (7, 63, onnx.TensorProto.INT8),     # 2 x 255 x 63 = 32,130 fits int16: uint8 x int8
    (7, -63, onnx.TensorProto.INT8),
    (8, 127, onnx.TensorProto.UINT8),   # 2 x 255 x 127 = 64,770 would not: uint8 x uint8
    (8, -127, onnx.TensorProto.UINT8),
])
def test_worst_case_inputs_do_not_saturate(tmp_path, weight_bits, weight_value, stored):
    k, n = 384, 8
    model = nn.Sequential(_exact_linear(k, n, weight_bits, weight_value))
    path = export_onnx(model, torch.ones(2, k), tmp_path / "w.onnx", mode="integer")
    assert _initializer_types(path)["0.onnx_weight"] == stored
    x = torch.full((4, k), 2.55)  # range [0, 2.55]: every input integer is 255, zero point 0
    got = OnnxRunner(path, threads=1)(x)
    # exact: 384 products of 255 and the weight, times the input scale (2.55 / 255)
    expected = torch.full((4, n), k * 255.0 * weight_value) * torch.tensor(2.55 / 255)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


@pytest.mark.skipif(not kernels.is_x86() or kernels.has_vnni(),
                    reason="the int16 pair saturation exists on x86 CPUs without VNNI")
def test_uint8_times_8bit_int8_does_saturate_on_this_cpu():
    """Why the rule above exists: the same worst case with int8 weights of 127 is wrong here."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k = 384
    weight = numpy_helper.from_array(np.full((k, 1), 127, np.int8), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, ["M", k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, ["M", 1])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = int(session.run(None, {"A": np.full((4, k), 255, np.uint8)})[0][0, 0])
    assert got != k * 255 * 127  # saturated pairs: 32,767 each instead of 64,770


def test_weight_type_rule():
    assert weight_is_signed(8, 7) and weight_is_signed(7, 8)
    assert not weight_is_signed(8, 8)


class _Product(nn.Module):
    """A projection, then a product of two activations (as attention's Q K^T)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, a, b):
        return IntegerMatMul.apply(self.proj(a), b, DYNAMIC)


def test_activation_products_match_their_integer_reference(tmp_path):
    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 7, 16), torch.randn(2, 3, 16, 5)
    module = _Product()
    netshrink.quantize_(module, ONNX_DYNAMIC)
    path = export_onnx(module, (a, b), tmp_path / "p.onnx", mode="integer")
    ops = _op_types(path)
    assert "MatMulInteger" in ops and not ops & FLOAT_PRODUCTS
    expected = module(a, b)  # the same arithmetic in PyTorch
    got = OnnxRunner(path, threads=1)(a, b)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    exact = module.proj(a) @ b  # and it is the product, to 8-bit precision
    assert float((expected - exact).abs().max()) < 0.05 * float(exact.abs().max())


@pytest.mark.parametrize("config, match", [
    (Dynamic(), "per row"),                                          # one scale per token
    (Dynamic(bits=7, activation_bits=7, granularity="tensor"), "8-bit asymmetric"),
])
def test_dynamic_configs_without_an_integer_form_are_refused(tmp_path, config, match):
    model = models.create("lenet300", (1, 8, 8), 10)
    netshrink.quantize_(model, config)
    with pytest.raises(NetshrinkError, match=match):
        export_onnx(model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx", mode="integer")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_mode_and_float_models_are_refused(tmp_path):
    model = models.create("lenet300", (1, 8, 8), 10)
    with pytest.raises(NetshrinkError, match="no int8 layers"):
        export_onnx(model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx", mode="integer")
    netshrink.quantize_(model, ONNX_DYNAMIC)
    with pytest.raises(NetshrinkError, match="mode="):
        export_onnx(model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx", mode="int8")
    assert list(tmp_path.iterdir()) == []


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = models.create("lenet300", (1, 8, 8), 10)
    netshrink.quantize_(model, ONNX_DYNAMIC)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, torch.rand(2, 1, 8, 8), tmp_path / "m.onnx", mode="integer")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
