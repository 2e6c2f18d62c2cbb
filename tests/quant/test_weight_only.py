import copy

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import WeightOnly, WeightOnlyEmbedding, WeightOnlyLinear
from netshrink.quant.weight_only import pack, unpack
from tests.user_models import build


@pytest.mark.parametrize("bits", range(2, 9))
def test_pack_unpack_round_trip_and_packed_size(bits):
    codes = torch.randint(0, 2**bits, (7, 13), dtype=torch.uint8)
    packed = pack(codes, bits)
    assert packed.numel() == -(-codes.numel() * bits // 8)
    assert torch.equal(unpack(packed, bits, codes.numel()).reshape(7, 13), codes)


def test_config_checks_and_round_trips():
    for bad in ({"bits": 1}, {"bits": 9}, {"group_size": 0}, {"rounding": "fast"},
                {"skip": "fc"}, {"damping": -1}, {"block_size": 0}, {"act_order": 1},
                {"act_order": True}, {"act_order": True, "group_size": None, "rounding": "rtn"}):
        with pytest.raises(NetshrinkError):
            WeightOnly(**bad)
    config = WeightOnly(bits=3, group_size=64, rounding="rtn", skip=["head"])
    from netshrink.quant.config import config_from_dict

    assert config_from_dict(config.to_dict()) == config
    ordered = WeightOnly(group_size=None, act_order=True)
    assert config_from_dict(ordered.to_dict()) == ordered


def _tensor_bytes(model):
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _token_model():
    model, tokens, _ = build("token_transformer")
    return model.eval(), tokens


@pytest.mark.parametrize("rounding", ["rtn", "gptq"])
def test_user_transformer_quantizes_saves_and_loads_into_a_fresh_instance(tmp_path, rounding):
    model, tokens = _token_model()
    reference = model(tokens).detach()
    float_bytes = _tensor_bytes(model)
    report = netshrink.quantize_(model, WeightOnly(bits=4, group_size=8, rounding=rounding),
                                 data=tokens)
    assert {"embed", "head", "encoder.layers.0.linear1"} <= set(report.names("weight_only"))
    assert "encoder.layers.0.self_attn" in report.names("decomposed")
    assert isinstance(model.embed, WeightOnlyEmbedding)
    assert isinstance(model.encoder.layers[1].self_attn.q_proj, WeightOnlyLinear)
    out = model(tokens).detach()
    assert torch.nn.functional.cosine_similarity(out, reference).mean() > 0.95
    assert _tensor_bytes(model) < 0.35 * float_bytes  # 4-bit codes + scales, float biases
    path = netshrink.save(model, tmp_path / "q.safetensors")
    fresh, _ = _token_model()
    loaded = netshrink.load(path, model=fresh)
    assert torch.equal(loaded(tokens), out)


def test_gptq_needs_data_and_other_layers_stay_float():
    model, _, _ = build("conv1d")
    with pytest.raises(NetshrinkError, match="calibration data"):
        netshrink.quantize_(model, WeightOnly())
    report = netshrink.quantize_(model, WeightOnly(rounding="rtn"))
    floats = {r.name: r.detail for r in report if r.fate == "float"}
    assert any("no weight-only form" in why for why in floats.values())
    assert report.names("weight_only") == ["head"]


def test_a_group_size_that_does_not_divide_a_row_uses_the_whole_row():
    model = nn.Sequential(nn.Linear(12, 4))
    netshrink.quantize_(model, WeightOnly(group_size=8, rounding="rtn"))
    assert model[0].group_size == 12 and model[0].scale.shape == (4, 1)


def test_pruned_weights_stay_exact_zeros_under_gptq():
    model = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(256, 32)
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    pruned = (model[0].weight == 0).clone()
    netshrink.quantize_(model, WeightOnly(bits=4, group_size=16), data=x)
    assert bool((model[0].dequantized()[pruned] == 0).all())


def test_skip_and_embeddings_false_keep_layers_float():
    model, _ = _token_model()
    reference = copy.deepcopy(model)
    report = netshrink.quantize_(model, WeightOnly(rounding="rtn", embeddings=False,
                                                   skip=("encoder",)))
    assert report.names("weight_only") == ["head"]
    assert type(model.embed) is nn.Embedding
    assert torch.equal(model.encoder.layers[0].linear1.weight,
                       reference.encoder.layers[0].linear1.weight)
