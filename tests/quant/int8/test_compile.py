"""compile_int8: the fastest runtime, checked against the reference, and clear refusals."""

import copy
import re

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, compile_int8
from netshrink.quant.int8 import reference

from .conftest import build_case, quantized

pytest.importorskip("onnxruntime")


def test_auto_times_both_runtimes_and_keeps_the_faster():
    model, data, _ = build_case("resnet8")
    compiled = compile_int8(model, data[:4], data=data, repeats=3)
    assert set(compiled.timings) == {"torch", "torch, fbgemm kernels", "onnxruntime",
                                     "onnxruntime, float kernels", "onnxruntime, mixed kernels"}
    assert compiled.variant == min(compiled.timings, key=compiled.timings.get)
    assert compiled.runtime in ("torch", "onnxruntime")
    x = data[:4]
    expected = reference.run(compiled.program, x)
    assert (compiled(x) - expected).abs().max() < 0.05 * expected.abs().max()


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_a_named_runtime_is_used_as_asked(runtime, tmp_path):
    model, data, _ = build_case("lenet5")
    kernels = "integer" if runtime == "onnxruntime" else "onednn"
    compiled = compile_int8(model, data[:2], runtime=runtime, kernels=kernels)
    assert compiled.runtime == runtime and compiled.timings == {}
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-3)
    if runtime == "onnxruntime":
        assert compiled.save_onnx(tmp_path / "m.onnx").stat().st_size > 0
    else:
        assert compiled.code.startswith("def forward(")
        with pytest.raises(NetshrinkError, match="runtime='onnxruntime'"):
            compiled.save_onnx(tmp_path / "m.onnx")


def test_dynamic_models_run_as_they_are_or_as_integer_onnx():
    torch.manual_seed(0)
    model = models.create("lenet300", (1, 8, 8), 10).eval()
    netshrink.quantize_(model, Dynamic(bits=7, activation_bits=8, granularity="tensor"))
    x = torch.rand(8, 1, 8, 8)
    compiled = compile_int8(model, x, runtime="auto", repeats=3)
    assert set(compiled.timings) == {"torch", "onnxruntime"}
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_refused_by_name():
    model, data, _ = build_case("lenet300")
    with pytest.raises(NetshrinkError, match="runtime='tensorrt'"):
        compile_int8(model, data[:2], runtime="tensorrt")
    with pytest.raises(NetshrinkError, match="kernels='float'"):
        compile_int8(model, data[:2], runtime="torch", kernels="float")
    with pytest.raises(NetshrinkError, match="kernels='fbgemm' is not a choice of runtime "
                                             "'onnxruntime'"):
        compile_int8(model, data[:2], runtime="onnxruntime", kernels="fbgemm")
    with pytest.raises(NetshrinkError, match="kernels='cuda'"):
        compile_int8(model, data[:2], kernels="cuda")
    with pytest.raises(NetshrinkError, match="threads=0"):
        compile_int8(model, data[:2], threads=0)
    with pytest.raises(NetshrinkError, match="example"):
        compile_int8(model, [1, 2])
    float_model = models.create("lenet300", (1, 8, 8), 10)
    with pytest.raises(NetshrinkError, match="quantize it first"):
        compile_int8(float_model, data[:2])


def test_a_pruned_then_quantized_model_compiles_to_the_same_program_as_the_dense():
    torch.manual_seed(0)
    dense = models.create("lenet300", (1, 8, 8), 10).eval()
    data = torch.rand(64, 1, 8, 8)
    pruned = copy.deepcopy(dense)
    netshrink.prune_(pruned, "magnitude", sparsity=0.9, scope="layerwise")
    a, b = (compile_int8(quantized(m, data), data[:1], runtime="torch") for m in (dense, pruned))
    def shape_of(code: str) -> str:  # the code with its numbers (scales, zero points) blanked
        return re.sub(r"\b\d+(\.\d+)?(e[-+]?\d+)?\b", "#", code)

    # the same kernels, shapes and layouts: only weights and scales differ
    assert shape_of(a.code) == shape_of(b.code)


def test_a_saved_and_loaded_model_compiles_to_the_same_outputs(tmp_path):
    model, data, _ = build_case("lenet5")
    path = netshrink.save(model, tmp_path / "lenet5-int8.safetensors")
    loaded = netshrink.load(path)
    x = data[:8]
    # one choice of kernels: oneDNN's and fbgemm's float output stages round differently, and
    # which is faster is a tie on small nets (timing would pick either, side by side)
    before = compile_int8(model, x, runtime="torch", kernels="onednn")(x)
    after = compile_int8(loaded, x, runtime="torch", kernels="onednn")(x)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_a_compiled_model_is_a_module_that_evaluate_takes():
    from netshrink.data import from_tensors
    from netshrink.train import evaluate

    model, data, _ = build_case("lenet300")
    compiled = compile_int8(model, data[:8], runtime="torch", kernels="onednn")
    labels = torch.randint(0, 10, (32,))
    splits = from_tensors((data[:32], labels), (data[:32], labels))
    with torch.no_grad():
        assert evaluate(compiled, splits.test) == pytest.approx(evaluate(model, splits.test))
    assert "variant='torch'" in repr(compiled)


def test_a_quantized_sentence_encoder_compiles_through_its_own_integer_onnx_export():
    transformers = pytest.importorskip("transformers")
    from netshrink.models import minilm
    from netshrink.quant import minilm_onnx

    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=32)
    torch.manual_seed(0)
    encoder = minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False))
    netshrink.quantize_(encoder.eval(), minilm_onnx.INTEGER_CONFIG)
    ids = torch.randint(1, 60, (3, 10))
    batch = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    compiled = compile_int8(encoder, batch, runtime="onnxruntime")
    with torch.no_grad():
        expected = encoder(*batch)
    assert torch.nn.functional.cosine_similarity(compiled(*batch), expected).min() > 0.99


def test_a_runtime_that_disagrees_with_the_reference_is_left_out_under_auto(monkeypatch):
    from netshrink.quant.int8 import torch_backend

    model, data, _ = build_case("lenet5")
    right = torch_backend.TorchProgram.__call__
    monkeypatch.setattr(torch_backend.TorchProgram, "__call__",
                        lambda self, *x: right(self, *x) + 100.0)
    compiled = compile_int8(model, data[:4], data=data, repeats=3)
    assert compiled.runtime == "onnxruntime"
    assert "disagrees" in compiled.skipped["torch"] and "torch" not in compiled.timings
    with pytest.raises(NetshrinkError, match="runtime 'torch' disagrees"):
        compile_int8(model, data[:4], data=data, runtime="torch")


class DictHeads(torch.nn.Module):
    """A user's model whose forward returns a dict of two heads."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(16, 16)
        self.logits = torch.nn.Linear(16, 5)
        self.aux = torch.nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return {"logits": self.logits(h), "aux": self.aux(h)}


@pytest.mark.parametrize("runtime", ["torch", "auto"])
def test_a_dynamic_model_returning_a_dict_is_refused_clearly(runtime):
    torch.manual_seed(0)
    model = DictHeads().eval()
    netshrink.quantize_(model, Dynamic(bits=7, activation_bits=8, granularity="tensor"))
    with pytest.raises(NetshrinkError, match="returns a tensor or a tuple of tensors"):
        compile_int8(model, torch.randn(8, 16), runtime=runtime, repeats=3)


def test_gptq_rows_then_dynamic_compile_to_integer_onnx_with_their_own_codes():
    from netshrink.quant import WeightOnly

    torch.manual_seed(0)
    model = models.create("lenet300", (1, 8, 8), 10).eval()
    x = torch.rand(64, 1, 8, 8)
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=None), data=x)
    netshrink.quantize_(model, Dynamic(bits=7, activation_bits=8, granularity="tensor"))
    assert {m.weight_bits for m in model.modules() if hasattr(m, "weight_bits")} == {5}
    compiled = compile_int8(model, x[:8], runtime="onnxruntime")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x[:8]), model(x[:8]), rtol=1e-4, atol=1e-4)
