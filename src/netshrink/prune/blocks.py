"""Attention heads and feed-forward neurons of known transformer blocks.

Inside an attention layer the graph cannot follow channels (the projections are reshaped into
heads), but the function is known, so its rule is written here, one per block type:

- netshrink's ProjectedAttention (nn.MultiheadAttention is decomposed into one first,
  core.attention.decompose): a head is head_dim rows of q_proj, k_proj and v_proj and
  head_dim input columns of out_proj;
- nn.TransformerEncoderLayer: its feed-forward neurons are linear1's rows and linear2's
  input columns (its attention is the rule above);
- HuggingFace BERT-style layers (BertModel, and the models sharing its layout: an attention
  with self.query/key/value and output.dense, a layer with intermediate.dense and
  output.dense): heads the same way, `num_attention_heads` and `all_head_size` updated;
  the forward infers the head count from the projections' size.

Each rule gives Groups (netshrink.prune.graph) of kind "heads" or "ffn": pruning them touches
only the block's own layers, so it does not need the model's graph.
"""

from __future__ import annotations

from torch import nn

from netshrink.core.attention import ProjectedAttention, decompose, keep_encoders_on_slow_path
from netshrink.core.swap import base_type, replace_module
from netshrink.prune.graph import Group, Member


def _is_linear(module) -> bool:
    return module is not None and base_type(module) is nn.Linear


def _from_transformers(module: nn.Module) -> bool:
    return type(module).__module__.startswith("transformers.")


def _hf_attention(module: nn.Module) -> bool:
    inner = getattr(module, "self", None)
    return (_from_transformers(module) and inner is not None
            and all(_is_linear(getattr(inner, n, None)) for n in ("query", "key", "value"))
            and hasattr(inner, "attention_head_size") and hasattr(inner, "num_attention_heads")
            and _is_linear(getattr(getattr(module, "output", None), "dense", None)))


def _hf_ffn(module: nn.Module) -> bool:
    up = getattr(getattr(module, "intermediate", None), "dense", None)
    down = getattr(getattr(module, "output", None), "dense", None)
    return (_from_transformers(module) and _is_linear(up) and _is_linear(down)
            and up.out_features == down.in_features)


def decompose_attention(model: nn.Module) -> list[str]:
    """Replace every nn.MultiheadAttention by a ProjectedAttention (same function, masks
    carried), so its heads can be removed; returns the paths replaced."""
    paths = [p for p, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for path in paths:
        new, carry = decompose(model.get_submodule(path))
        replace_module(model, path, new, carry)
    if paths:
        keep_encoders_on_slow_path(model)
    return paths


def block_groups(model: nn.Module) -> list[Group]:
    """The heads and feed-forward groups of every known block of `model`."""
    groups = []
    for path, module in model.named_modules():
        p = f"{path}." if path else ""
        if isinstance(module, ProjectedAttention):
            hd = module.head_dim
            members = [Member(f"{p}{n}_proj", "out", 0, hd) for n in "qkv"]
            members += [Member(f"{p}out_proj", "in", 0, hd), Member(path, "attention", 0, hd)]
            groups.append(Group(path, "heads", module.num_heads, members))
        elif _hf_attention(module):
            hd = module.self.attention_head_size
            members = [Member(f"{p}self.{n}", "out", 0, hd) for n in ("query", "key", "value")]
            members += [Member(f"{p}output.dense", "in", 0, hd),
                        Member(f"{p}self", "hf_attention", 0, hd)]
            groups.append(Group(path, "heads", module.self.num_attention_heads, members))
        if isinstance(module, nn.TransformerEncoderLayer) and _is_linear(module.linear1) \
                and _is_linear(module.linear2):
            groups.append(Group(f"{p}linear1", "ffn", module.linear1.out_features,
                                [Member(f"{p}linear1", "out"), Member(f"{p}linear2", "in")]))
        elif _hf_ffn(module):
            groups.append(Group(f"{p}intermediate.dense", "ffn",
                                module.intermediate.dense.out_features,
                                [Member(f"{p}intermediate.dense", "out"),
                                 Member(f"{p}output.dense", "in")]))
    return groups
