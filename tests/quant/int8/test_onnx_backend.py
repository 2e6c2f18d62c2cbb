"""The onnxruntime runtime (QLinear operators) against the reference arithmetic."""

import re

import pytest
import torch

pytest.importorskip("onnxruntime")

from netshrink.quant.int8 import onnx_backend, reference

from .conftest import assert_matches_reference, build_case


@pytest.mark.parametrize("kernels", onnx_backend.KERNELS)
def test_every_op_matches_the_reference_arithmetic(case, kernels):
    _, _, data, program = case
    x = torch.rand(6, *data.shape[1:])
    got = onnx_backend.run_values(program, x, kernels=kernels)
    assert_matches_reference(program, got, (x,))


def test_float_kernels_run_the_layers_with_small_reductions_or_all():
    _, _, program = build_case("lenet5")
    ops = {k: [n.op_type for n in onnx_backend.to_onnx(program, k).graph.node]
           for k in onnx_backend.KERNELS}
    assert "Conv" not in ops["integer"] and ops["integer"].count("QLinearConv") == 2
    assert ops["mixed"].count("Conv") == 1 and ops["mixed"].count("QLinearConv") == 1
    assert not {"QLinearConv", "QGemm"} & set(ops["float"])


def test_the_graph_uses_fused_integer_operators_and_int8_weights(tmp_path):
    import onnx

    _, _, program = build_case("resnet8")
    runner = onnx_backend.OnnxProgram(program, threads=1)
    ops = {node.op_type for node in runner.model.graph.node}
    assert {"QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool"} <= ops
    assert not ops & {"Conv", "Gemm", "MatMul", "Add"}  # no float products or adds
    path = runner.save(tmp_path / "m.onnx")
    weights = [t for t in onnx.load(str(path)).graph.initializer
               if re.fullmatch(r"weight_\d+", t.name)]
    # int8, or uint8 (w + 128) where 8-bit inputs (CPUs with VNNI) would let an int8 pair
    # saturate in onnxruntime's u8 x s8 kernels (test_8_bit_inputs_store_weights_as_uint8...)
    eight_bit = program.qparams(program.ops[0].output).qmax == 255
    stored = onnx.TensorProto.UINT8 if eight_bit else onnx.TensorProto.INT8
    assert weights and all(t.data_type == stored for t in weights)
    x = torch.rand(3, 1, 12, 12)
    expected = reference.run(program, x)  # the same program: differences are roundings
    assert (runner(x) - expected).abs().max() < 0.05 * expected.abs().max()


def test_8_bit_inputs_store_weights_as_uint8_so_no_pair_saturates():
    _, _, program = build_case("lenet300")
    wide = next(op for op in program.ops if op.kind == "Dense")
    g = onnx_backend._Graph()
    onnx_backend._weight(g, wide.weight, wide, activation_bits=8)
    assert g.initializers[0].data_type == 2  # uint8, w + 128
    g = onnx_backend._Graph()
    onnx_backend._weight(g, wide.weight, wide, activation_bits=7)
    assert g.initializers[0].data_type == 3  # int8
