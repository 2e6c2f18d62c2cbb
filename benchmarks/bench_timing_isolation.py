"""Why netshrink times sides isolated: runtimes' spinning threads slow whatever runs next.

    PYTHONPATH=src python benchmarks/bench_timing_isolation.py [--threads 2] [--repeats 40]

The same float32 product (256 x 784 x 300, LeNet-300-100's first layer at a batch of 256) on
PyTorch (F.linear) and on onnxruntime (a one-node MatMul graph). First, how long each
runtime's worker threads keep using the CPU after one call: the process's CPU time during a
0.2 s sleep right after it. Then the medians of each side timed three ways in one run: alone
(its own calls only), alternated with no untimed call between sides, alternated with one
settle call before each timed one (the protocol of netshrink's tables before 2026-12-02), and
alternated isolated
(`measure.compare_latency(isolate=True)`). Isolation is right when its medians match the
alone ones.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from netshrink import measure
from netshrink.quant import kernels

M, K, N = 256, 784, 300


def onnxruntime_matmul(weight: np.ndarray, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "W"], ["Y"])], "g",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", K])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", N])],
        [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda a: session.run(None, {"A": a})[0]


def spin_ms(fn, calls: int = 10) -> float:
    """CPU milliseconds this process used during a 0.2 s sleep right after `fn()`."""
    for _ in range(calls):
        fn()
    cpu = time.process_time()
    time.sleep(0.2)
    return 1000 * (time.process_time() - cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(M, K, generator=g), torch.randn(N, K, generator=g) * 0.05
    run_ort = onnxruntime_matmul(w.t().contiguous().numpy(), args.threads)
    x_np = x.numpy()
    sides = {"PyTorch": lambda: F.linear(x, w), "onnxruntime": lambda: run_ort(x_np)}
    print(f"CPU: {kernels.cpu_model()}; {args.threads} threads; {M} x {K} x {N} float32")
    with torch.inference_mode():
        for name, fn in sides.items():
            print(f"  {name}: threads busy {spin_ms(fn):.1f} ms of CPU in the 0.2 s after a call")
    alone = {name: measure.compare_latency({name: fn}, repeats=args.repeats, warmup=5,
                                           num_threads=args.threads)[name]
             for name, fn in sides.items()}
    bare = measure.compare_latency(sides, repeats=args.repeats, warmup=5,
                                   num_threads=args.threads)
    old = measure.compare_latency(sides, repeats=args.repeats, warmup=5,
                                  num_threads=args.threads, settle=1)
    isolated = measure.compare_latency(sides, repeats=args.repeats, warmup=5,
                                       num_threads=args.threads, settle=1, isolate=True)
    print("| side | alone | alternated | alternated, one settle call | alternated, isolated |")
    print("|---|---|---|---|---|")
    for name in sides:
        cells = [f"{1e3 * t[name].median:.2f}" for t in (alone, bare, old, isolated)]
        print(f"| {name} (ms) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
