"""netshrink.prune.blocks: attention heads and feed-forward neurons of known transformer
blocks as groups, and nn.MultiheadAttention decomposed so its heads can go."""

import torch
from torch import nn

import netshrink
from netshrink.core.attention import ProjectedAttention
from netshrink.prune import current_mask
from netshrink.prune.blocks import block_groups, decompose_attention
from netshrink.prune.graph import Member


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.layer(x).mean(1))


def encoder():
    torch.manual_seed(0)
    return Encoder().eval()


def test_decompose_attention_keeps_the_function_and_the_masks():
    model = encoder()
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        reference = model(x)
    assert decompose_attention(model) == ["layer.self_attn"]
    assert isinstance(model.layer.self_attn, ProjectedAttention)
    with torch.no_grad():
        assert torch.allclose(model(x), reference, atol=1e-5)
    names = set(current_mask(model))
    assert {"layer.self_attn.q_proj.weight", "layer.self_attn.out_proj.weight"} <= names
    assert decompose_attention(model) == []  # nothing left to decompose
    assert decompose_attention(nn.Linear(2, 2)) == []


def test_heads_and_feed_forward_groups_of_an_encoder_layer():
    model = encoder()
    assert [g.kind for g in block_groups(model)] == ["ffn"]  # heads need the decomposition
    decompose_attention(model)
    groups = {g.kind: g for g in block_groups(model)}
    heads, ffn = groups["heads"], groups["ffn"]
    assert (heads.name, heads.size) == ("layer.self_attn", 2)
    assert heads.members == [Member("layer.self_attn.q_proj", "out", 0, 4),
                             Member("layer.self_attn.k_proj", "out", 0, 4),
                             Member("layer.self_attn.v_proj", "out", 0, 4),
                             Member("layer.self_attn.out_proj", "in", 0, 4),
                             Member("layer.self_attn", "attention", 0, 4)]
    assert (ffn.name, ffn.size) == ("layer.linear1", 12)
    assert ffn.members == [Member("layer.linear1", "out"), Member("layer.linear2", "in")]


def test_a_plain_model_has_no_block_groups():
    assert block_groups(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))) == []


class _SelfAttention(nn.Module):
    __module__ = "transformers.models.bert.modeling_bert"  # what the rule recognizes

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.num_attention_heads, self.attention_head_size = 4, 4


class _Dense(nn.Module):
    __module__ = "transformers.models.bert.modeling_bert"

    def __init__(self, cin, cout):
        super().__init__()
        self.dense = nn.Linear(cin, cout)


class _Attention(nn.Module):
    __module__ = "transformers.models.bert.modeling_bert"

    def __init__(self):
        super().__init__()
        self.self, self.output = _SelfAttention(), _Dense(16, 16)


class _Layer(nn.Module):
    __module__ = "transformers.models.bert.modeling_bert"

    def __init__(self):
        super().__init__()
        self.attention, self.intermediate, self.output = _Attention(), _Dense(16, 24), \
            _Dense(24, 16)


def test_bert_style_layers_give_heads_and_feed_forward_groups():
    groups = {(g.kind, g.name): g for g in block_groups(nn.ModuleDict({"layer": _Layer()}))}
    assert set(groups) == {("heads", "layer.attention"), ("ffn", "layer.intermediate.dense")}
    heads = groups[("heads", "layer.attention")]
    assert heads.size == 4
    assert heads.members == [Member("layer.attention.self.query", "out", 0, 4),
                             Member("layer.attention.self.key", "out", 0, 4),
                             Member("layer.attention.self.value", "out", 0, 4),
                             Member("layer.attention.output.dense", "in", 0, 4),
                             Member("layer.attention.self", "hf_attention", 0, 4)]
    ffn = groups[("ffn", "layer.intermediate.dense")]
    assert ffn.size == 24 and ffn.members == [Member("layer.intermediate.dense", "out"),
                                              Member("layer.output.dense", "in")]


def test_the_same_layout_outside_transformers_is_not_guessed_at():
    class Lookalike(nn.Module):
        def __init__(self):
            super().__init__()
            self.intermediate, self.output = _Dense(16, 24), _Dense(24, 16)

    assert block_groups(Lookalike()) == []
