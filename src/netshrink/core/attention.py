"""Multi-head attention with its projections as ordinary Linear layers.

`nn.MultiheadAttention` keeps its input projection as a bare [3E, E] parameter that its forward
reads directly (and PyTorch's fused fast paths read it too), so no per-layer method can reach
it: quantization cannot swap it for an integer layer, structured pruning cannot remove a head.
`ProjectedAttention` computes exactly the same function (same masks, dropout, weights returned,
batch-first or not, kdim/vdim, bias_k/bias_v, add_zero_attn) with `q_proj`, `k_proj`, `v_proj`
and `out_proj` as `nn.Linear` children, so every method treats them like any other Linear.
`decompose(mha)` builds one from a MultiheadAttention's weights, carrying its masks.

It also tells `nn.TransformerEncoderLayer` / `nn.TransformerEncoder` to stay on their slow path,
which calls this module, instead of their fused kernels that read the packed weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from netshrink.errors import NetshrinkError


class ProjectedAttention(nn.Module):
    """nn.MultiheadAttention's function with four nn.Linear projections."""

    # Read by TransformerEncoderLayer's fast-path check: False keeps it on the slow path.
    _qkv_same_embed_dim = False
    in_proj_bias = None

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 head_dim: int | None = None):
        super().__init__()
        if head_dim is None and embed_dim % num_heads:
            raise NetshrinkError(f"embed_dim={embed_dim} is not divisible by "
                                 f"num_heads={num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        # head_dim is given when heads were removed (structured pruning): the heads then span
        # num_heads * head_dim features, fewer than embed_dim
        self.head_dim = embed_dim // num_heads if head_dim is None else head_dim
        inner = self.num_heads * self.head_dim
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        self.q_proj = nn.Linear(embed_dim, inner, bias=bias)
        self.k_proj = nn.Linear(self.kdim, inner, bias=bias)
        self.v_proj = nn.Linear(self.vdim, inner, bias=bias)
        self.out_proj = nn.Linear(inner, embed_dim, bias=bias)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.zeros(1, 1, inner))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, inner))
        else:
            self.bias_k = self.bias_v = None

    def spec(self) -> dict:
        """The constructor's arguments (what a file needs to rebuild it)."""
        return {"type": "projected_attention", "embed_dim": self.embed_dim,
                "num_heads": self.num_heads, "dropout": self.dropout,
                "bias": self.q_proj.bias is not None, "add_bias_kv": self.bias_k is not None,
                "add_zero_attn": self.add_zero_attn, "kdim": self.kdim, "vdim": self.vdim,
                "batch_first": self.batch_first,
                **({"head_dim": self.head_dim} if self.num_heads * self.head_dim != self.embed_dim
                   else {})}

    @classmethod
    def from_spec(cls, spec: dict) -> ProjectedAttention:
        args = {k: v for k, v in spec.items() if k != "type"}
        return cls(**args)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = self._attend(query, key, value, key_padding_mask, need_weights,
                                    attn_mask, average_attn_weights, is_causal)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal):
        """Sequence-first (L, N, E) attention, as F.multi_head_attention_forward computes it."""
        tgt_len, bsz, _ = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        key_padding_mask = _float_mask(key_padding_mask, query.dtype)
        if is_causal and attn_mask is None:
            raise NetshrinkError("is_causal needs attn_mask (as nn.MultiheadAttention does)")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None
        else:
            attn_mask = _float_mask(attn_mask, query.dtype)
            if key_padding_mask is not None:
                is_causal = False
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if attn_mask is not None and attn_mask.dim() == 2:
            attn_mask = attn_mask.unsqueeze(0)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.repeat(1, bsz, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, bsz, 1)])
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        q = q.reshape(tgt_len, bsz * heads, head_dim).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * heads, head_dim).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * heads, head_dim).transpose(0, 1)
        if self.add_zero_attn:
            zeros = torch.zeros(bsz * heads, 1, head_dim, dtype=k.dtype, device=k.device)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        src_len = k.shape[1]
        if key_padding_mask is not None:
            padding = key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, heads, -1, -1) \
                .reshape(bsz * heads, 1, src_len)
            attn_mask = padding if attn_mask is None else attn_mask + padding
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            scores = torch.bmm(q * math.sqrt(1.0 / head_dim), k.transpose(-2, -1))
            if attn_mask is not None:
                scores = scores + attn_mask
            weights = torch.softmax(scores, dim=-1)
            if dropout > 0:
                weights = F.dropout(weights, p=dropout)
            out = torch.bmm(weights, v).transpose(0, 1).reshape(tgt_len * bsz, heads * head_dim)
            out = self.out_proj(out).view(tgt_len, bsz, -1)
            weights = weights.view(bsz, heads, tgt_len, src_len)
            return out, weights.mean(dim=1) if average_attn_weights else weights
        if attn_mask is not None:
            attn_mask = attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1 else \
                attn_mask.view(bsz, heads, -1, src_len)
        out = F.scaled_dot_product_attention(
            q.view(bsz, heads, tgt_len, head_dim), k.view(bsz, heads, src_len, head_dim),
            v.view(bsz, heads, src_len, head_dim), attn_mask, dropout, is_causal)
        out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, heads * head_dim)
        return self.out_proj(out).view(tgt_len, bsz, -1), None


def _float_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True: not attended) as -inf / 0; a float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))
    if not torch.is_floating_point(mask):
        raise NetshrinkError(f"attention masks are bool or float, not {mask.dtype}")
    return mask


def _pad_last(mask: torch.Tensor | None) -> torch.Tensor | None:
    return None if mask is None else F.pad(mask, (0, 1))


@torch.no_grad()
def decompose(mha: nn.MultiheadAttention) -> tuple[ProjectedAttention, dict]:
    """(ProjectedAttention with `mha`'s weights, {child.attr: keep-mask} of its masks).

    The masks of a packed `in_proj_weight` are split into the three projections'.
    """
    from netshrink.core.swap import module_masks

    out = ProjectedAttention(mha.embed_dim, mha.num_heads, mha.dropout,
                             mha.in_proj_bias is not None, mha.bias_k is not None,
                             mha.add_zero_attn, mha.kdim, mha.vdim, mha.batch_first)
    out.to(device=mha.out_proj.weight.device, dtype=mha.out_proj.weight.dtype)
    kept = module_masks(mha)
    carried: dict[str, torch.Tensor] = {}
    e = mha.embed_dim
    if mha._qkv_same_embed_dim:
        parts = mha.in_proj_weight.split(e)
        masks = kept["in_proj_weight"].split(e) if "in_proj_weight" in kept else (None,) * 3
    else:
        parts = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        masks = tuple(kept.get(f"{p}_proj_weight") for p in "qkv")
    for proj, weight, keep, name in zip((out.q_proj, out.k_proj, out.v_proj), parts, masks,
                                        "qkv", strict=True):
        proj.weight.copy_(weight)
        if keep is not None:
            carried[f"{name}_proj.weight"] = keep
    if mha.in_proj_bias is not None:
        for proj, b in zip((out.q_proj, out.k_proj, out.v_proj), mha.in_proj_bias.split(e),
                           strict=True):
            proj.bias.copy_(b)
    out.out_proj.weight.copy_(mha.out_proj.weight)
    if mha.out_proj.bias is not None:
        out.out_proj.bias.copy_(mha.out_proj.bias)
    keep = module_masks(mha.out_proj).get("weight")
    if keep is not None:
        carried["out_proj.weight"] = keep
    if mha.bias_k is not None:
        out.bias_k.copy_(mha.bias_k)
        out.bias_v.copy_(mha.bias_v)
    out.train(mha.training)
    return out, carried


def keep_encoders_on_slow_path(model: nn.Module) -> None:
    """nn.TransformerEncoder's nested-tensor fast path reads packed weights: turn it off."""
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
                isinstance(m, ProjectedAttention) for m in module.modules()):
            module.use_nested_tensor = False
