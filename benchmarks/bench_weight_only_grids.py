"""What the weight-only grids cost all-MiniLM-L6-v2, part by part: why the final stage of
`netshrink reproduce transformer` uses 4-bit GPTQ rows and 3-bit embeddings in groups of 64.

    NETSHRINK_DATA=/work/shared/data PYTHONPATH=src python \
        benchmarks/bench_weight_only_grids.py [--sentences 500] [--threads 1]

Agreement (netshrink.quality) with the float32 model on the first --sentences held-out
sentences, and the file size, of the original model with
- only its embedding tables weight-only (round to nearest; the Linears float): 4 bits in
  groups of 128, 3 bits in groups of 128 and of 64, one group per row at 4 and 3 bits;
- only its Linear layers 4-bit (embeddings float): GPTQ with one scale per row (the grid int8
  kernels can run exactly: netshrink.quant.weight_only.integer_linear), the same with GPTQ's
  act-order (inputs rounded in order of decreasing Hessian diagonal), round to nearest the
  same, GPTQ in groups of 128 (no single integer product);
- netshrink's int8 path (minilm_deploy.quantize_int8) for reference.
GPTQ calibrates on the first 128 training sentences, as the reproduction does.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import netshrink
from netshrink import quality
from netshrink.bench.tasks import transformer as tasks
from netshrink.models import minilm
from netshrink.quant import minilm_deploy

EMBEDDINGS = [(4, 128), (3, 128), (3, 64), (4, None), (3, None)]
LINEARS = [(4, None, "gptq"), (4, None, "gptq-act-order"), (4, None, "rtn"), (4, 128, "gptq")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    text = tasks._corpus()
    sentences = list(text.heldout[:args.sentences])
    batches = tasks.calibration(list(text.train[:128]))
    model = minilm.pretrained()
    reference = tasks.encode(model, sentences)
    folder = Path(tempfile.mkdtemp(prefix="bench-grids-"))

    def report(label: str, candidate) -> None:
        figures = quality.agreement(reference, tasks.encode(candidate, sentences))
        size = netshrink.save(candidate, folder / "m.safetensors").stat().st_size
        print(f"| {label} | {size / 1e6:.2f} | {figures.cosine_mean:.4f} | "
              f"{figures.cosine_p5:.4f} | {figures.neighbours:.4f} | {figures.spearman:.4f} |")

    print(f"{len(sentences)} held-out sentences against float32\n")
    print("| weights | file MB | cosine mean | cosine p5 | top-10 overlap | Spearman |")
    print("|---|---|---|---|---|---|")
    report("int8 path (7-bit Linears, int8 embeddings)", minilm_deploy.quantize_int8(model))
    for bits, group in EMBEDDINGS:
        report(f"embeddings {bits}-bit, {'rows' if group is None else f'groups of {group}'} "
               "(Linears float)",
               tasks.weight_only(model, bits, group, "rtn", None, skip=("bert.encoder",)))
    for bits, group, rounding in LINEARS:
        order = rounding == "gptq-act-order"
        report(f"Linears {bits}-bit {rounding}, "
               f"{'rows' if group is None else f'groups of {group}'} (embeddings float)",
               tasks.weight_only(model, bits, group, "gptq" if order else rounding,
                                 None if rounding == "rtn" else batches,
                                 skip=("bert.embeddings",), act_order=order))
    (folder / "m.safetensors").unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
