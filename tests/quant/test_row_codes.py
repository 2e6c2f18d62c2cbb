"""Weight-only rows (one scale per row) on integer kernels, on models netshrink never saw:
quantize_ with Dynamic turns each into the integer Linear of its own codes, exactly."""

import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink.data.inputs import call
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, WeightOnly, WeightOnlyLinear
from netshrink.quant import api as quant_api
from netshrink.quant.modules import QuantLinear
from tests.user_models import build

MODELS = ["token_transformer", "shared_mlp", "two_inputs", "keyword_inputs", "tied_lm",
          "residual_cnn"]


def _rows(name: str, bits: int = 4):
    model, inputs, _ = build(name)
    model.eval()
    netshrink.quantize_(model, WeightOnly(bits=bits, group_size=None, embeddings=False),
                        data=inputs)
    return model, inputs


def _weight_only_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, WeightOnlyLinear)}


@pytest.mark.parametrize("name", MODELS)
def test_rows_become_integer_layers_of_their_own_codes(name):
    model, inputs = _rows(name)
    layers = _weight_only_layers(model)
    assert layers
    before = call(model, inputs).detach()
    report = netshrink.quantize_(model, Dynamic())
    for path, layer in layers.items():
        integer = model.get_submodule(path)
        assert isinstance(integer, QuantLinear) and integer.weight_bits == layer.bits + 1
        assert path in report.names("integer")
        # the integers times the row scales are the weight-only weights, bit for bit
        weight = integer.weight.float() * integer.weight_scale[:, None]
        assert torch.equal(weight, layer.dequantized())
    assert not _weight_only_layers(model)
    after = call(model, inputs).detach()  # only the inputs' 8-bit rounding differs
    assert torch.nn.functional.cosine_similarity(after.flatten(1), before.flatten(1)).min() \
        > 0.98


@pytest.mark.parametrize("name", ["token_transformer", "two_inputs"])
def test_the_integer_model_saves_and_loads_into_a_fresh_instance(tmp_path, name):
    model, inputs = _rows(name)
    netshrink.quantize_(model, Dynamic())
    out = call(model, inputs)
    path = netshrink.save(model, tmp_path / "int.safetensors")
    fresh, _, _ = build(name, seed=1)  # other weights: everything comes from the file
    loaded = netshrink.load(path, model=fresh.eval())
    assert torch.equal(call(loaded, inputs), out)
    assert {m.weight_bits for m in loaded.modules() if isinstance(m, QuantLinear)} == {5}


def test_groups_and_rows_too_wide_for_the_weight_bits_stay_weight_only():
    model, _, _ = build("token_transformer")  # its embedding is left float, then int8
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=8, rounding="rtn",
                                          embeddings=False))
    report = netshrink.quantize_(model, Dynamic())
    kept = report.names("weight_only")
    assert kept == list(_weight_only_layers(model)) and "head" in kept
    assert all("groups of 8" in r.detail for r in report if r.fate == "weight_only")
    assert report.names("integer") == ["embed"]
    wide, _ = _rows("token_transformer", bits=8)  # 9-bit integers do not fit 8-bit weights
    report = netshrink.quantize_(wide, Dynamic())
    assert report.names("weight_only") == list(_weight_only_layers(wide))
    only_rows, _ = _rows("shared_mlp", bits=8)  # nothing left to quantize: said why
    with pytest.raises(NetshrinkError, match="no exact integer form"):
        netshrink.quantize_(only_rows, Dynamic())


def test_a_skipped_row_layer_stays_weight_only():
    model, _ = _rows("token_transformer")
    report = netshrink.quantize_(model, Dynamic(skip=("head",)))
    assert isinstance(model.head, WeightOnlyLinear)
    assert "head" in report.names("skipped")
    assert isinstance(model.encoder.layers[0].linear1, QuantLinear)


def test_a_refusal_after_lifting_puts_the_weight_only_layers_back(monkeypatch):
    model, inputs = _rows("token_transformer")
    reference = copy.deepcopy(model)

    def refuse(*args, **kwargs):
        raise NetshrinkError("refused")

    monkeypatch.setattr(quant_api, "check_direct_reads", refuse)
    with pytest.raises(NetshrinkError, match="refused"):
        netshrink.quantize_(model, Dynamic())
    assert list(_weight_only_layers(model)) == list(_weight_only_layers(reference))
    assert torch.equal(call(model, inputs), call(reference, inputs))


def test_a_row_layer_at_two_paths_becomes_integer_at_both(tmp_path):
    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.ReLU(), shared).eval()
    x = torch.randn(32, 8)
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=None), data=x)
    assert model[0] is model[2]
    netshrink.quantize_(model, Dynamic())
    assert isinstance(model[0], QuantLinear) and isinstance(model[2], QuantLinear)
    assert torch.equal(model[0].weight, model[2].weight)
    out = model(x)
    path = netshrink.save(model, tmp_path / "shared.safetensors")
    fresh_shared = nn.Linear(8, 8)
    loaded = netshrink.load(path, model=nn.Sequential(fresh_shared, nn.ReLU(), fresh_shared))
    assert loaded[0] is loaded[2] and torch.equal(loaded(x), out)
