"""Quantization: post-training (dynamic, static) and quantization-aware, run by integer kernels.

    import netshrink
    from netshrink.quant import Dynamic, Static, QAT

    netshrink.quantize_(model, Static(), data=calibration_inputs)   # int8 weights and inputs
    netshrink.save(model, "model-int8.safetensors")                  # int8 on disk, ~4x smaller
    model = netshrink.load("model-int8.safetensors")                 # rebuilt as integer model

Schemes (scheme.py), observers (observers.py), accumulator bounds (bounds.py), the integer
kernels per device (kernels.py), integer modules (modules.py), QAT modules (qat.py), BatchNorm
folding (fold.py), ONNX export as QDQ or integer operators (onnx_export.py, onnx_integer.py)
and running it in onnxruntime (onnx_runner.py); MiniLM as integer ONNX (minilm_onnx.py);
weight-only 2-8 bit weights with per-group scales, rounded by GPTQ or to nearest
(weight_only.py, gptq.py);
integer programs whose activations stay integer between layers (int8/, compile_int8).
"""

from netshrink.quant.api import convert, quantize_
from netshrink.quant.bounds import accumulator_bound, check_layer
from netshrink.quant.config import QAT, Dynamic, Static
from netshrink.quant.fold import fold_
from netshrink.quant.handlers import HANDLERS, Handler, handler_for
from netshrink.quant.int8 import CompiledModel, compile_int8
from netshrink.quant.modules import (
    ActivationSpec,
    QuantConv1d,
    QuantConv2d,
    QuantConv3d,
    QuantEmbedding,
    QuantLinear,
)
from netshrink.quant.onnx_export import export_onnx
from netshrink.quant.onnx_runner import OnnxRunner
from netshrink.quant.qat import QATConv1d, QATConv2d, QATConv3d, QATEmbedding, QATLinear
from netshrink.quant.report import LayerFate, QuantReport
from netshrink.quant.scheme import Scheme, dequantize, fake_quantize, quantize
from netshrink.quant.weight_only import WeightOnly, WeightOnlyEmbedding, WeightOnlyLinear

__all__ = ["HANDLERS", "QAT", "ActivationSpec", "CompiledModel", "Dynamic", "Handler", "LayerFate",
           "OnnxRunner", "QATConv1d", "QATConv2d", "QATConv3d", "QATEmbedding", "QATLinear",
           "QuantConv1d", "QuantConv2d", "QuantConv3d", "QuantEmbedding", "QuantLinear",
           "QuantReport", "Scheme", "Static", "WeightOnly", "WeightOnlyEmbedding",
           "WeightOnlyLinear", "accumulator_bound", "check_layer", "compile_int8", "convert",
           "dequantize", "export_onnx", "fake_quantize", "fold_", "handler_for", "quantize",
           "quantize_"]
