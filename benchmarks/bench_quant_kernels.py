"""The integer GEMMs this machine offers, side by side with float32, and whether they saturate.

    PYTHONPATH=src python benchmarks/bench_quant_kernels.py [--threads 2] [--repeats 20]

For MiniLM's matrix shapes (32 sentences x 64 tokens = 2048 rows) and LeNet-300-100's at a
batch of 256, each candidate computes the same product, timed alternately (A B C ... A B C)
in one run, medians:
  float32           torch.nn.functional.linear (MKL sgemm)
  onednn            netshrink's default CPU kernel: torch.ops.onednn.qlinear_pointwise
                    (u8 x s8, int32 sums, float output with the scales and bias fused)
  fbgemm            torch.ops.quantized.linear_dynamic (what torch.ao quantize_dynamic runs)
  fbgemm static     torch.ops.quantized.linear_relu on quint8 (7-bit) inputs, quint8 out: what
                    torch.ao's static Linear and netshrink's torch program (kernels="fbgemm")
                    run
  onnxruntime       MatMulInteger (u8 x s8 -> int32) in an onnxruntime session (MLAS)
  int_mm            torch._int_mm (s8 x s8 -> int32), CUDA's integer GEMM; on CPUs without a
                    fast path it is a plain loop: timed on one shape only, with 3 runs
It then multiplies 8-bit activations (255) by 8-bit weights (127) with each kernel and reports
whether the int32 result is exact: kernels built on AVX2's vpmaddubsw saturate pairs of
products in int16, which is why netshrink gives activations 7 bits on such CPUs.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from netshrink import measure
from netshrink.fileio import atomic_write
from netshrink.quant import kernels

SHAPES = {"qkv 2048x384x1152": (2048, 384, 1152), "ffn-in 2048x384x1536": (2048, 384, 1536),
          "ffn-out 2048x1536x384": (2048, 1536, 384),
          # LeNet-300-100's first two layers at the demo's batch of 256
          "lenet300-fc1 256x784x300": (256, 784, 300), "lenet300-fc2 256x300x100": (256, 300, 100)}


def _ort_matmul_integer(k: int, n: int, weight: np.ndarray, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    a = helper.make_tensor_value_info("A", TensorProto.UINT8, ["M", k])
    y = helper.make_tensor_value_info("Y", TensorProto.INT32, ["M", n])
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "W"], ["Y"])], "g", [a],
                              [y], [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda q: session.run(None, {"A": q})[0]


def candidates(m: int, k: int, n: int, threads: int, with_int_mm: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=g)
    w = torch.randn(n, k, generator=g) * 0.05
    b = torch.randn(n, generator=g)
    w_scale = w.abs().amax(1) / 127
    w_int = torch.round(w / w_scale[:, None]).to(torch.int8)
    q = torch.randint(0, 128, (m, k), generator=g, dtype=torch.uint8)  # 7-bit activations
    out = {"float32": lambda: F.linear(x, w, b)}
    if kernels.onednn_available():
        onednn = kernels.select("cpu", "onednn")
        packed = onednn.pack_linear(w_int)
        out["onednn"] = lambda: onednn.linear(q, 64, packed, w_scale, b)
    qw = torch.quantize_per_channel(w, w_scale.double(), torch.zeros(n, dtype=torch.long), 0,
                                    torch.qint8)
    fbgemm = torch.ops.quantized.linear_prepack(qw, b)
    out["fbgemm"] = lambda: torch.ops.quantized.linear_dynamic(x, fbgemm, True)
    # static: uint8 in and out, the product netshrink's torch program runs with kernels="fbgemm"
    qx = torch._make_per_tensor_quantized_tensor(q, 1 / 64, 0)
    out["fbgemm static"] = lambda: torch.ops.quantized.linear_relu(qx, fbgemm, 0.05, 0)
    ort_run = _ort_matmul_integer(k, n, w_int.t().contiguous().numpy(), threads)
    q_np = q.numpy()
    out["onnxruntime"] = lambda: ort_run(q_np)
    if with_int_mm:
        int_mm = kernels.select("cpu", "int_mm")
        packed_mm = int_mm.pack_linear(w_int)
        out["int_mm"] = lambda: int_mm.linear(q, 64, packed_mm, w_scale, b)
    return out


def saturation(threads: int) -> dict:
    """Is u8 255 x s8 127 summed exactly? (int16 pair sums saturate at 32767.)"""
    m, k, n = 64, 256, 32
    q = torch.full((m, k), 255, dtype=torch.uint8)
    w = torch.full((n, k), 127, dtype=torch.int8)
    exact = float(k * 255 * 127)
    ones = torch.ones(n)
    result = {}
    if kernels.onednn_available():
        onednn = kernels.select("cpu", "onednn")
        got = onednn.linear(q, 0, onednn.pack_linear(w), ones, None)
        result["onednn"] = bool((got == exact).all())
    qx = torch._make_per_tensor_quantized_tensor(q, 1.0, 0)
    qw = torch._make_per_channel_quantized_tensor(w, torch.ones(n, dtype=torch.double),
                                                  torch.zeros(n, dtype=torch.long), 0)
    packed = torch.ops.quantized.linear_prepack(qw, None)
    out_scale = 2 * exact / 255  # output step wide enough to hold the exact sum
    got = torch.ops.quantized.linear(qx, packed, out_scale, 0).dequantize()
    result["fbgemm"] = bool((got - exact).abs().max() <= out_scale)
    ort_run = _ort_matmul_integer(k, n, w.t().contiguous().numpy(), threads)
    result["onnxruntime"] = bool((ort_run(q.numpy()) == exact).all())
    int_mm = kernels.select("cpu", "int_mm")
    got = int_mm.linear(q, 0, int_mm.pack_linear(w), ones, None)
    result["int_mm"] = bool((got == exact).all())
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="runs/bench/quant_kernels.json")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    flags = kernels.cpu_flags()
    print(f"CPU: {kernels.cpu_model()}; avx2={'avx2' in flags} avx512f={'avx512f' in flags} "
          f"vnni={kernels.has_vnni()}; "
          f"{args.threads} threads, {args.repeats} alternating repeats, medians")
    results = {"threads": args.threads, "repeats": args.repeats, "cpu": kernels.cpu_model(),
               "vnni": kernels.has_vnni(),
               "avx2": "avx2" in flags, "shapes": {}}
    for i, (label, (m, k, n)) in enumerate(SHAPES.items()):
        fns = candidates(m, k, n, args.threads, with_int_mm=(i == 0))
        slow = {name: fns.pop(name) for name in ("int_mm",) if name in fns}
        stats = measure.compare_latency(fns, repeats=args.repeats, warmup=3,
                                        num_threads=args.threads, settle=1,
                                        isolate=True)
        if slow:
            stats.update(measure.compare_latency(slow, repeats=3, warmup=1,
                                                 num_threads=args.threads))
        base = stats["float32"].median
        print(f"{label}:")
        rows = {}
        for name, s in stats.items():
            rows[name] = {"median_ms": 1000 * s.median, "speedup_vs_float32": base / s.median}
            print(f"  {name:12s} {1000 * s.median:9.2f} ms   {base / s.median:6.2f}x float32")
        results["shapes"][label] = rows
    results["exact_with_8bit_operands"] = saturation(args.threads)
    print("8-bit activations x 8-bit weights summed exactly: " + ", ".join(
        f"{k}={'yes' if v else 'no (int16 saturation)'}"
        for k, v in results["exact_with_8bit_operands"].items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
