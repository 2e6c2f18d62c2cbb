"""The torch runtime (oneDNN's quantized ops, one generated function) against the reference."""

import pytest
import torch

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
    assert "clamp" not in code.split("\n", 2)[2]  # after the input's quantization
    assert code.count("'hardtanh'") + code.count("'relu'") == 4
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
