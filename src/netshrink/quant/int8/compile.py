"""`compile_int8`: a quantized model -> the fastest integer runtime this machine has for it.

    netshrink.quantize_(model, Static(), data=calibration)      # in place
    fast = netshrink.quant.compile_int8(model, example, data=calibration)   # runtime="auto"
    logits = fast(images)
    fast.runtime, fast.timings          # which runtime won, and what each took on `example`

Static models are lowered to an integer program (lower.py: activations stay uint8 from layer
to layer) and run by oneDNN's quantized ops in PyTorch ("torch") or by onnxruntime's QLinear
operators ("onnxruntime"). Dynamic models (inputs quantized at run time) run as they are in
PyTorch or as integer ONNX in onnxruntime (quant/onnx_export.py, mode="integer").

runtime="auto" builds every runtime that can run the model, checks each against the reference
integer arithmetic on the example, times them alternately on the example (its batch size
matters: compile with the batch you will run) and keeps the fastest; a runtime that cannot run
the model, or whose outputs disagree with the reference, is left out with its reason in
`skipped` (an error only when none is left).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Dataset

from netshrink import measure
from netshrink.data.inputs import Inputs
from netshrink.errors import NetshrinkError
from netshrink.quant.int8 import lower, reference
from netshrink.quant.int8.program import Dense, Program
from netshrink.quant.modules import QuantConv1d, QuantConv2d, QuantLinear

if TYPE_CHECKING:
    from netshrink.data.splits import Splits

RUNTIMES = ("auto", "torch", "onnxruntime")
# Rows of the example the reference arithmetic checks each runtime on (float64: slow).
CHECK_ROWS = 4
# Seconds of timed calls per candidate that runtime="auto" aims for.
TIMING_BUDGET = 0.5
MAX_REPEATS = 30


class CompiledModel(nn.Module):
    """A compiled integer model: call it like the model (tensors in, float tensors out).

    An nn.Module, so code that takes a model (netshrink.train.evaluate, measure.latency)
    takes it; it has no parameters of its own, and a call goes straight to the runtime (no
    module hooks). variant: how it runs, e.g. "onnxruntime, mixed kernels" (onnxruntime's
    integer kernels, and float kernels on the dequantized weights for layers with small
    reductions: the same integers either way, see onnx_backend.KERNELS); timings: each
    candidate's median seconds on the example; skipped: runtimes left out, and why.
    """

    def __init__(
        self,
        variant: str,
        runner: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]],
        program: Program | None = None,
        timings: dict | None = None,
        skipped: dict | None = None,
    ):
        super().__init__()
        self.variant, self.runner, self.program = variant, runner, program
        self.timings, self.skipped = dict(timings or {}), dict(skipped or {})
        self.eval()

    def __call__(self, *inputs: torch.Tensor):
        return self.runner(*inputs)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.runner(*inputs)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}"

    @property
    def runtime(self) -> str:
        return self.variant.split(",")[0]

    @property
    def code(self) -> str | None:
        """The generated Python function (torch runtime), else None."""
        return getattr(self.runner, "code", None)

    def save_onnx(self, path: str | os.PathLike) -> Path:
        """Write the onnxruntime runtime's graph to `path` (runtime 'onnxruntime' only)."""
        if not hasattr(self.runner, "save"):
            raise NetshrinkError(f"save_onnx needs runtime 'onnxruntime' (this one runs "
                                 f"{self.runtime!r}); compile with runtime='onnxruntime'")
        return self.runner.save(path)


def _as_args(example) -> tuple[torch.Tensor, ...]:
    args = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise NetshrinkError("example must be an input tensor or a tuple of input tensors")
    return args


def _integer_layers(model: nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, QuantLinear | QuantConv1d | QuantConv2d)]


def is_static(model: nn.Module) -> bool:
    """True when `model` has integer Linear/Conv1d/Conv2d layers and all of them quantize their
    inputs with calibrated scales (Static, or QAT converted): what compile_int8 lowers to an
    integer program. A float or dynamic model gives False."""
    layers = _integer_layers(model)
    return bool(layers) and all(layer.activation.static for layer in layers)


def _check_model(model: nn.Module) -> bool:
    """True for a static model, False for a dynamic one; a clear error for anything else."""
    if not isinstance(model, nn.Module):
        raise NetshrinkError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    layers = _integer_layers(model)
    if not layers:
        raise NetshrinkError("the model has no integer layers; quantize it first, e.g. "
                             "netshrink.quantize_(model, Static(), data=calibration)")
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.device.type != "cpu":
            raise NetshrinkError(f"compile_int8 runs on CPUs; the model is on {tensor.device} "
                                 "(model.cpu() first)")
    static = {layer.activation.static for layer in layers}
    if len(static) != 1:
        raise NetshrinkError("the model mixes static and dynamic integer layers; quantize it "
                             "with one config")
    return static.pop()


def _outputs(result) -> tuple[torch.Tensor, ...]:
    """A model's result as a tuple of tensors; anything else (a dict, whose keys a runtime
    would lose) is refused, as lowering refuses it for static models."""
    if isinstance(result, torch.Tensor):
        return (result,)
    if isinstance(result, tuple | list) and all(isinstance(r, torch.Tensor) for r in result):
        return tuple(result)
    raise NetshrinkError("compile_int8 needs a model that returns a tensor or a tuple of "
                         f"tensors (got {type(result).__name__}); return a tuple, or run the "
                         "model as it is")


def _check_against(runner, expected, args, runtime: str) -> None:
    """A runtime that disagrees with the reference arithmetic is a bug: refuse it loudly."""
    with torch.inference_mode():
        got = _outputs(runner(*args))
    for g, e in zip(got, _outputs(expected), strict=True):
        span = float(e.abs().max()) or 1.0
        worst = float((g.float() - e.float()).abs().max())
        if g.shape != e.shape or worst > 0.05 * span + 1e-6:
            raise NetshrinkError(
                f"internal error: runtime {runtime!r} disagrees with netshrink's reference "
                f"integer arithmetic on the example (largest difference {worst:.3g} of "
                f"{span:.3g}); please report it, and use another runtime meanwhile")


def _static_runners(program: Program, wanted: Sequence[str], threads: int | None,
                    kernels: str | None):
    """{label: runner} of every way asked for to run the program, and {runtime: why not}.
    Choices of kernels that give the same program as an earlier choice are left out."""
    from netshrink.quant.int8 import onnx_backend, torch_backend

    runners, skipped = {}, {}
    if "torch" in wanted:
        if torch_backend.available():
            fused = lower.fuse_residual_adds(program)
            choices = (kernels,) if kernels in torch_backend.KERNELS else torch_backend.KERNELS
            seen = set()
            for variant in choices:
                on_fbgemm = torch_backend.layers_on_fbgemm(fused, variant)
                if on_fbgemm in seen:
                    continue
                seen.add(on_fbgemm)
                label = "torch" if variant == "onednn" else f"torch, {variant} kernels"
                runners[label] = torch_backend.TorchProgram(fused, on_fbgemm)
        else:
            skipped["torch"] = "this build of torch has no oneDNN quantized ops (x86 only)"
    if "onnxruntime" in wanted:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            skipped["onnxruntime"] = "onnxruntime is not installed (pip install netshrink[onnx])"
        else:
            seen = set()
            choices = (kernels,) if kernels in onnx_backend.KERNELS else onnx_backend.KERNELS
            for variant in choices:
                on_float = frozenset(op.output for op in program.ops if isinstance(op, Dense)
                                     and onnx_backend.uses_float_kernel(op, variant))
                if on_float in seen:  # the same graph as a choice already made
                    continue
                seen.add(on_float)
                label = "onnxruntime" if variant == "integer" else \
                    f"onnxruntime, {variant} kernels"
                runners[label] = onnx_backend.OnnxProgram(program, threads, variant)
    return runners, skipped


def _dynamic_runners(model: nn.Module, args, wanted: Sequence[str], threads: int | None):
    from netshrink.quant.onnx_runner import OnnxRunner

    runners, skipped = {}, {}
    if "torch" in wanted:
        runners["torch"] = model
    if "onnxruntime" in wanted:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = _export_integer(model, args, Path(tmp) / "model.onnx")
                runners["onnxruntime"] = OnnxRunner(path, threads)
        except ImportError:
            skipped["onnxruntime"] = "onnxruntime is not installed (pip install netshrink[onnx])"
        except NetshrinkError as err:
            skipped["onnxruntime"] = str(err)
    return runners, skipped


def _export_integer(model: nn.Module, args, path: Path) -> Path:
    """Integer ONNX of a dynamic model; a sentence encoder (MiniLM) through its own exporter,
    which fuses the query, key and value products into one."""
    from netshrink.models import minilm
    from netshrink.quant import minilm_onnx
    from netshrink.quant.onnx_export import export_onnx

    if isinstance(model, minilm.SentenceEncoder):
        return minilm_onnx.export(model, path)
    return export_onnx(model, args, path, mode="integer")


def _fastest(runners: dict, args, threads: int | None, repeats: int | None) -> dict:
    """Median seconds of each runner on `args`, timed alternately and isolated
    (measure.compare_latency(isolate=True): after the last runner's threads stop spinning,
    warmed for 20 ms). repeats None: as many as
    fit in about TIMING_BUDGET seconds of calls per candidate, from 10 to MAX_REPEATS (a
    choice made on a loaded machine needs many; each turn also waits for the threads)."""
    calls = {name: (lambda r=r: r(*args)) for name, r in runners.items()}
    if repeats is None:
        probe = measure.compare_latency(calls, repeats=3, warmup=2, num_threads=threads)
        slowest = max(s.median for s in probe.values())
        repeats = int(min(MAX_REPEATS, max(10, TIMING_BUDGET / max(slowest, 1e-6))))
    stats = measure.compare_latency(calls, repeats=repeats, warmup=3, num_threads=threads,
                                    settle=1, isolate=True)
    return {name: s.median for name, s in stats.items()}


def compile_int8(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor],
    data: Inputs | Dataset | Splits | Iterable[Any] | None = None,
    runtime: str = "auto",
    threads: int | None = None,
    repeats: int | None = None,
    kernels: str | None = None,
) -> CompiledModel:
    """The integer model `model` (quantized by netshrink.quantize_) as a fast callable.

    example: an input batch (or a tuple of them, one per forward argument) of the size you
        will run; it fixes the shapes, and runtime="auto" times the runtimes on it.
    data: calibration inputs for the values no integer layer calibrated (residual adds,
        concatenations, average pools): the data quantize_ was given, or a few hundred
        examples. Not needed for chains of layers, ReLUs, max pools and flattens.
    runtime: "auto" (the fastest on `example`), "torch" or "onnxruntime".
    threads: intra-op threads for onnxruntime and for timing (None: torch's current count).
    repeats: timed calls of each candidate when there is more than one (None: as many as
        fit in about TIMING_BUDGET seconds each, 10 to MAX_REPEATS).
    kernels: one runtime's choice of kernels (None: time every choice and keep the fastest).
        onnxruntime: "integer", "float" or "mixed" (onnx_backend.KERNELS); torch: "onednn"
        or "fbgemm" (for its Linear layers; torch_backend.KERNELS). Under "auto" it
        fixes that runtime's choice, and the other runtime is timed with all of its own.
    """
    from netshrink.quant.int8 import onnx_backend, torch_backend

    if runtime not in RUNTIMES:
        raise NetshrinkError(f"runtime={runtime!r} is not one of {', '.join(RUNTIMES)}")
    if kernels is not None:
        allowed = {"torch": torch_backend.KERNELS, "onnxruntime": onnx_backend.KERNELS,
                   "auto": torch_backend.KERNELS + onnx_backend.KERNELS}[runtime]
        if kernels not in allowed:
            raise NetshrinkError(
                f"kernels={kernels!r} is not a choice of runtime {runtime!r}; onnxruntime's "
                f"are {', '.join(onnx_backend.KERNELS)} and torch's "
                f"{', '.join(torch_backend.KERNELS)}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise NetshrinkError(f"threads={threads!r} must be a positive integer (or None)")
    static = _check_model(model)
    args = _as_args(example)
    model.eval()
    wanted = ("torch", "onnxruntime") if runtime == "auto" else (runtime,)
    ort_threads = threads or torch.get_num_threads()
    program = None
    if static:
        program = lower.lower(model, args, data)
        runners, skipped = _static_runners(program, wanted, ort_threads, kernels)
        check_args = tuple(a[:CHECK_ROWS] for a in args)
        expected = reference.run(program, *check_args)
    else:
        if kernels is not None:
            raise NetshrinkError("kernels= applies to statically quantized models; this one "
                                 "quantizes its inputs at run time (Dynamic)")
        runners, skipped = _dynamic_runners(model, args, wanted, ort_threads)
        check_args = tuple(a[:CHECK_ROWS] for a in args)
        with torch.inference_mode():
            expected = model(*check_args)
        _outputs(expected)
    if not runners:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise NetshrinkError(f"no runtime can run this model ({reasons})")
    first_failure = None
    for name, runner in list(runners.items()):
        try:
            _check_against(runner, expected, check_args, name)
        except NetshrinkError as err:  # left out, with the reason; an error if none is left
            first_failure = first_failure or err
            skipped[name] = str(err)
            del runners[name]
    if not runners:
        raise first_failure
    timings = {}
    if len(runners) > 1:
        timings = _fastest(runners, args, threads, repeats)
        best = min(timings, key=timings.get)
    else:
        best = next(iter(runners))
    return CompiledModel(best, runners[best], program, timings, skipped)


def as_deployed(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor],
    data: Inputs | Dataset | Splits | Iterable[Any] | None = None,
    runtime: str = "auto",
    threads: int | None = None,
    repeats: int | None = None,
) -> tuple[nn.Module, str, str | None]:
    """(what to time or run, the runtime it runs on, why it is not compiled or None).

    For tables that time models as a user would deploy them: a statically quantized model
    compiled by compile_int8 (label: its variant, e.g. "onnxruntime, mixed kernels"); a float
    or dynamic model as the PyTorch module it is ("torch"). A static model no runtime can
    compile (an op with no integer form) is, under runtime="auto", its integer modules
    ("torch (integer modules)", with the reason); a runtime named explicitly raises instead.
    """
    if not is_static(model):
        return model, "torch", None
    try:
        compiled = compile_int8(model, example, data=data, runtime=runtime, threads=threads,
                                repeats=repeats)
    except NetshrinkError as err:
        if runtime != "auto":
            raise
        return model, "torch (integer modules)", str(err)
    return compiled, compiled.variant, None
