"""Quantization: post-training (dynamic, static) and quantization-aware, run by integer kernels.

    import netshrink
    from netshrink.quant import Dynamic, Static, QAT

    netshrink.quantize_(model, Static(), data=calibration_inputs)   # int8 weights and inputs
    netshrink.save(model, "model-int8.safetensors")                  # int8 on disk, ~4x smaller
    model = netshrink.load("model-int8.safetensors")                 # rebuilt as integer model

Schemes (scheme.py), observers (observers.py), accumulator bounds (bounds.py), the integer
kernels per device (kernels.py), integer modules (modules.py), QAT modules (qat.py), BatchNorm
folding (fold.py), ONNX export as QDQ or integer operators (onnx_export.py, onnx_integer.py)
and running it in onnxruntime (onnx_runner.py); MiniLM as integer ONNX (minilm_onnx.py).
"""

from netshrink.quant.api import convert, quantize_
from netshrink.quant.bounds import accumulator_bound, check_layer
from netshrink.quant.config import QAT, Dynamic, Static
from netshrink.quant.int8 import CompiledModel, compile_int8
from netshrink.quant.modules import ActivationSpec, QuantConv2d, QuantEmbedding, QuantLinear
from netshrink.quant.onnx_export import export_onnx
from netshrink.quant.onnx_runner import OnnxRunner
from netshrink.quant.qat import QATConv2d, QATLinear
from netshrink.quant.scheme import Scheme, dequantize, fake_quantize, quantize

__all__ = ["QAT", "ActivationSpec", "CompiledModel", "Dynamic", "OnnxRunner", "QATConv2d",
           "QATLinear", "QuantConv2d", "QuantEmbedding", "QuantLinear", "Scheme", "Static",
           "accumulator_bound", "check_layer", "compile_int8", "convert", "dequantize",
           "export_onnx", "fake_quantize", "quantize", "quantize_"]

# Registers the "minilm" model; transformers is imported only when it is built.
from netshrink.quant import minilm as _minilm  # noqa: F401

# Registers the sweep task "quantization" (float, PTQ and QAT of one model).
from netshrink.quant import task as _task  # noqa: F401
