"""Integer programs: a statically quantized model run with its activations kept in uint8.

    fast = netshrink.quant.compile_int8(model, example, data=calibration)  # after quantize_
    fast(images)

program.py (the ops and how values are stored), lower.py (model -> program, via torch.fx;
conv1d.py and padding.py: Conv1d over a 2-D view, padding before a kernel as an op),
reference.py (the exact integer arithmetic), torch_backend.py and onnx_backend.py (the two
runtimes), compile.py (`compile_int8`: build, check, time, keep the fastest).
"""

from netshrink.quant.int8.compile import (
    RUNTIMES,
    CompiledModel,
    as_deployed,
    compile_int8,
    is_static,
)
from netshrink.quant.int8.program import Program, QParams

__all__ = ["RUNTIMES", "CompiledModel", "Program", "QParams", "as_deployed", "compile_int8",
           "is_static"]
