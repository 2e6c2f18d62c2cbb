"""Lowering: which ops a quantized model becomes, where values are stored, and refusals."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, Static
from netshrink.quant.int8 import lower, reference
from netshrink.quant.int8.program import Add, Dense, Quantize, Requantize

from .conftest import TwoInputs, build_case, quantized


def _kinds(program) -> list[str]:
    return [op.kind for op in program.ops]


def test_a_chain_of_layers_and_relus_is_one_quantize_then_layers_writing_uint8():
    model, _, program = build_case("lenet300")
    assert _kinds(program) == ["Reshape", "Quantize", "Dense", "Dense", "Dense"]
    dense = [op for op in program.ops if isinstance(op, Dense)]
    # each layer writes its output in the next layer's calibrated input form, ReLU fused
    layers = [m for m in model.modules() if hasattr(m, "input_scale")]
    for op, reader in zip(dense, layers[1:], strict=False):
        stored = program.qparams(op.output)
        assert stored == lower.input_qparams(reader)
        assert op.lo == stored.zero_point  # the ReLU
    assert not program.values[program.outputs[0]].integer  # the last layer writes floats


def test_chains_without_adds_need_no_calibration_data_and_match_the_quantized_model():
    model, data, _ = build_case("lenet5")
    program = lower.lower(model, data[:2])  # no data: every stored scale is a layer's own
    x = torch.rand(16, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(reference.run(program, x), model(x), rtol=1e-4, atol=1e-4)


def test_residual_blocks_add_in_integers_and_adds_fuse_into_the_layer_before():
    model, data, program = build_case("resnet8")
    adds = [op for op in program.ops if isinstance(op, Add)]
    assert len(adds) == 3
    assert all(op.lo == program.qparams(op.output).zero_point for op in adds)  # ReLU fused
    fused = lower.fuse_residual_adds(program)
    assert fused.count("Add") == 0
    assert sum(1 for op in fused.ops if isinstance(op, Dense) and op.residual) == 3
    x = data[:8]
    with torch.no_grad():
        float_out = model(x)
    for p in (program, fused):  # integer residuals: close to the float-interfaced model
        out = reference.run(p, x)
        assert (out - float_out).abs().max() < 0.05 * float_out.abs().max()


def test_relu6_hardtanh_and_clamp_become_output_bounds():
    _, _, program = build_case("branches")
    assert program.count("Requantize") == 0
    writers = {op.source: op for op in program.ops if isinstance(op, Dense)}
    a, b = writers["a"], writers["b"]
    stored = program.qparams(a.output)
    assert a.lo == stored.level(0.0) and a.hi == min(stored.qmax, stored.level(6.0))
    assert b.lo == stored.level(-1.0) and b.hi == stored.level(2.0)
    assert program.qparams(b.output) == stored  # torch.cat: both written in its form


def test_a_relu_on_a_value_read_elsewhere_stays_a_separate_clamp():
    class Fork(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            h = self.a(x)
            return self.b(torch.relu(h)) + self.c(h)

    torch.manual_seed(0)
    data = torch.randn(64, 4)
    model = Fork().eval()
    netshrink.quantize_(model, Static(observer="minmax"), data=data)
    program = lower.lower(model, data[:2], data)
    clamps = [op for op in program.ops if isinstance(op, Requantize)]
    assert len(clamps) == 1 and clamps[0].source == "relu"
    x = data[:16]  # inside the calibrated ranges
    with torch.no_grad():
        expected = model(x)
    assert (reference.run(program, x) - expected).abs().max() < 0.05 * expected.abs().max()


def test_two_input_models_lower_with_dict_calibration_batches():
    torch.manual_seed(0)
    a, b = torch.randn(64, 6), torch.randn(64, 4)
    model = TwoInputs().eval()
    netshrink.quantize_(model, Static(observer="minmax"), data=[{"a": a, "b": b}])
    program = lower.lower(model, (a[:2], b[:2]), data=[{"a": a, "b": b}])
    assert program.inputs == ["a", "b"]
    assert sum(isinstance(op, Quantize) for op in program.ops) == 2
    with torch.no_grad():
        expected = model(a[:8], b[:8])
    got = reference.run(program, a[:8], b[:8])
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def test_values_no_layer_calibrated_need_data_and_the_error_names_them():
    model, data, _ = build_case("resnet8")
    with pytest.raises(NetshrinkError, match="pass calibration inputs") as err:
        lower.lower(model, data[:2])
    assert "add" in str(err.value)


def test_an_op_without_an_integer_form_is_one_error_naming_it():
    class Sigmoid(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(torch.sigmoid(self.a(x)))

    data = torch.randn(32, 4)
    model = Sigmoid().eval()
    netshrink.quantize_(model, Static(), data=data)
    with pytest.raises(NetshrinkError, match="sigmoid"):
        lower.lower(model, data[:2], data)


def test_dynamic_float_and_untraceable_models_are_refused_by_name():
    torch.manual_seed(0)
    base = models.create("lenet300", (1, 8, 8), 10).eval()
    data = torch.rand(32, 1, 8, 8)
    dynamic = quantized(base, None, Dynamic())
    with pytest.raises(NetshrinkError, match="Dynamic"):
        lower.lower(dynamic, data[:2])
    skipped = quantized(base, data, Static(skip=("3",)))
    with pytest.raises(NetshrinkError, match=r"'3'.*left in float"):
        lower.lower(skipped, data[:2])

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            return self.a(x) if x.sum() > 0 else -self.a(x)

    branchy = quantized(Branchy().eval(), torch.randn(8, 4))
    with pytest.raises(NetshrinkError, match="cannot be traced"):
        lower.lower(branchy, torch.randn(2, 4))


class Conv3dHead(nn.Module):
    """A Conv3d feature extractor under a Linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, dilation=2, padding=2)
        self.head = nn.Linear(8 * 4 * 4 * 4, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


class MaskedAttention(nn.Module):
    """Batch-first attention called with a key_padding_mask, under a Linear head."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 5)

    def forward(self, x, key_padding_mask):
        y, _ = self.attention(x, x, x, key_padding_mask=key_padding_mask)
        return self.head(y.flatten(1)[:, :8])


def test_layers_without_an_integer_program_form_are_named_not_blamed_on_control_flow():
    """A Conv3d and a decomposed attention have no integer-program form: the error names the
    layer, rather than calling the model untraceable for an `if` inside netshrink's own
    modules. (A Conv1d has one: test_conv1d.py.)"""
    torch.manual_seed(0)
    x = torch.randn(16, 3, 4, 4, 4)
    conv = quantized(Conv3dHead().eval(), x)
    with pytest.raises(NetshrinkError, match=r"module 'conv' \(QuantConv3d\): no integer form"):
        lower.lower(conv, x[:2])
    tokens = torch.randn(16, 4, 8)
    mask = torch.zeros(16, 4, dtype=torch.bool)
    mask[:, 3] = True
    attention = MaskedAttention().eval()
    netshrink.quantize_(attention, Static(), data=(tokens, mask))
    with pytest.raises(NetshrinkError, match=r"module 'attention' \(ProjectedAttention\)"):
        lower.lower(attention, (tokens[:2], mask[:2]))


def test_a_pruned_model_lowers_to_the_same_ops_and_shapes_as_the_dense_one():
    torch.manual_seed(0)
    dense = models.create("lenet5", (1, 16, 16), 10).eval()
    data = torch.rand(64, 1, 16, 16)
    pruned = copy.deepcopy(dense)
    netshrink.prune_(pruned, "magnitude", sparsity=0.9, scope="layerwise")
    programs = [lower.lower(quantized(m, data), data[:2]) for m in (dense, pruned)]
    a, b = ([(op.kind, tuple(p.values[op.output].shape)) for op in p.ops] for p in programs)
    assert a == b
    weights = [op.weight for op in programs[1].ops if isinstance(op, Dense)]
    assert sum(int((w == 0).sum()) for w in weights) > 0.85 * sum(w.numel() for w in weights)


def test_macs_count_every_product_of_linear_and_convolution_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    data = torch.rand(32, 1, 8, 8)
    program = lower.lower(quantized(model, data), data[:2])
    assert program.macs() == 4 * 9 * 64 + 4 * (2 * 9) * 36 + 5 * 144


def test_a_structured_pruned_model_lowers_to_the_same_ops_with_fewer_macs():
    # Why a pruned-then-quantized model is at least as fast as the dense one: the same integer
    # ops (nothing added per layer), each over fewer channels (bench_int8_small times both).
    from netshrink.prune import StructuredConfig

    torch.manual_seed(0)
    data = torch.rand(64, 1, 16, 16)
    for name, args in (("lenet5", {}), ("resnet", {"depth": 8, "width": 8})):
        dense = models.create(name, (1, 16, 16), 10, **args).eval()
        pruned = copy.deepcopy(dense)
        netshrink.prune_(pruned, StructuredConfig(sparsity=0.5), example=data[:2])
        a, b = (lower.lower(quantized(m, data), data[:2], data) for m in (dense, pruned))
        assert _kinds(a) == _kinds(b), name
        assert b.macs() < 0.6 * a.macs(), name
        assert [a.values[o].shape for o in a.outputs] == [b.values[o].shape for o in b.outputs]


def test_4_bit_qat_between_8_bit_first_and_last_layers_lowers_and_every_runtime_agrees():
    pytest.importorskip("onnxruntime")
    from netshrink.quant import QAT, convert
    from netshrink.quant.int8 import onnx_backend, torch_backend

    from .conftest import assert_matches_reference

    torch.manual_seed(0)
    data = torch.rand(64, 1, 16, 16)
    model = models.create("lenet5", (1, 16, 16), 10).eval()
    netshrink.quantize_(model, QAT(bits=4, activation_bits=4, lsq=True, first_last_bits=8),
                        data=data)
    convert(model.eval())
    program = lower.lower(model, data[:2])
    tops = [program.qparams(op.inputs[0]).qmax for op in program.ops if isinstance(op, Dense)]
    assert tops[1:-1] == [15] * (len(tops) - 2) and min(tops[0], tops[-1]) >= 127
    x = torch.rand(6, 1, 16, 16)
    with torch.no_grad():
        expected = model(x)
    assert (reference.run(program, x) - expected).abs().max() < 0.05 * expected.abs().max()
    assert_matches_reference(program, onnx_backend.run_values(program, x), (x,))
    if torch_backend.available():
        fused = lower.fuse_residual_adds(program)
        assert_matches_reference(fused, torch_backend.run_values(fused, x), (x,))
