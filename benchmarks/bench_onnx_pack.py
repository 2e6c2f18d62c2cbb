"""4-bit codes inside the ONNX file (netshrink.quant.onnx_pack): smaller file, same speed?

    NETSHRINK_DATA=/work/shared/data PYTHONPATH=src python benchmarks/bench_onnx_pack.py \
        [--threads 2] [--repeats 20]

all-MiniLM-L6-v2 with its Linear layers rounded to 4 bits with one scale per row (round to
nearest: only the file layout is under test here) and 3-bit embedding tables in groups of 64,
exported as netshrink's integer ONNX twice: the int8 weights as they are, and packed as 4-bit
codes that the graph unpacks (folded by onnxruntime when the session starts). Prints both file
sizes, checks the two give the same embeddings, and times both alternately in one run
(netshrink.measure.compare_latency) at batch 1 and 32 on held-out sentences of 32-64 tokens.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from netshrink import measure
from netshrink.bench.tasks import transformer as tasks
from netshrink.models import minilm
from netshrink.quant import minilm_deploy, minilm_onnx, onnx_pack


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"cpu flags: {tasks.cpu_flags()}; threads {args.threads}")
    model = tasks.weight_only(minilm.pretrained(), 4, None, "rtn", None,
                              skip=("bert.embeddings",))
    model = tasks.weight_only(model, 3, 64, "rtn", None, skip=("bert.encoder",))
    quantized = minilm_deploy.quantize_int8(model)
    folder = Path(tempfile.mkdtemp(prefix="bench-onnx-pack-"))
    plain = minilm_onnx.export(quantized, folder / "plain.onnx")
    packed = minilm_onnx.export(quantized, folder / "packed.onnx")
    names = onnx_pack.pack_narrow_weights(packed)
    print(f"int8 weights in the file: {plain.stat().st_size / 1e6:.2f} MB; 4-bit codes "
          f"({len(names)} weights packed): {packed.stat().st_size / 1e6:.2f} MB")
    runners = {"int8 weights": minilm_onnx.runner(plain, args.threads),
               "4-bit codes": minilm_onnx.runner(packed, args.threads)}
    text = tasks._corpus()
    check = minilm.tokenize(list(text.heldout[:64]))
    a, b = (np.asarray(r(**check)) for r in runners.values())
    print(f"same embeddings: {bool((a == b).all())} (max difference {np.abs(a - b).max():.2e})")
    for batch in (1, 32):
        inputs = minilm.tokenize(tasks.latency_sentences(text.heldout, 32, 64, batch))
        stats = measure.compare_latency(
            {name: (lambda r=r, x=inputs: r(**x)) for name, r in runners.items()},
            repeats=args.repeats, warmup=2, num_threads=args.threads, settle=1, isolate=True)
        plain_ms, packed_ms = (1000 * stats[name].median for name in runners)
        print(f"batch {batch}: int8 weights {plain_ms:.2f} ms, 4-bit codes {packed_ms:.2f} ms "
              f"(ratio {plain_ms / packed_ms:.3f})")
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
