"""MiniLM int8, side by side: netshrink against torch.ao and onnxruntime dynamic quantization.

    PYTHONPATH=src python benchmarks/bench_quant_minilm.py [--repeats 30] [--threads 2]

One batch of 32 sentences (32-64 tokens each, netshrink.quant.sentences), all sides timed in
the same run, alternating A B C ... A B C (netshrink.measure.compare_latency), medians. Quality
is the cosine similarity of each side's embeddings to PyTorch float32's on all 72 evaluation
sentences; size is each side's saved file against the float32 safetensors file. Writes JSON.

Sides: PyTorch float32; torch.ao.quantization.quantize_dynamic per tensor and per channel
(fbgemm int8 Linear layers, embeddings left in float32); onnxruntime float32 and
onnxruntime.quantization.quantize_dynamic with per-channel int8 weights (on the float model
exported by torch.onnx); netshrink Dynamic() (int8 weights and embeddings, per-token input
scales, the device's integer kernel).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

import netshrink
from netshrink import measure
from netshrink.fileio import atomic_write
from netshrink.quant import Dynamic, kernels, minilm
from netshrink.quant.sentences import EVALUATION

BATCH = 32
BASELINES = ("torch.ao dynamic per-tensor", "torch.ao dynamic per-channel",
             "onnxruntime dynamic per-channel")


class _Exported(nn.Module):
    """The encoder with positional inputs, for torch.onnx.export."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.encoder(input_ids, attention_mask, token_type_ids)


def _torch_side(model: nn.Module):
    return lambda batch: model(**batch)


def _onnx_side(path: Path, threads: int):
    from netshrink.quant.onnx_export import onnx_session

    session = onnx_session(path, threads)

    def run(batch):
        feeds = {k: v.numpy() for k, v in batch.items()}
        return torch.from_numpy(session.run(None, feeds)[0])
    return run


def build_sides(work: Path, threads: int) -> tuple[dict, dict]:
    """{name: fn(batch) -> embeddings} and {name: file path}."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

    float_model = minilm.pretrained()
    sides, files = {}, {}
    sides["pytorch float32"] = _torch_side(float_model)
    files["pytorch float32"] = netshrink.save(float_model, work / "float32.safetensors")

    for name, qconfig in (("torch.ao dynamic per-tensor", default_dynamic_qconfig),
                          ("torch.ao dynamic per-channel", per_channel_dynamic_qconfig)):
        model = ao_quantize_dynamic(copy.deepcopy(float_model), {nn.Linear: qconfig},
                                    dtype=torch.qint8)
        sides[name] = _torch_side(model)
        files[name] = work / f"{name.replace(' ', '_')}.pt"
        torch.save(model.state_dict(), files[name])  # size only; never loaded

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
    sides["onnxruntime float32"] = _onnx_side(onnx_float, threads)
    files["onnxruntime float32"] = onnx_float
    sides["onnxruntime dynamic per-channel"] = _onnx_side(onnx_int8, threads)
    files["onnxruntime dynamic per-channel"] = onnx_int8

    model = netshrink.quantize_(copy.deepcopy(float_model), Dynamic())
    sides["netshrink int8"] = _torch_side(model)
    files["netshrink int8"] = netshrink.save(model, work / "netshrink_int8.safetensors")
    return sides, files


def _embed_all(fn) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(minilm.tokenize(EVALUATION[i:i + BATCH]))
                          for i in range(0, len(EVALUATION), BATCH)])


def run(repeats: int, warmup: int, threads: int, out: Path) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        sides, files = build_sides(Path(tmp), threads)
        sizes = {name: measure.file_size(path) for name, path in files.items()}
    reference = _embed_all(sides["pytorch float32"])
    cosine = {name: minilm.cosine_to(reference, _embed_all(fn)) for name, fn in sides.items()}
    batch = minilm.tokenize(EVALUATION[:BATCH])
    stats = measure.compare_latency({name: (lambda fn=fn: fn(batch)) for name, fn in
                                     sides.items()}, repeats=repeats, warmup=warmup,
                                    num_threads=threads)
    base = stats["pytorch float32"].median
    rows = {}
    for name in sides:
        rows[name] = {
            "median_ms": 1000 * stats[name].median, "p10_ms": 1000 * stats[name].p10,
            "p90_ms": 1000 * stats[name].p90, "speedup_vs_float32": base / stats[name].median,
            "cosine_mean": float(cosine[name].mean()), "cosine_min": float(cosine[name].min()),
            "file_bytes": sizes[name],
            "smaller_than_float32": sizes["pytorch float32"] / sizes[name],
        }
    fastest = min(BASELINES, key=lambda n: rows[n]["median_ms"])
    ours = rows["netshrink int8"]
    verdict = {
        "faster_baseline": fastest,
        "netshrink_over_faster_baseline": rows[fastest]["median_ms"] / ours["median_ms"],
        "as_fast_as_faster_baseline": ours["median_ms"] <= rows[fastest]["median_ms"],
        "cosine_at_least_0.99": ours["cosine_mean"] >= 0.99,
        "file_at_least_3.9x_smaller": ours["smaller_than_float32"] >= 3.9,
        "speedup_at_least_2.7x": ours["speedup_vs_float32"] >= 2.7,
    }
    tokens = batch["input_ids"].shape
    result = {
        "benchmark": "bench_quant_minilm", "batch": list(tokens),
        "sentence_tokens": [int(n) for n in batch["attention_mask"].sum(1)],
        "repeats": repeats, "warmup": warmup, "threads": threads,
        "netshrink_kernel": kernels.select("cpu").name, "machine": machine(),
        "rows": rows, "verdict": verdict,
    }
    report(result)
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
    print(f"MiniLM-L6 batch {result['batch'][0]}x{result['batch'][1]} tokens, "
          f"{result['threads']} threads, {result['repeats']} alternating repeats, medians; "
          f"netshrink kernel: {result['netshrink_kernel']}")
    print(f"{'side':34s} {'median ms':>10s} {'p10-p90 ms':>16s} {'speedup':>8s} "
          f"{'cosine':>7s} {'min cos':>8s} {'file MB':>8s} {'smaller':>8s}")
    for name, r in result["rows"].items():
        print(f"{name:34s} {r['median_ms']:10.1f} {r['p10_ms']:7.1f}-{r['p90_ms']:<8.1f} "
              f"{r['speedup_vs_float32']:7.2f}x {r['cosine_mean']:7.4f} {r['cosine_min']:8.4f} "
              f"{r['file_bytes'] / 1e6:8.2f} {r['smaller_than_float32']:7.2f}x")
    v = result["verdict"]
    print(f"netshrink int8 vs the faster baseline ({v['faster_baseline']}): "
          f"{v['netshrink_over_faster_baseline']:.2f}x -> "
          f"{'as fast or faster' if v['as_fast_as_faster_baseline'] else 'SLOWER'}; "
          f"cosine >= 0.99: {v['cosine_at_least_0.99']}; file >= 3.9x smaller: "
          f"{v['file_at_least_3.9x_smaller']}; >= 2.7x over float32: "
          f"{v['speedup_at_least_2.7x']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/quant_minilm.json")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    run(args.repeats, args.warmup, args.threads, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
