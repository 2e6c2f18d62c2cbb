"""The deployment paths of a compressed sentence encoder, on a MiniLM-shaped toy (the real
model runs in `netshrink reproduce transformer`)."""

import pytest
import torch

import netshrink
from netshrink.prune import StructuredConfig
from netshrink.quant import WeightOnly, WeightOnlyEmbedding

transformers = pytest.importorskip("transformers")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from netshrink.models import minilm  # noqa: E402
from netshrink.quant import minilm_deploy, minilm_onnx  # noqa: E402


def _toy(seed=0):
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=64, initializer_range=0.2)
    torch.manual_seed(seed)
    return minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 120, (4, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(torch.as_tensor(a), b).min())


def test_pruned_heads_and_4bit_embeddings_export_and_match_pytorch(tmp_path):
    model = _toy()
    x = _batch()
    netshrink.prune_(model, StructuredConfig(sparsity=0.5, targets=("heads", "ffn")), example=x)
    assert model.bert.encoder.layer[0].attention.self.num_attention_heads == 2
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=16, rounding="rtn",
                                          skip=("bert.encoder",)))
    assert isinstance(model.bert.embeddings.word_embeddings, WeightOnlyEmbedding)
    reference = model(**x).detach()
    runner, path, quantized = minilm_deploy.int8(model, tmp_path, threads=1)
    assert isinstance(quantized.bert.embeddings.word_embeddings, WeightOnlyEmbedding)
    with torch.no_grad():
        in_torch = minilm_onnx.ExportableEncoder(quantized)(**x)
    in_onnx = torch.as_tensor(runner(**x))
    assert torch.allclose(in_onnx, in_torch, atol=1e-4)
    assert _cosine(in_onnx, reference) > 0.98
    tables = {t.name: t for t in onnx.load(str(path)).graph.initializer}
    packed = [t for t in tables.values() if t.data_type == onnx.TensorProto.UINT8
              and list(t.dims) in ([120, 32 // 2], [120 * 32 // 2])]
    assert packed  # the word embeddings travel as 4-bit codes, two per byte
    assert not [t for t in tables.values() if list(t.dims) == [120, 32]]  # no float table


def test_onnxruntimes_own_int8_and_netshrinks_agree_with_float(tmp_path):
    model = _toy()
    x = _batch()
    reference = model(**x).detach()
    ort_runner, ort_path = minilm_deploy.onnxruntime_int8(model, tmp_path, threads=1)
    ops = {n.op_type for n in onnx.load(str(ort_path)).graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}
    runner, _, _ = minilm_deploy.int8(model, tmp_path, threads=1)
    assert _cosine(ort_runner(**x), reference) > 0.98
    assert _cosine(runner(**x), reference) > 0.98
    float_path = minilm_onnx.export_graph(model, tmp_path / "float.onnx")
    assert torch.allclose(torch.as_tensor(minilm_onnx.runner(float_path, 1)(**x)), reference,
                          atol=1e-5)


def _calibration():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 120, (8, 20), generator=g)
    return [{"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "token_type_ids": torch.zeros_like(ids)}]


def test_gptq_rows_run_as_integer_layers_with_their_own_codes(tmp_path):
    from netshrink.quant.modules import QuantLinear
    from netshrink.quant.weight_only import WeightOnlyLinear

    model = _toy()
    x = _batch()
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=None, rounding="gptq"),
                        data=_calibration())
    weight_only = {name: m for name, m in model.named_modules()
                   if isinstance(m, WeightOnlyLinear)}
    assert len(weight_only) == 2 * 6  # q, k, v, attention output, intermediate, output
    reference = model(**x).detach()
    runner, path, quantized = minilm_deploy.int8(model, tmp_path, threads=1)
    for name, layer in weight_only.items():
        integer = quantized.get_submodule(name)
        assert isinstance(integer, QuantLinear) and integer.weight_bits == 5
        # the integers are the codes minus their zero: the same weights, GPTQ's rounding kept
        assert torch.equal(integer.weight.float() * integer.weight_scale[:, None],
                           layer.dequantized())
        assert int(integer.weight.abs().max()) <= 15
    with torch.no_grad():
        in_torch = minilm_onnx.ExportableEncoder(quantized)(**x)
    in_onnx = torch.as_tensor(runner(**x))
    assert torch.allclose(in_onnx, in_torch, atol=1e-4)
    assert _cosine(in_onnx, reference) > 0.99  # only the inputs' 8-bit rounding differs
    graph = onnx.load(str(path)).graph
    assert "MatMulInteger" in {n.op_type for n in graph.node}
    # the file holds the 4-bit codes (onnx_pack), no int8 weight matrix
    assert not [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8
                and len(t.dims) == 2]
    assert len([t for t in graph.initializer if t.name.endswith("__pack4_codes")]) == 2 * 4


def test_weight_only_groups_smaller_than_a_row_have_no_integer_form(tmp_path):
    from netshrink.quant.modules import QuantLinear
    from netshrink.quant.weight_only import integer_linear

    model = _toy()
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=16, rounding="rtn"))
    with pytest.raises(netshrink.NetshrinkError, match=r"groups of 16 .*group_size=None"):
        minilm_deploy.int8(model, tmp_path, threads=1)
    assert not list(tmp_path.iterdir())  # refused before anything was written
    layer = model.bert.encoder.layer[0].intermediate.dense
    with pytest.raises(netshrink.NetshrinkError, match="group_size=None"):
        integer_linear(layer, QuantLinear(layer.in_features, layer.out_features))


@pytest.mark.parametrize("bits", [2, 3, 5])
def test_embeddings_of_other_widths_export_as_their_packed_bytes(tmp_path, bits):
    model = _toy()
    x = _batch()
    netshrink.quantize_(model, WeightOnly(bits=bits, group_size=8, rounding="rtn",
                                          skip=("bert.encoder",)))
    table = model.bert.embeddings.word_embeddings
    runner, path, quantized = minilm_deploy.int8(model, tmp_path, threads=1)
    with torch.no_grad():
        in_torch = minilm_onnx.ExportableEncoder(quantized)(**x)
        looked_up = table(x["input_ids"])
    assert torch.allclose(torch.as_tensor(runner(**x)), in_torch, atol=1e-4)
    # the lookup's export form reads the same codes as its PyTorch form
    assert torch.equal(table._export_forward(x["input_ids"]), looked_up)
    sizes = {tuple(t.dims) for t in onnx.load(str(path)).graph.initializer}
    assert (120 * 32 * bits // 8,) in sizes or (120, 32 * bits // 8) in sizes
    assert (120, 32) not in sizes  # no float or int8 table
    from netshrink.quant.onnx_runner import OnnxRunner

    OnnxRunner(path, 1, optimized_path=tmp_path / "optimized.onnx")
    optimized = onnx.load(str(tmp_path / "optimized.onnx")).graph
    # onnxruntime unpacked the whole table once, when the session started: no bit
    # operations are left to run per call
    assert "BitShift" not in {n.op_type for n in optimized.node}


def test_an_embedding_whose_rows_split_bytes_is_refused_for_onnx():
    from netshrink.quant.weight_only import WeightOnlyEmbedding

    table = WeightOnlyEmbedding(10, 6, bits=3, group_size=6)  # 18 bits a row
    with pytest.raises(netshrink.NetshrinkError, match="rows that fill whole bytes"):
        table._export_forward(torch.tensor([1, 2]))


def test_packed_narrow_weights_compute_what_the_int8_weights_did(tmp_path):
    from netshrink.quant import onnx_pack

    model = _toy()
    x = _batch()
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=None, rounding="rtn"))
    quantized = minilm_deploy.quantize_int8(model)
    plain = minilm_onnx.export(quantized, tmp_path / "plain.onnx")
    packed = minilm_onnx.export(quantized, tmp_path / "packed.onnx")
    names = onnx_pack.pack_narrow_weights(packed)
    assert len(names) == 2 * 4  # fused QKV, attention output, intermediate, output per layer
    before = {t.name: t for t in onnx.load(str(plain)).graph.initializer}
    after = {t.name: t for t in onnx.load(str(packed)).graph.initializer}
    for name in names:  # two codes a byte in place of each int8 weight
        assert name not in after
        rows, columns = before[name].dims
        assert list(after[f"{name}__pack4_codes"].dims) == [rows * columns // 2]
    a = minilm_onnx.runner(plain, 1)(**x)
    b = minilm_onnx.runner(packed, 1)(**x)
    assert (a == b).all()  # the same int8 weights, rebuilt when the session starts
    import collections

    from netshrink.quant.onnx_runner import OnnxRunner

    def optimized_ops(path):
        OnnxRunner(path, 1, optimized_path=tmp_path / f"optimized-{path.name}")
        graph = onnx.load(str(tmp_path / f"optimized-{path.name}")).graph
        return graph, collections.Counter(n.op_type for n in graph.node)

    optimized, ops = optimized_ops(packed)
    # onnxruntime folded the unpacking away when the session started: no unpacking per call,
    # and the same fused integer products as the unpacked file's
    assert not [n for n in optimized.node if any("__pack4" in o for o in n.output)]
    assert ops == optimized_ops(plain)[1]


def test_wide_int8_weights_are_left_as_they_are(tmp_path):
    from netshrink.quant import onnx_pack

    quantized = minilm_deploy.quantize_int8(_toy())  # 7-bit weights: up to 127 levels apart
    path = minilm_onnx.export(quantized, tmp_path / "int8.onnx")
    before = path.read_bytes()
    assert onnx_pack.pack_narrow_weights(path) == []
    assert path.read_bytes() == before


def test_the_int8_model_of_gptq_rows_saves_and_loads_into_a_fresh_encoder(tmp_path):
    from netshrink.quant.modules import QuantLinear

    model = _toy()
    x = _batch()
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=None, rounding="gptq"),
                        data=_calibration())
    quantized = minilm_deploy.quantize_int8(model)
    path = netshrink.save(quantized, tmp_path / "int8.safetensors")
    loaded = netshrink.load(path, model=_toy(seed=3))  # another instance, other weights
    layer = loaded.bert.encoder.layer[1].output.dense
    assert isinstance(layer, QuantLinear) and layer.weight_bits == 5  # as it was saved
    with torch.no_grad():
        assert torch.equal(loaded(**x), quantized(**x))
