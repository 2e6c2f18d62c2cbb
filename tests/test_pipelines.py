"""The issue's end-to-end promises, each on a real (small) training run."""

import copy

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.prune import current_mask, density
from netshrink.quant import QAT, Dynamic, Static, convert, export_onnx
from netshrink.quant.modules import QuantLinear
from netshrink.train import TrainConfig, evaluate, fit
from user_models import TokenTransformer


def test_prune_qat_convert_save_load_into_a_fresh_instance(digits, tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet5", digits.input_shape, digits.num_classes)
    fit(model, digits, TrainConfig(epochs=10, device="cpu"), progress=False)
    mask = netshrink.prune_(model, "magnitude", sparsity=0.9)
    assert mask.density() == pytest.approx(0.10, abs=5e-4)
    netshrink.quantize_(model, QAT(), data=digits)
    fit(model, digits, TrainConfig(epochs=2, device="cpu"), progress=False)
    convert(model)
    assert density(model) == mask.density()  # exactly: no pruned weight came back
    path = netshrink.save(model, tmp_path / "lenet5.safetensors")
    fresh = models.create("lenet5", digits.input_shape, digits.num_classes)
    loaded = netshrink.load(path, model=fresh)
    assert density(loaded) == mask.density()
    restored = current_mask(loaded)
    assert all(torch.equal(restored[n], mask[n]) for n in mask)
    x = digits.test.tensors[0][:64]
    assert torch.equal(loaded(x), model(x))
    assert evaluate(loaded, digits.test)[1] > 0.5  # a small net at 10% density; chance is 0.1


def _tokens(n=96, length=9, vocab=40, seed=0):
    """A learnable task: the class is the most frequent token of a sentence, modulo 5."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (n, length), generator=g)
    labels = torch.mode(tokens % 5, dim=1).values
    return tokens, labels


@pytest.fixture(scope="module")
def trained_transformer():
    """A user-written Embedding + 2 TransformerEncoderLayer classifier trained with fit on
    integer token tensors, then pruned by a data-driven score and by magnitude, retrained."""
    torch.manual_seed(0)
    model = TokenTransformer()
    tokens, labels = _tokens(n=400)
    splits = netshrink.data.from_tensors((tokens, labels), val_size=40)
    assert splits.train.tensors[0].dtype == torch.int64  # token ids stay integers
    result = fit(model, splits, TrainConfig(epochs=12, lr=3e-3, device="cpu"), progress=False)
    assert result.test_accuracy > 0.45  # chance is about 0.2
    netshrink.prune_(model, "taylor", splits, sparsity=0.3)
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    fit(model, splits, TrainConfig(epochs=2, lr=1e-3, device="cpu"), progress=False)
    return model.eval(), tokens


@pytest.mark.parametrize("config", ["dynamic", "static"])
def test_a_user_transformer_quantizes_whole_exports_and_reloads(trained_transformer, config,
                                                                 tmp_path):
    pytest.importorskip("onnxruntime")
    from netshrink.quant.onnx_runner import OnnxRunner

    model, tokens = copy.deepcopy(trained_transformer[0]), trained_transformer[1]
    mask = current_mask(model)
    assert mask.density() == pytest.approx(0.5, abs=1e-3)
    if config == "dynamic":
        report = netshrink.quantize_(model, Dynamic(bits=7, activation_bits=8,
                                                   granularity="tensor"))
    else:
        report = netshrink.quantize_(model, Static(), data=tokens[:64])
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert linears == []  # attention's projections included: all integer
    integer = [n for n, m in model.named_modules() if isinstance(m, QuantLinear)]
    assert len(integer) == 2 * 6 + 1  # per layer: q, k, v, out, linear1, linear2; the head
    assert {r.name for r in report if r.fate == "float"} == {
        f"encoder.layers.{i}.norm{j}" for i in range(2) for j in (1, 2)}  # each one named
    assert report.names("decomposed") == [f"encoder.layers.{i}.self_attn" for i in range(2)]
    assert density(model) == mask.density()  # the mask went through decomposition
    with torch.no_grad():
        expected = model(tokens[:8])
    path = netshrink.save(model, tmp_path / "t.safetensors")
    loaded = netshrink.load(path, model=TokenTransformer())
    with torch.no_grad():
        assert torch.equal(loaded(tokens[:8]), expected)
    assert density(loaded) == mask.density()
    mode = "integer" if config == "dynamic" else "qdq"
    onnx_path = export_onnx(model, tokens[:2], tmp_path / "t.onnx", mode=mode)
    runner = OnnxRunner(onnx_path, threads=1)
    torch.testing.assert_close(runner(tokens[:8]), expected, rtol=0, atol=2e-3)
