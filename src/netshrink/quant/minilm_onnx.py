"""netshrink's int8 MiniLM as an integer ONNX model, run by onnxruntime.

    import netshrink
    from netshrink.models import minilm
    from netshrink.quant import minilm_onnx

    model = minilm.pretrained()
    netshrink.quantize_(model, minilm_onnx.INTEGER_CONFIG)
    minilm_onnx.export(model, "minilm-int8.onnx")                # int8 weights and embeddings
    runner = minilm_onnx.runner("minilm-int8.onnx", threads=2)
    embeddings = minilm.encode(runner, sentences)

The exported graph is the model's own arithmetic (its int8 weights and scales): every Linear
layer is DynamicQuantizeLinear -> MatMulInteger -> scales, fused by onnxruntime into one
integer kernel; the query, key and value projections of a layer, which share their input and
its quantization, are one [hidden, 3 x hidden] integer product; embedding tables are int8 rows.

Why INTEGER_CONFIG (8-bit inputs, one scale per call; 7-bit weights): ONNX quantizes inputs
at run time with DynamicQuantizeLinear (8 bits, one scale per tensor), and on x86 CPUs without
VNNI a uint8 x int8 pair of products must fit in int16: 2 x 255 x 63 = 32,130 <= 32,767.
(8-bit weights would be exported as uint8 x uint8, exact but slower.)

Attention products (Q K^T and softmax(.) V, between two activations) run in float by default
("float"), or as integer products ("integer": both operands quantized at run time to uint8,
the probabilities with the fixed scale 1/255, exact uint8 x uint8 sums). On this project's
CPU the integer form measured no faster (benchmarks/bench_quant_minilm.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_path
from netshrink.models.minilm import SentenceEncoder, mean_pool
from netshrink.quant import onnx_integer
from netshrink.quant.config import Dynamic
from netshrink.quant.modules import QuantLinear
from netshrink.quant.onnx_export import OPSET, export_onnx, integer_layers
from netshrink.quant.onnx_runner import OnnxRunner

INTEGER_CONFIG = Dynamic(bits=7, activation_bits=8, granularity="tensor")
ATTENTION = ("float", "integer")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Softmax probabilities lie in [0, 1]: a fixed scale of 1/255 uses all 256 levels.
PROBABILITIES = onnx_integer.InputQuantization(static=True, scale=1 / 255, zero_point=0)


def fuse_qkv(attention: nn.Module) -> QuantLinear | None:
    """One integer layer computing [query | key | value], or None when they differ in kind.

    They read the same input, quantized the same way (one dynamic scale per call), so one
    product with the three weight matrices stacked gives exactly the three products.
    """
    parts = [attention.query, attention.key, attention.value]
    if not all(isinstance(p, QuantLinear) for p in parts):
        return None
    first = parts[0]
    if any(p.activation != first.activation or p.weight_bits != first.weight_bits
           or p.kernel_name != first.kernel_name or (p.bias is None) != (first.bias is None)
           for p in parts):
        return None
    out = sum(p.out_features for p in parts)
    fused = QuantLinear(first.in_features, out, first.bias is not None, first.weight_bits,
                        first.activation, first.kernel_name,
                        first.layer_name.rsplit(".", 1)[0] + ".qkv")
    with torch.no_grad():
        fused.set_weight(torch.cat([p.weight for p in parts]),
                         torch.cat([p.weight_scale for p in parts]))
        if first.bias is not None:
            fused.bias.copy_(torch.cat([p.bias for p in parts]))
    return fused.to(first.weight.device)


class ExportableEncoder(nn.Module):
    """A quantized SentenceEncoder's forward, written for export.

    It reuses the encoder's own modules (embeddings, output projections, LayerNorms, the
    feed-forward block) and rewrites only self-attention: a fused QKV projection, an
    additive mask, and attention products in float or as integer products. Run in PyTorch,
    it computes what the exported graph computes (tests compare the two).
    """

    def __init__(self, encoder: SentenceEncoder, attention: str = "float"):
        super().__init__()
        if attention not in ATTENTION:
            raise NetshrinkError(f"attention={attention!r} is not one of {', '.join(ATTENTION)}")
        bert = encoder.bert
        self.attention = attention
        self.embeddings = bert.embeddings
        self.layers = bert.encoder.layer
        fused = [fuse_qkv(layer.attention.self) for layer in self.layers]
        self.qkv = nn.ModuleList(f if f is not None else nn.Identity() for f in fused)

    def _project(self, index: int, states: torch.Tensor):
        qkv = self.qkv[index]
        attention = self.layers[index].attention.self
        if isinstance(qkv, QuantLinear):
            return qkv(states).split(attention.query.out_features, dim=-1)
        return attention.query(states), attention.key(states), attention.value(states)

    def _self_attention(self, index: int, states: torch.Tensor, mask: torch.Tensor):
        # each layer's own heads: structured pruning may have removed some
        attention = self.layers[index].attention.self
        heads, size = attention.num_attention_heads, attention.attention_head_size
        q, k, v = self._project(index, states)
        q = q.unflatten(-1, (heads, size)).transpose(1, 2)      # batch, heads, tokens, size
        k = k.unflatten(-1, (heads, size)).permute(0, 2, 3, 1)  # batch, heads, size, tokens
        v = v.unflatten(-1, (heads, size)).transpose(1, 2)
        integer = self.attention == "integer"
        scores = onnx_integer.matmul(q, k) if integer else torch.matmul(q, k)
        probabilities = torch.softmax(scores * size**-0.5 + mask, dim=-1)
        context = (onnx_integer.matmul(probabilities, v, PROBABILITIES) if integer
                   else torch.matmul(probabilities, v))
        return context.transpose(1, 2).flatten(2)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        states = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        keep = attention_mask[:, None, None, :].to(states.dtype)
        mask = (1.0 - keep) * torch.finfo(states.dtype).min
        for index, layer in enumerate(self.layers):
            context = self._self_attention(index, states, mask)
            attended = layer.attention.output(context, states)
            states = layer.output(layer.intermediate(attended), attended)
        return mean_pool(states, attention_mask)


def _example(encoder: SentenceEncoder) -> tuple[torch.Tensor, ...]:
    """Two short token sequences within the model's vocabulary (only shapes matter)."""
    config = encoder.bert.config
    ids = torch.arange(1, 9).remainder(config.vocab_size - 1).add(1).repeat(2, 1)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return ids, mask, torch.zeros_like(ids)


def export(model: SentenceEncoder, path: str | os.PathLike, attention: str = "float",
           opset: int = OPSET) -> Path:
    """Write netshrink's quantized MiniLM (or any quantized SentenceEncoder) as integer ONNX.

    Inputs input_ids, attention_mask, token_type_ids (int64, batch x tokens, both dynamic);
    output "embedding" (batch x hidden, unit length).
    """
    if not isinstance(model, SentenceEncoder):
        raise NetshrinkError(f"model must be a netshrink.models.minilm.SentenceEncoder, not "
                             f"{type(model).__name__}")
    if not integer_layers(model):
        raise NetshrinkError("the encoder is not quantized; call netshrink.quantize_(model, "
                             "netshrink.quant.minilm_onnx.INTEGER_CONFIG) first")
    return export_graph(model, path, attention, opset)


def export_graph(model: SentenceEncoder, path: str | os.PathLike, attention: str = "float",
                 opset: int = OPSET) -> Path:
    """Write any SentenceEncoder (float, integer, weight-only embeddings) as ONNX, its own
    arithmetic: the float model's graph is what onnxruntime's own quantizer starts from."""
    wrapper = ExportableEncoder(model, attention).eval()
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    axes["embedding"] = {0: "batch"}
    if integer_layers(model):
        # packed embedding tables stay packed in the file (onnxruntime unpacks them once)
        return export_onnx(wrapper, _example(model), path, opset, mode="integer",
                           input_names=INPUT_NAMES, output_names=("embedding",),
                           dynamic_axes=axes, constant_folding=False)
    import warnings

    import onnx

    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(wrapper, _example(model), str(tmp), input_names=list(INPUT_NAMES),
                          output_names=["embedding"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False)
        onnx.checker.check_model(str(tmp))
    return path


def runner(path: str | os.PathLike, threads: int | None = None) -> OnnxRunner:
    """An onnxruntime session for an exported encoder, usable with minilm.encode."""
    result = OnnxRunner(path, threads)
    if tuple(result.input_names) != INPUT_NAMES:
        raise NetshrinkError(f"{path}: inputs {result.input_names} are not an exported "
                             f"encoder's {list(INPUT_NAMES)}")
    return result
