"""MiniLM-shaped toy transformer -> integer ONNX -> onnxruntime (the real MiniLM: slow test)."""

import pytest
import torch

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic

transformers = pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from netshrink.models import minilm  # noqa: E402
from netshrink.quant import minilm_onnx  # noqa: E402


def _toy_encoder():
    """BERT as MiniLM builds it, scaled down: 2 layers, hidden 32, 4 heads."""
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=64)
    torch.manual_seed(0)
    return minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 120, (4, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[3, 5:] = 0
    return ids, mask, torch.zeros_like(ids)


@pytest.fixture(scope="module")
def toy():
    model = _toy_encoder()
    reference = model(*_batch()).detach()
    netshrink.quantize_(model, minilm_onnx.INTEGER_CONFIG)
    return model, reference


@pytest.mark.parametrize("attention", ["float", "integer"])
def test_toy_transformer_exports_integer_ops_and_runs_in_onnxruntime(toy, tmp_path, attention):
    model, reference = toy
    path = minilm_onnx.export(model, tmp_path / "toy.onnx", attention=attention)
    graph = onnx.load(str(path)).graph
    ops = [node.op_type for node in graph.node]
    # per layer: one fused QKV product, the attention output, two feed-forward products
    assert ops.count("MatMulInteger") == 2 * 4 + (4 if attention == "integer" else 0)
    assert "Gemm" not in ops
    initializers = {t.name: t for t in graph.initializer}
    float_weights = [t.name for t in initializers.values()
                     if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2]
    assert float_weights == []  # every matrix (embedding tables too) is stored as integers
    assert initializers["embeddings.word_embeddings.weight"].data_type == onnx.TensorProto.INT8
    if attention == "integer":
        assert "MatMul" not in ops  # attention products are integer too
    runner = minilm_onnx.runner(path, threads=1)
    batch = _batch()
    got = runner(*batch)
    with torch.no_grad():
        same_arithmetic = minilm_onnx.ExportableEncoder(model, attention).eval()(*batch)
    # the graph computes what ExportableEncoder computes in PyTorch: equal to float rounding
    # (unit-length embeddings), unless rounding moves one integer one step somewhere
    assert float((got - same_arithmetic).abs().max()) < 1e-4
    assert float(minilm.cosine_to(reference, got).min()) > 0.99
    assert torch.allclose(got.norm(dim=-1), torch.ones(4), atol=1e-5)


def test_exportable_encoder_with_float_attention_is_the_model(toy):
    """The export's rewrite of self-attention (fused QKV, additive mask) changes nothing."""
    model, _ = toy
    batch = _batch()
    with torch.no_grad():
        torch.testing.assert_close(minilm_onnx.ExportableEncoder(model, "float")(*batch),
                                   model(*batch), rtol=1e-5, atol=1e-6)


def test_fused_qkv_equals_the_three_projections(toy):
    model, _ = toy
    attention = model.bert.encoder.layer[0].attention.self
    fused = minilm_onnx.fuse_qkv(attention)
    x = torch.randn(3, 7, 32)
    with torch.no_grad():
        expected = torch.cat([attention.query(x), attention.key(x), attention.value(x)], -1)
        assert torch.equal(fused(x), expected)


def test_unquantized_or_per_token_encoders_are_refused(tmp_path):
    model = _toy_encoder()
    with pytest.raises(NetshrinkError, match="not quantized"):
        minilm_onnx.export(model, tmp_path / "m.onnx")
    netshrink.quantize_(model, Dynamic())  # per-token input scales: no integer ONNX form
    with pytest.raises(NetshrinkError, match="granularity='tensor'"):
        minilm_onnx.export(model, tmp_path / "m.onnx")
    with pytest.raises(NetshrinkError, match="attention="):
        minilm_onnx.export(model, tmp_path / "m.onnx", attention="fast")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_minilm_integer_onnx_cosine_and_size(tmp_path):
    from netshrink.quant.sentences import EVALUATION

    model = minilm.pretrained()
    reference = minilm.encode(model, EVALUATION)
    float_bytes = netshrink.save(model, tmp_path / "f.safetensors").stat().st_size
    netshrink.quantize_(model, minilm_onnx.INTEGER_CONFIG)
    path = minilm_onnx.export(model, tmp_path / "q.onnx")
    embeddings = minilm.encode(minilm_onnx.runner(path, threads=1), EVALUATION)
    assert float(minilm.cosine_to(reference, embeddings).mean()) >= 0.99
    assert float_bytes / path.stat().st_size >= 3.9
