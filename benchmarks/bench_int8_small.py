"""int8 on small networks: netshrink against every runtime a user could pick instead.

    PYTHONPATH=src python benchmarks/bench_int8_small.py [--threads 2] [--repeats-b1 200]

For LeNet-300-100, LeNet-5 and ResNet-20 (Fashion-MNIST shapes, untrained weights: the timing
does not depend on them), at batch 1 and 256, every side below is timed in one run, alternately
(A B C ... A B C, netshrink.measure.compare_latency, one untimed settle call before each timed
one), medians; ratios are to PyTorch float32 (higher is faster). Threads fixed (torch and every
onnxruntime session), the CPU's flags and the load average printed.

Sides: PyTorch float32; onnxruntime float32 (torch.onnx export); torch.ao x86 static
(prepare_fx / convert_fx, x86 default qconfig mapping); onnxruntime static QDQ (quantize_static,
per-channel int8 weights, uint8 activations); netshrink Static as quantized (the integer modules,
PyTorch), its integer ONNX export (mode="integer") in onnxruntime, and its integer program
(netshrink.quant.compile_int8) on onnxruntime with each choice of kernels (integer; mixed:
float kernels on the dequantized weights for layers with small reductions; float: for all, the
same integers either way) and on PyTorch (oneDNN's ops; with fbgemm kernels: its Linear
layers on fbgemm, what torch.ao runs, convolutions still on oneDNN); "netshrink best" is the one
compile_int8 picks on its own (runtime="auto", timed on the same batch size), its ratio taken
from this run. Every quantized side calibrates on the same 256 random images.

Then the pruned rows: each model pruned two ways, quantized and compiled as the dense one,
and all three timed alternately on the runtime the dense model's auto choice picked: 90% of
the weights by magnitude (global; the same dense kernels, its zeros multiplied: about as fast),
and half of every layer's channels by L1 norm (structured: the same ops over fewer channels,
fewer multiply-accumulates, printed). The ratios say whether a pruned-then-quantized model is
at least as fast as the dense one.
Writes JSON (every median, p10, p90, the choices, the load) to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

import netshrink
from netshrink import measure
from netshrink.fileio import atomic_write
from netshrink.models import registry
from netshrink.quant import OnnxRunner, Static, compile_int8, export_onnx, kernels
from netshrink.quant.int8.onnx_backend import KERNELS
from netshrink.quant.int8.torch_backend import KERNELS as TORCH_KERNELS

MODELS = {"LeNet-300-100": ("lenet300", {}), "LeNet-5": ("lenet5", {}),
          "ResNet-20": ("resnet", {"depth": 20, "width": 16})}
SHAPE = (1, 28, 28)
CALIBRATION = 256
BASELINES = ("torch.ao x86 static (FX)", "onnxruntime static QDQ")
PROGRAM = "netshrink int8 program"
COLUMNS = ("onnxruntime fp32", *BASELINES, "netshrink Static (torch)", "netshrink integer ONNX",
           f"{PROGRAM} (onnxruntime)", f"{PROGRAM} (onnxruntime, float kernels)",
           f"{PROGRAM} (onnxruntime, mixed kernels)", f"{PROGRAM} (torch)",
           f"{PROGRAM} (torch, fbgemm kernels)", "netshrink best")
FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
         "amx_int8")


def export_float(model, path: Path) -> Path:
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, *SHAPE),), str(path), input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"},
                                                                 "output": {0: "batch"}},
                          opset_version=17, dynamo=False)
    return path


def torch_ao_static(model, calibration):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"),
                          (calibration[:1],))
    with torch.no_grad():
        prepared(calibration)
    return convert_fx(prepared)


def onnxruntime_qdq(float_onnx: Path, path: Path, calibration) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": calibration[i:i + 32].numpy()}
                                 for i in range(0, len(calibration), 32)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(float_onnx), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return path


def build_sides(name: str, builder: tuple, work: Path, threads: int, calibration) -> dict:
    """name -> callable(x), every side of one model."""
    model_name, kwargs = builder
    torch.manual_seed(0)
    model = registry.create(model_name, input_shape=SHAPE, num_classes=10, **kwargs).eval()
    float_onnx = export_float(model, work / f"{model_name}_float.onnx")
    ort_float = OnnxRunner(float_onnx, threads)
    ao = torch_ao_static(model, calibration)
    qdq = OnnxRunner(onnxruntime_qdq(float_onnx, work / f"{model_name}_qdq.onnx", calibration),
                     threads)
    ours = copy.deepcopy(model)
    netshrink.quantize_(ours, Static(), data=calibration)
    integer_onnx = OnnxRunner(export_onnx(ours, calibration[:1], work / f"{model_name}_int.onnx",
                                          mode="integer"), threads)
    example = calibration[:1]
    sides = {"pytorch fp32": model, "onnxruntime fp32": ort_float,
             "torch.ao x86 static (FX)": ao, "onnxruntime static QDQ": qdq,
             "netshrink Static (torch)": ours, "netshrink integer ONNX": integer_onnx}
    graphs = set()
    for choice in KERNELS:  # a choice that gives the same graph as an earlier one is left out
        compiled = compile_int8(ours, example, data=calibration, runtime="onnxruntime",
                                threads=threads, kernels=choice)
        graph = tuple(node.op_type for node in compiled.runner.model.graph.node)
        if graph not in graphs:
            graphs.add(graph)
            sides[f"netshrink int8 program ({compiled.variant})"] = compiled
    for choice in TORCH_KERNELS:
        compiled = compile_int8(ours, example, data=calibration, runtime="torch",
                                threads=threads, kernels=choice)
        if compiled.code not in {getattr(side, "code", None) for side in sides.values()}:
            sides[f"netshrink int8 program ({compiled.variant})"] = compiled
    return {"model": model, "quantized": ours, "sides": sides}


def _load() -> float:
    return os.getloadavg()[0]


def time_row(sides: dict, x, threads: int, repeats: int) -> dict:
    calls = {name: (lambda fn=fn: fn(x)) for name, fn in sides.items()}
    load = _load()
    stats = measure.compare_latency(calls, repeats=repeats, warmup=5, num_threads=threads,
                                    settle=1, isolate=True)
    return {"stats": {k: v.to_dict() for k, v in stats.items()},
            "load_before": load, "load_after": _load()}


def structured_copy(model, calibration):
    """The model with half of every layer's channels removed (L1 norm), quantized."""
    from netshrink.prune import StructuredConfig

    pruned = copy.deepcopy(model)
    netshrink.prune_(pruned, StructuredConfig(sparsity=0.5), example=calibration[:2])
    netshrink.quantize_(pruned, Static(), data=calibration)
    return pruned


def pruned_copy(model, calibration):
    """The model pruned to 90% (global magnitude; where that would empty a layer, the largest
    compression that does not) and quantized; (model, sparsity)."""
    from netshrink.prune.api import LayerCollapseError

    pruned = copy.deepcopy(model)
    try:
        netshrink.prune_(pruned, "magnitude", sparsity=0.9)
    except LayerCollapseError as err:
        pruned = copy.deepcopy(model)
        netshrink.prune_(pruned, "magnitude", compression=0.99 * err.safe_compression)
    weights = [m.weight for m in pruned.modules()
               if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    sparsity = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    netshrink.quantize_(pruned, Static(), data=calibration)
    return pruned, sparsity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats-b1", type=int, default=200)
    parser.add_argument("--repeats-b256", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", default="runs/bench/int8_small.json")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    flags = kernels.cpu_flags()
    shown = " ".join(f for f in FLAGS if f in flags)
    print(f"CPU: {kernels.cpu_model()}; flags: {shown}; "
          f"VNNI: {kernels.has_vnni()}; {args.threads} threads (torch and onnxruntime); "
          f"medians of alternated calls; load average {_load():.2f}")
    torch.manual_seed(0)
    calibration = torch.rand(CALIBRATION, *SHAPE)
    results = {"threads": args.threads, "cpu": kernels.cpu_model(),
               "cpu_flags": sorted(flags & set(FLAGS)),
               "vnni": kernels.has_vnni(), "torch": torch.__version__, "rows": {}}
    header = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            built = build_sides(name, MODELS[name], Path(tmp), args.threads, calibration)
            for batch in (1, 256):
                x = torch.rand(batch, *SHAPE)
                repeats = args.repeats_b1 if batch == 1 else args.repeats_b256
                auto = compile_int8(built["quantized"], x, data=calibration, runtime="auto",
                                    threads=args.threads)
                row = time_row(built["sides"], x, args.threads, repeats)
                medians = {k: v["median"] for k, v in row["stats"].items()}
                base = medians["pytorch fp32"]
                best = f"netshrink int8 program ({auto.variant})"
                row.update({"auto_variant": auto.variant, "auto_timings": auto.timings,
                            "speedup": {k: base / v for k, v in medians.items()}})
                row["speedup"]["netshrink best"] = base / medians[best]
                row["fastest_baseline"] = max(BASELINES, key=lambda k: row["speedup"][k])
                results["rows"][f"{name}, {batch}"] = row
                if header is None:
                    header = [k for k in COLUMNS if k != "pytorch fp32"]
                    print("| model, batch | " + " | ".join(header) + " |")
                    print("|---" * (len(header) + 1) + "|")
                cells = [f"{row['speedup'][k]:.2f}" if k in row["speedup"] else "-"
                         for k in header]
                cells[-1] += f" ({auto.variant})"
                print(f"| {name}, {batch} | " + " | ".join(cells) + " |", flush=True)
            prune_row(built, calibration, args, results, name)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(results, indent=2) + "\n")
    print(f"load average at the end {_load():.2f}; wrote {out}")
    return 0


def prune_row(built: dict, calibration, args, results: dict, name: str) -> None:
    """Dense vs pruned (magnitude, structured), quantized and compiled for the dense model's
    auto runtime, timed alternately."""
    pruned, sparsity = pruned_copy(built["model"], calibration)
    narrow = structured_copy(built["model"], calibration)
    for batch in (1, 256):
        variant = results["rows"][f"{name}, {batch}"]["auto_variant"]
        runtime, _, kernels = variant.partition(", ")
        default = "integer" if runtime == "onnxruntime" else "onednn"
        options = {"runtime": runtime, "threads": args.threads,
                   "kernels": kernels.split()[0] if kernels else default}
        x = torch.rand(batch, *SHAPE)
        sides = {"dense": compile_int8(built["quantized"], x, data=calibration, **options),
                 "pruned": compile_int8(pruned, x, data=calibration, **options),
                 "structured": compile_int8(narrow, x, data=calibration, **options)}
        macs = {k: c.program.macs() for k, c in sides.items()}
        repeats = args.repeats_b1 if batch == 1 else args.repeats_b256
        row = time_row(sides, x, args.threads, repeats)
        median = {k: v["median"] for k, v in row["stats"].items()}
        ratio = median["dense"] / median["pruned"]
        narrow_ratio = median["dense"] / median["structured"]
        row.update({"variant": variant, "sparsity": sparsity, "macs": macs,
                    "pruned_speedup_over_dense": ratio,
                    "structured_speedup_over_dense": narrow_ratio})
        results["rows"][f"{name}, {batch}, pruned"] = row
        print(f"  {name}, batch {batch}, {variant}: pruned ({sparsity:.0%} of weights zero) "
              f"then quantized {ratio:.2f}x the dense int8 program; half the channels "
              f"(structured, {macs['structured'] / macs['dense']:.0%} of its MACs) "
              f"{narrow_ratio:.2f}x", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
