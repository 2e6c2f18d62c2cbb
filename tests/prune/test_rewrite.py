"""netshrink.prune.rewrite: layers rebuilt smaller with the kept entries, the plan recorded,
checked and replayed onto a fresh model."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.core.transforms import recorded
from netshrink.errors import NetshrinkError
from netshrink.prune import current_mask
from netshrink.prune.rewrite import (
    apply_plan,
    check_entry,
    entry,
    record_plan,
    replay,
    shrink_attention,
    shrink_layer,
)


def idx(*values):
    return torch.tensor(values)


def test_a_linear_keeps_the_chosen_rows_and_columns():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5))
    old = model[0]
    shrink_layer(model, "0", {"out": idx(4, 1), "in": idx(0, 2, 3)})
    new = model[0]
    assert type(new) is nn.Linear and (new.in_features, new.out_features) == (3, 2)
    assert torch.equal(new.weight, old.weight[[4, 1]][:, [0, 2, 3]])
    assert torch.equal(new.bias, old.bias[[4, 1]])


def test_convolutions_batchnorm_layernorm_and_embeddings():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4), nn.LayerNorm(6),
                          nn.Embedding(7, 6, padding_idx=0))
    model[1].running_mean.uniform_()
    model[1].num_batches_tracked += 5
    old = list(model)
    shrink_layer(model, "0", {"out": idx(0, 3)})
    shrink_layer(model, "1", {"norm": idx(0, 3)})
    shrink_layer(model, "2", {"depthwise": idx(0, 3)})
    shrink_layer(model, "3", {"norm": idx(1, 2, 5)})
    shrink_layer(model, "4", {"out": idx(5, 0)})
    assert (model[0].out_channels, model[0].stride, model[0].bias) == (2, (2, 2), None)
    assert torch.equal(model[1].running_mean, old[1].running_mean[[0, 3]])
    assert int(model[1].num_batches_tracked) == 5
    assert (model[2].groups, model[2].in_channels, model[2].out_channels) == (2, 2, 2)
    assert torch.equal(model[2].weight, old[2].weight[[0, 3]])
    assert model[3].normalized_shape == (3,) and torch.equal(model[3].bias, old[3].bias[[1, 2, 5]])
    assert model[4].weight.shape == (7, 2) and model[4].padding_idx == 0
    assert torch.equal(model[4].weight, old[4].weight[:, [5, 0]])


def test_a_mask_is_carried_for_the_kept_entries():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    before = current_mask(model)["0.weight"]
    shrink_layer(model, "0", {"out": idx(2, 0)})
    assert torch.equal(current_mask(model)["0.weight"], before[[2, 0]])
    assert float(model[0].weight.detach()[~current_mask(model)["0.weight"]].abs().sum()) == 0


def test_a_layer_without_a_rule_is_refused():
    with pytest.raises(NetshrinkError, match="no rule rebuilds a GRU with fewer channels"):
        shrink_layer(nn.Sequential(nn.GRU(2, 2)), "0", {"out": idx(0)})
    with pytest.raises(NetshrinkError, match="0 is a Linear, not an attention module"):
        shrink_attention(nn.Sequential(nn.Linear(2, 2)), "0", idx(0), "attention")


def test_hf_attention_gets_its_head_count():
    class HF(nn.Module):
        num_attention_heads, attention_head_size, all_head_size = 4, 8, 32

    model = nn.Sequential(HF())
    shrink_attention(model, "0", idx(0, 2, 3), "hf_attention")
    assert (model[0].num_attention_heads, model[0].all_head_size) == (3, 24)


def fresh():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


def test_the_recorded_plan_replays_onto_a_fresh_model():
    model = fresh()
    layers = {"0": {"out": idx(5, 1, 2)}, "2": {"in": idx(5, 1, 2)}}
    apply_plan(model, layers, {})
    record_plan(model, [], layers, {})
    record_entry = recorded(model)[-1]
    assert record_entry == entry([], layers, {}) == {
        "kind": "structured", "decomposed": [], "attention": {},
        "layers": {"0": {"out": [5, 1, 2]}, "2": {"in": [5, 1, 2]}}}
    check_entry(record_entry)
    again = replay(fresh(), record_entry)
    assert again[0].out_features == 3 and again[2].in_features == 3
    again.load_state_dict(model.state_dict())
    x = torch.randn(3, 4)
    assert torch.equal(again(x), model(x))


@pytest.mark.parametrize(("layers", "words"), [
    ({"9": {"out": [0]}}, r"shrinks layer '9', which the model lacks"),
    ({"0": {"out": [0, 6]}}, r"keeps entries \[0, 6\] of '0' \(out\), which has 6"),
    ({"0": {"out": []}}, r"keeps entries \[\] of '0'"),
    ({"1": {"out": [0]}}, r"shrinks '1' \(out\), a ReLU in this model"),
    ({"0": {"norm": [0]}}, r"shrinks '0' \(norm\), a Linear"),
    ({"0": {"sideways": [0]}}, "corrupt structured entry for layer '0'"),
])
def test_replay_refuses_a_plan_for_another_model(layers, words):
    with pytest.raises(NetshrinkError, match=words):
        replay(fresh(), {"kind": "structured", "layers": layers})


def test_replay_refuses_decomposed_attention_the_model_lacks():
    with pytest.raises(NetshrinkError, match=r"decomposes attention \['attn'\], the model has "
                                             r"\[\]"):
        replay(fresh(), {"kind": "structured", "decomposed": ["attn"], "layers": {}})
    with pytest.raises(NetshrinkError, match="corrupt structured entry"):
        replay(fresh(), {"kind": "structured", "layers": []})


@pytest.mark.parametrize(("record_entry", "words"), [
    ({"decomposed": "attn", "layers": {}}, "decomposed must be a list"),
    ({}, "layers and attention must be mappings"),
    ({"layers": {"0": {"rows": [1]}}}, "layer 0: a mapping of axes"),
    ({"layers": {"0": {"out": [1, 1]}}}, r"layer 0 \(out\): the entries kept must be a "
                                         r"non-empty list of distinct indices"),
    ({"layers": {"0": {"out": [-1]}}}, "distinct indices"),
    ({"layers": {"0": {"out": [True]}}}, "distinct indices"),
    ({"layers": {}, "attention": {"a": {"role": "x", "heads": [0]}}}, "attention a: a role"),
    ({"layers": {}, "attention": {"a": {"role": "attention", "heads": []}}},
     r"layer a \(heads\)"),
])
def test_check_entry_refuses_malformed_entries(record_entry, words):
    with pytest.raises(NetshrinkError, match=words):
        check_entry(record_entry)
