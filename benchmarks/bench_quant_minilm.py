"""MiniLM int8, side by side: netshrink against torch.ao and onnxruntime dynamic quantization.

    PYTHONPATH=src python benchmarks/bench_quant_minilm.py [--repeats 30] [--threads 2 1]

One batch of 32 sentences (32-64 tokens each, netshrink.quant.sentences), all sides timed in
the same run, alternating A B C ... A B C (netshrink.measure.compare_latency), medians; the
whole comparison once per thread count (2, then 1 by default). Each timed call follows one
untimed call of the same side (--settle 1), so no side is timed while the previous side's
threads (onnxruntime's or OpenMP's, which spin after their work) still hold a core. Quality
is the cosine similarity of each side's embeddings to PyTorch float32's on all 72 evaluation
sentences; size is each side's saved file against the float32 safetensors file. Writes JSON,
with the machine's load average before and after each timed run.

Sides: PyTorch float32; torch.ao.quantization.quantize_dynamic per tensor and per channel
(fbgemm int8 Linear layers, embeddings left in float32); onnxruntime float32 and
onnxruntime.quantization.quantize_dynamic with per-channel int8 weights (on the float model
exported by torch.onnx); and netshrink:
  netshrink int8 (onnxruntime)        the model quantized with minilm_onnx.INTEGER_CONFIG
                                      (7-bit weights, 8-bit inputs, one scale per call),
                                      exported as integer ONNX (minilm_onnx.export), run by
                                      onnxruntime: the side the verdict is about
  ... integer attention               the same, attention products as integer products too
  netshrink int8 (PyTorch, per call)  the same quantized model on PyTorch's oneDNN kernels
  netshrink int8 (PyTorch, per token) Dynamic(): 8-bit weights, 7-bit inputs, one scale per
                                      token, oneDNN kernels (the earlier netshrink side)
Every onnxruntime side gets the same session options (all graph optimizations, the intra-op
threads fixed, onnxruntime's defaults otherwise).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import netshrink
from netshrink import measure
from netshrink.fileio import atomic_write
from netshrink.models import minilm
from netshrink.quant import Dynamic, OnnxRunner, kernels
from netshrink.quant.sentences import EVALUATION

BATCH = 32
BASELINES = ("torch.ao dynamic per-tensor", "torch.ao dynamic per-channel",
             "onnxruntime dynamic per-channel")
OURS = "netshrink int8 (onnxruntime)"


class _Exported(nn.Module):
    """The encoder with positional inputs, for torch.onnx.export."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.encoder(input_ids, attention_mask, token_type_ids)


@dataclass
class Side:
    """One thing timed: a PyTorch model or an ONNX file, and the file its size is read from."""

    file: Path
    model: nn.Module | None = None  # None: run `file` in onnxruntime

    def runner(self, threads: int):
        """fn(batch) -> embeddings, with `threads` intra-op threads for onnxruntime."""
        if self.model is not None:
            return lambda batch: self.model(**batch)
        session = OnnxRunner(self.file, threads)
        return lambda batch: session(**batch)


def build_sides(work: Path) -> dict[str, Side]:
    """Every side's model or ONNX file, built once."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    from netshrink.quant import minilm_onnx

    float_model = minilm.pretrained()
    sides = {"pytorch float32": Side(netshrink.save(float_model, work / "float32.safetensors"),
                                     float_model)}
    for name, qconfig in (("torch.ao dynamic per-tensor", default_dynamic_qconfig),
                          ("torch.ao dynamic per-channel", per_channel_dynamic_qconfig)):
        model = ao_quantize_dynamic(copy.deepcopy(float_model), {nn.Linear: qconfig},
                                    dtype=torch.qint8)
        file = work / f"{name.replace(' ', '_')}.pt"
        torch.save(model.state_dict(), file)  # size only; never loaded
        sides[name] = Side(file, model)

    onnx_float = work / "float32.onnx"
    example = minilm.tokenize(EVALUATION[:2])
    with torch.no_grad():
        torch.onnx.export(_Exported(float_model).eval(),
                          (example["input_ids"], example["attention_mask"],
                           example["token_type_ids"]), str(onnx_float),
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["embedding"],
                          dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in example},
                                        "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)
    float_model.eval()  # the exporter restores the wrapper's (train) mode on its children
    onnx_int8 = work / "dynamic_per_channel.onnx"
    quantize_dynamic(str(onnx_float), str(onnx_int8), per_channel=True,
                     weight_type=QuantType.QInt8)
    sides["onnxruntime float32"] = Side(onnx_float)
    sides["onnxruntime dynamic per-channel"] = Side(onnx_int8)

    per_call = copy.deepcopy(float_model)
    netshrink.quantize_(per_call, minilm_onnx.INTEGER_CONFIG)
    sides[OURS] = Side(minilm_onnx.export(per_call, work / "netshrink_int8.onnx"))
    sides["netshrink int8 (onnxruntime, integer attention)"] = Side(
        minilm_onnx.export(per_call, work / "netshrink_int8_int_attention.onnx", "integer"))
    sides["netshrink int8 (PyTorch, per call)"] = Side(
        netshrink.save(per_call, work / "netshrink_int8_per_call.safetensors"), per_call)
    per_token = copy.deepcopy(float_model)
    netshrink.quantize_(per_token, Dynamic())
    sides["netshrink int8 (PyTorch, per token)"] = Side(
        netshrink.save(per_token, work / "netshrink_int8.safetensors"), per_token)
    return sides


def _embed_all(fn) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(minilm.tokenize(EVALUATION[i:i + BATCH]))
                          for i in range(0, len(EVALUATION), BATCH)])


def time_sides(sides: dict[str, Side], threads: int, repeats: int, warmup: int,
               settle: int = 1) -> dict:
    """One alternating run of every side with `threads` threads: {name: LatencyStats}."""
    batch = minilm.tokenize(EVALUATION[:BATCH])
    fns = {name: side.runner(threads) for name, side in sides.items()}
    return measure.compare_latency({name: (lambda fn=fn: fn(batch)) for name, fn in
                                    fns.items()}, repeats=repeats, warmup=warmup,
                                   num_threads=threads, settle=settle,
                                   isolate=bool(settle))


def verdict(rows: dict) -> dict:
    fastest = min(BASELINES, key=lambda n: rows[n]["median_ms"])
    ours = rows[OURS]
    return {
        "side": OURS, "faster_baseline": fastest,
        "netshrink_over_faster_baseline": rows[fastest]["median_ms"] / ours["median_ms"],
        "as_fast_as_faster_baseline": ours["median_ms"] <= rows[fastest]["median_ms"],
        "cosine_at_least_0.99": ours["cosine_mean"] >= 0.99,
        "file_at_least_3.9x_smaller": ours["smaller_than_float32"] >= 3.9,
        "speedup_at_least_2.7x": ours["speedup_vs_float32"] >= 2.7,
    }


INTEGER_PRODUCTS = ("DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger")


def profile_onnx(path: Path, threads: int = 1, runs: int = 5) -> dict:
    """Where onnxruntime spends a batch's time in `path`: ms per run for each operator type
    (onnxruntime's own profiler, after one warm-up run)."""
    import onnxruntime as ort

    from netshrink.quant.onnx_runner import session_options

    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {k: v.numpy() for k, v in minilm.tokenize(EVALUATION[:BATCH]).items()}
    for _ in range(runs + 1):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = sorted((e for e in events if e.get("name") == "model_run"),
                        key=lambda e: e["ts"])[1:]  # the first run is the warm-up
    totals = [e["dur"] for e in model_runs]
    per_op: dict[str, float] = {}
    for e in events:
        if (e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
                and e["ts"] >= model_runs[0]["ts"]):
            op = e["args"]["op_name"]
            per_op[op] = per_op.get(op, 0.0) + e["dur"] / 1000 / runs
    integer = sum(per_op.get(op, 0.0) for op in INTEGER_PRODUCTS)
    return {"threads": threads, "runs": runs,
            "run_ms_median": statistics.median(totals) / 1000,
            "operator_ms_per_run": dict(sorted(per_op.items(), key=lambda kv: -kv[1])),
            "integer_products_ms_per_run": integer,
            "integer_products_share": integer / (statistics.median(totals) / 1000)}


def run(repeats: int, warmup: int, thread_counts: list[int], out: Path,
        settle: int = 1) -> dict:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        sides = build_sides(Path(tmp))
        sizes = {name: measure.file_size(side.file) for name, side in sides.items()}
        with measure.threads(thread_counts[0]):
            fns = {name: side.runner(thread_counts[0]) for name, side in sides.items()}
            reference = _embed_all(fns["pytorch float32"])
            cosine = {name: minilm.cosine_to(reference, _embed_all(fn))
                      for name, fn in fns.items()}
        del fns
        runs = {}
        for threads in thread_counts:
            load_before = os.getloadavg()
            stats = time_sides(sides, threads, repeats, warmup, settle)
            load_after = os.getloadavg()
            base = stats["pytorch float32"].median
            rows = {}
            for name in sides:
                rows[name] = {
                    "median_ms": 1000 * stats[name].median, "p10_ms": 1000 * stats[name].p10,
                    "p90_ms": 1000 * stats[name].p90,
                    "speedup_vs_float32": base / stats[name].median,
                    "cosine_mean": float(cosine[name].mean()),
                    "cosine_min": float(cosine[name].min()),
                    "file_bytes": sizes[name],
                    "smaller_than_float32": sizes["pytorch float32"] / sizes[name],
                }
            runs[str(threads)] = {"threads": threads, "rows": rows, "verdict": verdict(rows),
                                  "load_average_before": list(load_before),
                                  "load_average_after": list(load_after)}
        profile = profile_onnx(sides[OURS].file)
    if "1" in runs:  # with every other operator free, the speed-up would grow by 1 / share
        share = profile["integer_products_ms_per_run"] / profile["run_ms_median"]
        profile["speedup_bound_vs_pytorch_float32_1_thread"] = (
            runs["1"]["rows"][OURS]["speedup_vs_float32"] / share)
    batch = minilm.tokenize(EVALUATION[:BATCH])
    result = {
        "benchmark": "bench_quant_minilm", "batch": list(batch["input_ids"].shape),
        "sentence_tokens": [int(n) for n in batch["attention_mask"].sum(1)],
        "repeats": repeats, "warmup": warmup, "settle": settle,
        "thread_counts": thread_counts,
        "netshrink_pytorch_kernel": kernels.select("cpu").name, "machine": machine(),
        "runs": runs, "profile_netshrink_onnx": profile,
    }
    report(result)
    report_profile(profile)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


def machine() -> dict:
    import onnxruntime

    flags = kernels.cpu_flags()
    return {"processor": platform.processor() or platform.machine(),
            "avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "vnni": kernels.has_vnni(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "netshrink": netshrink.__version__}


def report(result: dict) -> None:
    for run in result["runs"].values():
        load = run["load_average_before"][0], run["load_average_after"][0]
        print(f"\nMiniLM-L6 batch {result['batch'][0]}x{result['batch'][1]} tokens, "
              f"{run['threads']} thread(s), {result['repeats']} alternating repeats (settle "
              f"{result['settle']}), medians; "
              f"load average {load[0]:.1f} -> {load[1]:.1f}")
        print(f"{'side':48s} {'median ms':>10s} {'p10-p90 ms':>16s} {'speedup':>8s} "
              f"{'cosine':>7s} {'min cos':>8s} {'file MB':>8s} {'smaller':>8s}")
        for name, r in run["rows"].items():
            print(f"{name:48s} {r['median_ms']:10.1f} {r['p10_ms']:7.1f}-{r['p90_ms']:<8.1f} "
                  f"{r['speedup_vs_float32']:7.2f}x {r['cosine_mean']:7.4f} "
                  f"{r['cosine_min']:8.4f} {r['file_bytes'] / 1e6:8.2f} "
                  f"{r['smaller_than_float32']:7.2f}x")
        v = run["verdict"]
        print(f"{v['side']} vs the faster baseline ({v['faster_baseline']}): "
              f"{v['netshrink_over_faster_baseline']:.2f}x -> "
              f"{'as fast or faster' if v['as_fast_as_faster_baseline'] else 'SLOWER'}; "
              f"cosine >= 0.99: {v['cosine_at_least_0.99']}; file >= 3.9x smaller: "
              f"{v['file_at_least_3.9x_smaller']}; >= 2.7x over float32: "
              f"{v['speedup_at_least_2.7x']}")


def report_profile(profile: dict) -> None:
    top = ", ".join(f"{op} {ms:.0f}" for op, ms in
                    list(profile["operator_ms_per_run"].items())[:8])
    print(f"\n{OURS}, onnxruntime profile ({profile['threads']} thread, "
          f"{profile['runs']} runs): {profile['run_ms_median']:.0f} ms per run; ms per run by "
          f"operator: {top}")
    print(f"integer products: {profile['integer_products_ms_per_run']:.0f} ms per run "
          f"({100 * profile['integer_products_share']:.0f}% of the run)")
    bound = profile.get("speedup_bound_vs_pytorch_float32_1_thread")
    if bound is not None:
        print(f"even with every other operator free, the speed-up over PyTorch float32 (1 "
              f"thread) could not pass {bound:.2f}x on this machine")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--settle", type=int, default=1,
                        help="untimed calls of a side right before each timed one (default 1)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                        help="thread counts, one alternating run each (default: 2 1)")
    parser.add_argument("--out", default="runs/bench/quant_minilm.json")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.settle < 0 or min(args.threads) < 1:
        parser.error("--repeats and --threads must be positive, --warmup and --settle "
                     "non-negative")
    warnings.filterwarnings("ignore")
    run(args.repeats, args.warmup, args.threads, Path(args.out), args.settle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
