"""How a compressed sentence encoder is deployed: the one place that chooses the runtime.

    runner, path = minilm_deploy.int8(model, folder, threads=2)    # netshrink's int8 path
    runner, path = minilm_deploy.onnxruntime_int8(model, folder)   # onnxruntime's own int8

`int8` is netshrink's fastest int8 path for these encoders today: quantize_ with
minilm_onnx.INTEGER_CONFIG (7-bit weights, 8-bit inputs per call), exported as integer ONNX
(MatMulInteger, fused QKV) and run by onnxruntime; a model whose embedding tables are already
weight-only (4-bit, netshrink.quant.weight_only) keeps them, and its weight-only Linears with
one scale per row (e.g. 4-bit GPTQ, group_size=None) run as integer layers with their own
codes (weight_only.integer_linear: exact). When a faster general int8 path
lands, it replaces the body of `int8` and every caller follows.

`onnxruntime_int8` is the baseline: the float model exported to ONNX, then onnxruntime's
`quantize_dynamic` (int8 weights, uint8 inputs quantized at run time).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import minilm_onnx
from netshrink.quant.onnx_runner import OnnxRunner

if TYPE_CHECKING:
    from netshrink.quant.config import Dynamic

RUNTIME = "netshrink integer ONNX (minilm_onnx) on onnxruntime"


def int8_config(keep_embeddings_float: bool = False) -> Dynamic:
    """The quantization config of the int8 path (embeddings int8 unless kept as they are)."""
    import dataclasses

    config = minilm_onnx.INTEGER_CONFIG
    return dataclasses.replace(config, embeddings=False) if keep_embeddings_float else config


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` with int8 Linear layers (and int8 embedding tables, unless they are
    already weight-only), as the int8 path runs it. Weight-only Linears with one scale per
    row keep their own codes (quantize_ with Dynamic: netshrink.quant.row_codes)."""
    from netshrink.quant import row_codes
    from netshrink.quant.weight_only import WeightOnlyEmbedding, WeightOnlyLinear

    config = int8_config(keep_embeddings_float=any(isinstance(m, WeightOnlyEmbedding)
                                                   for m in model.modules()))
    for name, m in model.named_modules():  # the ONNX export takes no weight-only Linear
        if isinstance(m, WeightOnlyLinear) and not row_codes.fits(m, config.bits):
            raise NetshrinkError(f"{name} is {m.bits}-bit weight-only in groups of "
                                 f"{m.group_size} inputs, which no single integer product "
                                 f"of at most {config.bits}-bit weights computes; quantize "
                                 "with WeightOnly(group_size=None, bits<=6) for the int8 "
                                 "path, or run the weight-only model in PyTorch")
    quantized = copy.deepcopy(model)
    netshrink.quantize_(quantized, config)
    return quantized


def int8(model: nn.Module, folder: str | os.PathLike, threads: int | None = None,
         name: str = "int8") -> tuple[OnnxRunner, Path, nn.Module]:
    """(runner, ONNX file, the quantized PyTorch model) of netshrink's int8 path."""
    from netshrink.quant import onnx_pack

    quantized = quantize_int8(model)
    path = minilm_onnx.export(quantized, Path(folder) / f"{name}.onnx")
    onnx_pack.pack_narrow_weights(path)  # 4-bit GPTQ rows travel as 4-bit codes
    return minilm_onnx.runner(path, threads), path, quantized


def onnxruntime_int8(model: nn.Module, folder: str | os.PathLike, threads: int | None = None
                     ) -> tuple[OnnxRunner, Path]:
    """(runner, ONNX file) of onnxruntime's own dynamic int8 quantization of the float model."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ModuleNotFoundError:
        raise NetshrinkError("onnxruntime's quantizer needs the onnx extra: pip install "
                             "'netshrink[onnx]'") from None
    folder = Path(folder)
    float_path = minilm_onnx.export_graph(model, folder / "float.onnx")
    out = folder / "onnxruntime-int8.onnx"
    quantize_dynamic(str(float_path), str(out), weight_type=QuantType.QInt8)
    return minilm_onnx.runner(out, threads), out
