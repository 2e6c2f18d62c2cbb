"""Wall-clock time of a 16-trial sweep on 2 worker processes against 1 (the ideal ratio is 0.5).

    PYTHONPATH=src python benchmarks/bench_sweep_workers.py [--repeats 2] [--epochs 10]

The grid: 16 seeds of an MLP (512-512) trained on scikit-learn's digits, on the local executor.
Runs alternate (1, 2, 2, 1, 1, 2, ...) so that a change in machine load hits both sides; each run
starts from an empty sweep folder, so it times everything a user waits for (pool start-up, data
loading in each worker, the trials, the results table). Printed: the median wall time of each
side and their ratio, the cores each side kept busy (CPU time / wall time: near 1 and 2 when the
cores are free; when other programs hold them, the ratio says so), and the mean time of one
trial inside its worker. Results go beside this file as JSON and CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from netshrink.bench import expand, run_trials

HERE = Path(__file__).resolve().parent


def grid(epochs: float) -> dict:
    return {"task": "train", "data": "digits", "model": "mlp",
            "model_args": {"widths": [[512, 512]]},
            "train": {"epochs": epochs, "batch_size": 32}, "seed": list(range(16))}


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the pool workers)."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                      resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side")
    parser.add_argument("--epochs", type=float, default=10.0, help="epochs of each trial")
    args = parser.parse_args()
    trials = expand(grid(args.epochs))
    assert len(trials) == 16
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch:
        for repeat in range(args.repeats):
            order = (1, 2) if repeat % 2 == 0 else (2, 1)
            for workers in order:
                out = Path(scratch) / f"r{repeat}-w{workers}"
                cpu_start, start = cpu_seconds(), time.perf_counter()
                rows = run_trials(trials, out, executor="local", workers=workers)
                wall = time.perf_counter() - start
                cpu = cpu_seconds() - cpu_start
                assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
                trial_mean = statistics.fmean(r["seconds"] for r in rows)
                runs.append({"repeat": repeat, "workers": workers, "wall_seconds": wall,
                             "cpu_seconds": cpu, "cores_used": cpu / wall,
                             "trial_seconds_mean": trial_mean,
                             "test_accuracy_mean": statistics.fmean(
                                 r["metrics"]["test_accuracy"] for r in rows)})
                print(f"repeat {repeat} workers {workers}: {wall:6.1f} s wall, "
                      f"{cpu:6.1f} s CPU ({cpu / wall:.2f} cores busy), "
                      f"{trial_mean:.2f} s per trial", flush=True)
    median = {w: statistics.median(r["wall_seconds"] for r in runs if r["workers"] == w)
              for w in (1, 2)}
    ratio = median[2] / median[1]
    cores = {w: statistics.median(r["cores_used"] for r in runs if r["workers"] == w)
             for w in (1, 2)}
    summary = {
        "trials": 16, "epochs": args.epochs, "repeats": args.repeats,
        "median_wall_seconds_1_worker": median[1], "median_wall_seconds_2_workers": median[2],
        "ratio_2_over_1": ratio, "ideal_ratio": 0.5,
        "median_cores_used_1_worker": cores[1], "median_cores_used_2_workers": cores[2],
        "cpu_count": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(), "runs": runs,
    }
    (HERE / "bench_sweep_workers.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(HERE / "bench_sweep_workers.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    print(f"16 trials: 1 worker {median[1]:.1f} s, 2 workers {median[2]:.1f} s (medians of "
          f"{args.repeats}); ratio 2/1 = {ratio:.2f} (ideal 0.50); cores kept busy: "
          f"{cores[1]:.2f} vs {cores[2]:.2f}; load average before {load_before[0]:.1f}, "
          f"after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
