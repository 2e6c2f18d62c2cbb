"""Max pooling of uint8 activations: the forms the torch int8 runtime could emit, side by side.

    PYTHONPATH=src python benchmarks/bench_int8_maxpool.py [--threads 2] [--repeats 50]

For 2 x 2 windows that tile the input, on channels-last uint8 tensors of LeNet-5's and a
ResNet's shapes (batch 256 and 1), each form computes the same integers (checked), timed
alternately in one run (netshrink.measure.compare_latency), medians in ms:
  amax over windows   one amax over the unflattened windows (the runtime's earlier form)
  strided views       elementwise maximum of the kernel-strided views (the runtime's form
                      where windows tile the input)
  quint8 max_pool2d   PyTorch's quantized max pooling on the same memory (the runtime's form
                      for any other window)
  float max_pool2d    a round trip through float32
"""

from __future__ import annotations

import argparse
import warnings

import torch
import torch.nn.functional as F

from netshrink import measure
from netshrink.quant import kernels

FLAGS = {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni"}
SHAPES = [(256, 6, 28, 28), (256, 16, 10, 10), (256, 64, 16, 16), (1, 6, 28, 28)]


def forms(x: torch.Tensor) -> dict:
    h, w = x.shape[2:]
    return {
        "amax over windows": lambda: x.permute(0, 2, 3, 1).unflatten(2, (w // 2, 2))
        .unflatten(1, (h // 2, 2)).amax((2, 4)).permute(0, 3, 1, 2),
        "strided views": lambda: torch.maximum(
            torch.maximum(torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
                          x[:, :, 1::2, 0::2]), x[:, :, 1::2, 1::2]),
        "quint8 max_pool2d": lambda: F.max_pool2d(
            torch._make_per_tensor_quantized_tensor(x, 1.0, 0), 2).int_repr(),
        "float max_pool2d": lambda: F.max_pool2d(x.float(), 2).to(torch.uint8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
    flags = sorted(kernels.cpu_flags() & FLAGS)
    print(f"CPU flags: {' '.join(flags)}; {args.threads} threads; medians of {args.repeats}")
    print("| shape (N, C, H, W) | " + " | ".join(forms(torch.zeros(1, 1, 2, 2))) + " |")
    print("|---|" + "---|" * 4)
    torch.manual_seed(0)
    for shape in SHAPES:
        x = torch.randint(0, 256, shape, dtype=torch.uint8).contiguous(
            memory_format=torch.channels_last)
        candidates = forms(x)
        outputs = [fn() for fn in candidates.values()]
        if not all(torch.equal(outputs[0], o) for o in outputs[1:]):
            raise SystemExit(f"{shape}: the forms disagree")
        stats = measure.compare_latency(candidates, repeats=args.repeats,
                                        num_threads=args.threads)
        print(f"| {shape} | " + " | ".join(f"{1e3 * s.median:.3f}" for s in stats.values())
              + " |")


if __name__ == "__main__":
    main()
