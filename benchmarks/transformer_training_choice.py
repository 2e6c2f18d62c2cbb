"""How the pruned MiniLM student's training was chosen: on validation only.

The reproduction's earlier pruned student (BASE: the teacher's layers 0, 3 and 5, half the
heads and three quarters of the feed-forward neurons removed by taylor) is distilled for
--steps steps under each candidate change of its training: none (the tasks' defaults: cosine
to the teacher's embeddings + the last layer's attention relations, AdamW at 3e-4);
hint_weight, which adds TinyBERT's hidden-state term (every token's output of each student
layer matched by mean squared error to the teacher layer it stands for, uniform map 0->1,
1->3, 2->5); higher learning rates; the same multiply-adds per token spread over more of the
teacher's layers, each narrower (all six, or four); batches of similar length
(TrainConfig.bucket); and (candidates 9 and 10, run at 600 steps) all six layers kept with
more multiply-adds and every layer's output hinted. The candidate with the best validation
cosine (128 sentences from the training part) is chosen; the held-out test cosine is printed
beside, not used.

    PYTHONPATH=src python benchmarks/transformer_training_choice.py [--steps 200] \
        [--candidates 0 1 2] [--workers 1]

A candidate's result.json in its folder is read back instead of training it again.
Writes choices.csv and config.json into --out.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from netshrink.bench.report import write_csv
from netshrink.bench.spec import TrialSpec
from netshrink.bench.tasks import transformer as tasks
from netshrink.fileio import atomic_write
from netshrink.reproduce import ReproOptions
from netshrink.reproduce import transformer as repro

CANDIDATES = ({}, {"hint_weight": 1.0}, {"hint_weight": 10.0}, {"lr": 1e-3},
              {"lr": 1e-3, "hint_weight": 1.0}, {"lr": 3e-3},
              # the same multiply-adds per token (1.77M in the Linear layers) spent on more
              # of the teacher's layers, each narrower: all six with 3 heads and 192
              # neurons, four with 4 heads and 320 neurons
              {"lr": 3e-3, "layers": [0, 1, 2, 3, 4, 5], "heads_sparsity": 0.75,
               "ffn_sparsity": 0.875},
              {"lr": 3e-3, "layers": [0, 2, 3, 5], "heads_sparsity": 8 / 12,
               "ffn_sparsity": 1216 / 1536},
              # batches of similar length (TrainConfig.bucket): the same steps, less padding
              {"lr": 3e-3, "bucket": True},
              # more multiply-adds than the reproduction's student, all six layers kept:
              # 6 heads and 512 neurons each (4.1M per token), 8 heads and 768 (5.9M), with
              # every layer's output matched to its own teacher layer (hints)
              {"lr": 1e-3, "layers": [0, 1, 2, 3, 4, 5], "heads_sparsity": 0.5,
               "ffn_sparsity": 1024 / 1536, "hint_weight": 1.0, "bucket": True},
              {"lr": 1e-3, "layers": [0, 1, 2, 3, 4, 5], "heads_sparsity": 4 / 12,
               "ffn_sparsity": 0.5, "hint_weight": 1.0, "bucket": True},
              # candidate 10 pruned in 3 or 4 even rounds, distilled between them (half the
              # steps), the final architecture trained the other half
              {"lr": 1e-3, "layers": [0, 1, 2, 3, 4, 5], "heads_sparsity": 4 / 12,
               "ffn_sparsity": 0.5, "hint_weight": 1.0, "bucket": True, "prune_rounds": 3},
              {"lr": 1e-3, "layers": [0, 1, 2, 3, 4, 5], "heads_sparsity": 4 / 12,
               "ffn_sparsity": 0.5, "hint_weight": 1.0, "bucket": True, "prune_rounds": 4})


def _value(v) -> str:
    if isinstance(v, list):
        return "-".join(map(str, v))
    return str(v) if isinstance(v, bool) else f"{v:g}"


def name(change: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in change.items()) or \
        f"none (lr={tasks.TRAINING['lr']:g}, no hints)"


# The pruned student these candidates change: the reproduction's until 2026-12-03 (three of
# the teacher's layers, half their heads and three quarters of their neurons removed), trained
# as the tasks' defaults say. Fixed here, so that the table in docs/transformer.md stays
# reproducible whatever the reproduction now uses (candidate 10's architecture).
BASE = {"base": tasks.TEACHER_BASE, "layers": [0, 3, 5], "heads_sparsity": 0.5,
        "ffn_sparsity": 0.75, "criterion": "taylor", "lr": tasks.TRAINING["lr"]}


def candidate_spec(change: dict, steps: int, threads: int) -> TrialSpec:
    """The BASE prune trial at `steps`, with this change."""
    s = repro.settings(ReproOptions(out=Path(".")))
    params = {**BASE, "steps": steps, "threads": threads, **change}
    return TrialSpec("transformer_prune", repro.MODEL, repro.DATA, params=params,
                     seed=s["seed"])


def run_candidate(job: tuple[dict, int, int, str]) -> dict:
    change, steps, threads, folder = job
    work = Path(folder) / ("-".join(f"{k}{_value(v)}" for k, v in change.items()) or "defaults")
    done = work / "result.json"  # a candidate already trained is read back, not run again
    if done.exists():
        return json.loads(done.read_text())
    work.mkdir(parents=True, exist_ok=True)
    metrics = tasks.prune_task(candidate_spec(change, steps, threads), work)
    row = {"change": name(change), "steps": steps, "val_cosine": metrics["val_cosine"],
           "test_cosine": metrics["test_cosine"], "seconds": metrics["train_seconds"]}
    atomic_write(done, json.dumps(row) + "\n")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/transformer-training-choice")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--candidates", type=int, nargs="*",
                        default=list(range(len(CANDIDATES))),
                        help="indices into CANDIDATES (all by default)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, 2 // args.workers)
    jobs = [(CANDIDATES[i], args.steps, threads, str(out)) for i in args.candidates]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_candidate, jobs))
    best = max(rows, key=lambda r: r["val_cosine"])
    for r in rows:
        print(f"{r['change']}: validation cosine {r['val_cosine']:.4f}, "
              f"test cosine {r['test_cosine']:.4f}, {r['seconds']:.0f} s")
    print(f"chosen on validation: {best['change']}")
    write_csv(rows, out / "choices.csv")
    atomic_write(out / "config.json", json.dumps(
        {"candidates": [CANDIDATES[i] for i in args.candidates], "steps": args.steps,
         "chosen_by": "val_cosine", "chosen": best["change"],
         "prune": candidate_spec({}, args.steps, threads).params},
        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
