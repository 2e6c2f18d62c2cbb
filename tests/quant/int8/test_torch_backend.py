"""The torch runtime (oneDNN's quantized ops, one generated function) against the reference."""

import pytest
import torch

from netshrink.errors import NetshrinkError
from netshrink.quant.int8 import lower, reference, torch_backend

from .conftest import assert_matches_reference, build_case

pytestmark = pytest.mark.skipif(not torch_backend.available(),
                                reason="oneDNN's quantized ops need an x86 build of torch")


def test_every_op_matches_the_reference_arithmetic(case):
    _, _, data, program = case
    fused = lower.fuse_residual_adds(program)
    x = torch.rand(6, *data.shape[1:])
    assert_matches_reference(fused, torch_backend.run_values(fused, x), (x,))


def test_the_generated_function_gives_the_same_outputs_as_every_value_mode(case):
    _, _, data, program = case
    fused = lower.fuse_residual_adds(program)
    compiled = torch_backend.TorchProgram(fused)
    x = torch.rand(5, *data.shape[1:])
    everything = torch_backend.run_values(fused, x)
    torch.testing.assert_close(compiled(x), everything[fused.outputs[0]], rtol=0, atol=0)
    # one line per op: nothing is computed in Python between the kernels
    assert compiled.code.count("\n") <= len(fused.ops) + fused.count("Dense") + 2


def test_relu_and_7_bit_bounds_are_the_kernels_post_ops_and_flatten_reads_channels_last():
    _, _, program = build_case("lenet5")
    code = torch_backend.TorchProgram(program).code
    # 7-bit inputs (CPUs without VNNI) clamp the input's integers and bound every layer's
    # output; 8-bit ones need neither where the zero point is 0. No layer clamps in Python:
    # its bounds are post-ops.
    narrow = [op for op in program.ops if op.kind in ("Quantize", "Dense")
              and program.values[op.output].integer and (op.lo, op.hi) != (0, 255)]
    inputs = sum(op.kind == "Quantize" for op in narrow)
    assert code.count("clamp") == inputs
    assert code.count("'hardtanh'") + code.count("'relu'") == len(narrow) - inputs
    if program.qparams(program.ops[0].output).qmax == 127:  # the input's Quantize: 7 bits
        assert len(narrow) - inputs == 4  # the four ReLU layers, each bounded to 7 bits
    assert ".permute(0, 2, 3, 1).flatten(1)" in code  # no copy before the first Linear


def test_a_residual_read_later_is_copied_before_onednn_adds_into_it():
    _, _, program = build_case("resnet8")
    fused = lower.fuse_residual_adds(program)
    compiled = torch_backend.TorchProgram(fused)
    x = torch.rand(4, 1, 12, 12)
    expected = reference.run(fused, x)  # the same program: differences are roundings
    # twice on the same input: nothing the first call wrote in place leaks into the second
    for _ in range(2):
        got = compiled(x)
        assert (got - expected).abs().max() < 0.05 * expected.abs().max()


fbgemm = pytest.mark.skipif(not torch_backend.fbgemm_available(),
                            reason="fbgemm's quantized Linear needs an x86 build of torch")


@fbgemm
def test_linear_layers_on_fbgemm_match_the_reference_arithmetic(case):
    _, _, data, program = case
    fused = lower.fuse_residual_adds(program)
    on_fbgemm = torch_backend.layers_on_fbgemm(fused, "fbgemm")
    linears = [op.output for op in fused.ops if op.kind == "Dense" and not op.conv
               and not op.residual]
    assert on_fbgemm == frozenset(linears)
    x = torch.rand(6, *data.shape[1:])
    everything = torch_backend.run_values(fused, x, on_fbgemm=on_fbgemm)
    assert_matches_reference(fused, everything, (x,))
    compiled = torch_backend.TorchProgram(fused, on_fbgemm)
    torch.testing.assert_close(compiled(x), everything[fused.outputs[0]], rtol=0, atol=0)


@fbgemm
def test_fbgemm_layers_pass_quantized_tensors_on_and_keep_7_bit_bounds():
    _, data, program = build_case("lenet300")
    on_fbgemm = torch_backend.layers_on_fbgemm(program, "fbgemm")
    code = torch_backend.TorchProgram(program, on_fbgemm).code
    assert code.count("torch.ops.quantized.linear") == 2  # the two hidden layers
    assert "_make_per_tensor_quantized_tensor" not in code  # quint8 from the input on
    assert "int_repr" not in code and "onednn" not in code
    assert "F.linear(" in code  # the output layer, on the dequantized weights
    # 7-bit activations: each hidden output is clamped to its calibrated [0, 127]
    x = torch.rand(16, *data.shape[1:]) * 50  # far beyond the calibrated range
    values = torch_backend.run_values(program, x, on_fbgemm=on_fbgemm)
    for name in on_fbgemm:
        if program.values[name].integer:
            op = program.producer(name)
            assert int(values[name].max()) <= op.hi and int(values[name].min()) >= op.lo
    assert_matches_reference(program, values, (x,))


@fbgemm
def test_a_layer_fbgemm_cannot_take_is_refused_by_name():
    _, _, program = build_case("resnet8")
    fused = lower.fuse_residual_adds(program)
    conv = next(op.output for op in fused.ops if op.kind == "Dense" and op.conv)
    with pytest.raises(NetshrinkError, match=f"{conv} is not one"):
        torch_backend.TorchProgram(fused, frozenset([conv]))
    with pytest.raises(NetshrinkError, match="kernels='mkl'"):
        torch_backend.layers_on_fbgemm(fused, "mkl")
    assert torch_backend.layers_on_fbgemm(fused, "onednn") == frozenset()


@fbgemm
def test_a_two_input_user_model_saved_and_loaded_into_a_fresh_instance_runs_on_fbgemm(tmp_path):
    import netshrink
    from netshrink.quant import Static, compile_int8

    from .conftest import TwoInputs

    torch.manual_seed(0)
    a, b = torch.randn(64, 6), torch.randn(64, 4)
    model = TwoInputs().eval()
    netshrink.quantize_(model, Static(observer="minmax"), data=[{"a": a, "b": b}])
    path = netshrink.save(model, tmp_path / "two.safetensors")
    loaded = netshrink.load(path, model=TwoInputs())
    data = [{"a": a, "b": b}]
    before = compile_int8(model, (a[:8], b[:8]), data=data, runtime="torch", kernels="fbgemm")
    after = compile_int8(loaded, (a[:8], b[:8]), data=data, runtime="torch", kernels="fbgemm")
    assert after.variant == "torch, fbgemm kernels"
    assert after.code.count("torch.ops.quantized.linear") == 2  # left and right; out is float
    torch.testing.assert_close(after(a[:8], b[:8]), before(a[:8], b[:8]), rtol=0, atol=0)
    with torch.no_grad():
        expected = model(a[:8], b[:8])
    assert (after(a[:8], b[:8]) - expected).abs().max() < 0.05 * expected.abs().max()
