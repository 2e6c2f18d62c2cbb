"""Measured latency of pruned models against the original: torch (eager), TorchScript (traced,
frozen, optimized for inference) and onnxruntime, same run.

    rows = latency_rows({"dense": model, "pruned": pruned}, lambda n: torch.rand(n, 1, 28, 28))

Every model of one (runtime, batch size) is timed in one netshrink.measure.compare_latency
call, alternating A B C ..., with the thread count fixed (torch and onnxruntime alike), so
load from elsewhere hits all sides; the speed-up is each side's median against the first
model's, measured in that run. A FLOPs ratio is never reported as a speed-up here.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from netshrink.measure import compare_latency
from netshrink.prune.structured import call

if TYPE_CHECKING:
    import onnxruntime as ort

RUNTIMES = ("torch", "torchscript", "onnxruntime")


def _args(inputs) -> tuple:
    return tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)


def export_float(
    model: nn.Module,
    example: torch.Tensor | Sequence[torch.Tensor],
    path: Path,
) -> Path:
    """The float model as ONNX (batch axis dynamic), for onnxruntime."""
    args = _args(example)
    names = ["input"] if len(args) == 1 else [f"input_{i}" for i in range(len(args))]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(path), input_names=names,
                          output_names=["output"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch"} for n in [*names, "output"]})
    return path


def frozen(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor],
) -> torch.jit.ScriptModule:
    """`model` traced on `inputs`, frozen and optimized for inference: PyTorch's own deployment
    path on CPU (BatchNorm folded into the convolutions, oneDNN layouts), traced per batch
    size so no shape is baked in wrongly."""
    from netshrink.errors import NetshrinkError

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(model.eval(), _args(inputs), check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        except Exception as error:  # TorchScript cannot trace every forward
            raise NetshrinkError(f"TorchScript could not trace the model ({error}); time it "
                                 "with runtimes=('torch', 'onnxruntime')") from error


def onnx_session(path: Path, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session with `threads` intra-op threads that do not spin after
    their work (so the next side timed gets the cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_runner(session, inputs) -> Callable[[], object]:
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), _args(inputs),
                                             strict=True)}
    return lambda: session.run(None, feed)


def _script_runner(script, inputs) -> Callable[[], object]:
    args = _args(inputs)
    return lambda: script(*args)


def latency_rows(models: dict[str, nn.Module], make_input: Callable[[int], object],
                 batches: tuple[int, ...] = (1, 64), threads: int = 2, repeats: int = 20,
                 warmup: int = 3, runtimes: tuple[str, ...] = RUNTIMES, settle: int = 1
                 ) -> list[dict]:
    """One row per (runtime, batch, model): median and spread in ms, and the speed-up
    against the first model of `models`, all sides of a (runtime, batch) timed alternately;
    settle: untimed calls of a side just before each of its timed ones (its weights back in
    cache and the previous side's threads gone: without it, identical architectures timed
    in one run differed by up to 2x at batch 1); with settle, sides are also timed isolated
    (measure.compare_latency(isolate=True))."""
    rows = []
    for model in models.values():
        model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        if "onnxruntime" in runtimes:
            example = make_input(1)
            for i, (name, model) in enumerate(models.items()):
                path = export_float(model, example, Path(tmp) / f"m{i}.onnx")
                sessions[name] = onnx_session(path, threads)
        for runtime in runtimes:
            for batch in batches:
                inputs = make_input(batch)
                if runtime == "torch":
                    sides = {n: (lambda m=m, x=inputs: call(m, x)) for n, m in models.items()}
                elif runtime == "torchscript":
                    sides = {n: _script_runner(frozen(m, inputs), inputs)
                             for n, m in models.items()}
                else:
                    sides = {n: _onnx_runner(s, inputs) for n, s in sessions.items()}
                stats = compare_latency(sides, repeats=repeats, warmup=warmup,
                                        num_threads=threads, settle=settle,
                                        isolate=bool(settle))
                first = stats[next(iter(models))].median
                for name, s in stats.items():
                    rows.append({"runtime": runtime, "batch": batch, "model": name,
                                 "threads": s.threads, "median_ms": 1e3 * s.median,
                                 "p10_ms": 1e3 * s.p10, "p90_ms": 1e3 * s.p90,
                                 "runs": s.runs, "speedup": first / s.median})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A Markdown table of latency_rows."""
    lines = ["| runtime | batch | model | median ms | p10-p90 ms | speed-up |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['runtime']} | {r['batch']} | {r['model']} | {r['median_ms']:.3f} "
                     f"| {r['p10_ms']:.3f}-{r['p90_ms']:.3f} | {r['speedup']:.2f}x |")
    return "\n".join(lines)
