"""Benchmark: distilling with cached teacher outputs vs running the teacher at every step.

Both sides train the same student (2x800 MLP) for the same iterations on the same data, in one
run, alternated (live, cached, live, cached, ...) so load from elsewhere hits both alike; the
medians and their ratio are printed and written to a JSON file. Two times per run: the whole
`distill` call (what a user waits: it also hashes the data, loads the cache, tests the student)
and the training steps alone (the loop's own clock). The cache is built once before the timed
runs (its cost is reported apart, and amortized over the students of a sweep); the first pair
also checks that both sides train an identical student.

    PYTHONPATH=src python benchmarks/bench_distill_cache.py --data mnist --iterations 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from netshrink import data, models
from netshrink.distill import DistillConfig, Ensemble, TeacherCache, distill
from netshrink.fileio import atomic_write
from netshrink.train import TrainConfig, seed_everything

TEACHERS = {
    "mlp-2x1200": [("mlp", {"widths": [1200, 1200], "dropout": 0.5, "input_dropout": 0.2})],
    "ensemble-5x2x1200": [("mlp", {"widths": [1200, 1200]})] * 5,
    "resnet-8": [("resnet", {"depth": 8, "width": 16})],
}


def build_teacher(splits, members):
    out = []
    for k, (name, args) in enumerate(members):
        seed_everything(k)
        out.append(models.create(name, splits.input_shape, splits.num_classes, **args).eval())
    return out


def student(splits):
    seed_everything(0)
    return models.create("mlp", splits.input_shape, splits.num_classes, widths=[800, 800])


def timed(splits, teacher, config, train):
    """(seconds of the whole call, seconds of the training steps, result, trained student)."""
    model = student(splits)
    start = time.perf_counter()
    result = distill(model, teacher, splits, config, train, progress=False)
    return time.perf_counter() - start, result.seconds, result, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=list(TEACHERS))
    parser.add_argument("--out", default="runs/bench/distill_cache.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = data.load(args.data, seed=0)
    # no evaluation inside the timed runs: they measure training steps only
    train = TrainConfig(iterations=args.iterations, eval_every=10**9, device="cpu", seed=0)
    rows = []
    print(f"{args.data}: {len(splits.train):,d} training examples, student mlp 2x800, "
          f"{args.iterations} iterations x {args.repeats} repeats, {args.threads} thread(s)")
    for name in args.teachers:
        teacher = build_teacher(splits, TEACHERS[name])
        with tempfile.TemporaryDirectory() as folder:
            live_cfg = DistillConfig(temperature=4.0)
            cached_cfg = DistillConfig(temperature=4.0, cache_dir=folder)
            start = time.perf_counter()
            TeacherCache(folder).logits(teacher[0] if len(teacher) == 1 else Ensemble(teacher),
                                        splits.train.tensors[0])
            build_seconds = time.perf_counter() - start
            live, cached, live_steps, cached_steps, same = [], [], [], [], None
            for r in range(args.repeats):
                t_live, s_live, _, m_live = timed(splits, teacher, live_cfg, train)
                t_cached, s_cached, res, m_cached = timed(splits, teacher, cached_cfg, train)
                assert res.cache == "hit"
                live.append(t_live)
                cached.append(t_cached)
                live_steps.append(s_live)
                cached_steps.append(s_cached)
                if r == 0:
                    same = all(torch.allclose(a, b, atol=1e-5) for a, b in
                               zip(m_live.state_dict().values(), m_cached.state_dict().values(),
                                   strict=True))
        med = statistics.median
        row = {"teacher": name, "live_seconds": med(live), "cached_seconds": med(cached),
               "ratio_live_over_cached": med(live) / med(cached),
               "live_step_seconds": med(live_steps), "cached_step_seconds": med(cached_steps),
               "step_ratio_live_over_cached": med(live_steps) / med(cached_steps),
               "cache_build_seconds": build_seconds, "live_runs": live, "cached_runs": cached,
               "live_step_runs": live_steps, "cached_step_runs": cached_steps,
               "identical_students": same}
        rows.append(row)
        print(f"  teacher {name:18s} whole call: live {row['live_seconds']:6.1f} s, cached "
              f"{row['cached_seconds']:6.1f} s, ratio {row['ratio_live_over_cached']:4.2f}x | "
              f"training steps: live {row['live_step_seconds']:6.1f} s, cached "
              f"{row['cached_step_seconds']:6.1f} s, ratio "
              f"{row['step_ratio_live_over_cached']:4.2f}x | cache built once in "
              f"{build_seconds:.1f} s; identical students: {same}")
    payload = {"benchmark": "distill_cache", "data": args.data, "iterations": args.iterations,
               "repeats": args.repeats, "threads": args.threads, "batch_size": train.batch_size,
               "torch": torch.__version__, "results": rows}
    atomic_write(Path(args.out), json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
