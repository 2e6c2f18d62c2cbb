"""Run an exported model in onnxruntime, called like the PyTorch model it came from.

    runner = OnnxRunner("minilm-int8.onnx", threads=2)
    embeddings = runner(input_ids, attention_mask, token_type_ids)   # torch tensors in and out

The session uses all of onnxruntime's graph optimizations (its fusions turn netshrink's
MatMulInteger patterns into fused integer kernels) and a fixed number of intra-op threads,
so timings are comparable with PyTorch's `torch.set_num_threads`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from netshrink.errors import NetshrinkError

if TYPE_CHECKING:
    import onnxruntime as ort


def session_options(
    threads: int | None = None,
    optimized_path: str | os.PathLike | None = None,
) -> ort.SessionOptions:
    """onnxruntime session options: `threads` intra-op threads, one inter-op thread, threads
    that do not spin after their work (a spinning pool takes the cores from whatever runs
    next, which skews every alternated timing and the model timed after it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise NetshrinkError(f"threads={threads!r} must be a positive integer (or None)")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


class OnnxRunner:
    """An onnxruntime CPU session for an ONNX file; call it with tensors, get tensors back.

    threads: intra-op threads (None: onnxruntime's default, every core).
    optimized_path: also write the graph onnxruntime optimized (to see what it fused).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 optimized_path: str | os.PathLike | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise NetshrinkError(f"{self.path}: no such ONNX file")
        options = session_options(threads, optimized_path)
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise NetshrinkError(f"{self.path}: not a valid ONNX model for onnxruntime "
                                 f"({first})") from None
        self.threads = threads
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def feeds(
        self,
        *args: torch.Tensor | np.ndarray,
        **kwargs: torch.Tensor | np.ndarray,
    ) -> dict[str, np.ndarray]:
        """The session's inputs by name, from positional and keyword tensors."""
        if len(args) > len(self.input_names):
            raise NetshrinkError(f"{len(args)} inputs given; the model takes "
                                 f"{len(self.input_names)} ({', '.join(self.input_names)})")
        named = dict(zip(self.input_names, args, strict=False))
        for name, value in kwargs.items():
            if name not in self.input_names:
                raise NetshrinkError(f"the model has no input {name!r}; its inputs are "
                                     f"{', '.join(self.input_names)}")
            if name in named:
                raise NetshrinkError(f"input {name!r} given twice")
            named[name] = value
        missing = [n for n in self.input_names if n not in named]
        if missing:
            raise NetshrinkError(f"missing input(s) {', '.join(missing)}")
        return {name: _numpy(value) for name, value in named.items()}

    def __call__(self, *args, **kwargs):
        """Run the model: one tensor back for one output, else a tuple."""
        outputs = self.session.run(None, self.feeds(*args, **kwargs))
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(o)) for o in outputs)
        return tensors[0] if len(tensors) == 1 else tensors

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.path)!r}, threads={self.threads})"


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().contiguous().numpy()
    return np.asarray(value)
