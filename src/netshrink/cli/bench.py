"""The sweep layer's commands: `netshrink sweep GRID.yaml` and `netshrink report DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from netshrink.cli.options import out_dir, positive_int
from netshrink.errors import NetshrinkError


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run every trial of a YAML grid (resumable)",
        description="Expand a YAML grid (lists are choices; see docs/bench.md) into trials and run "
                    "them. Finished trials are never run again: run the same command to resume.")
    p.add_argument("grid", help="the grid file (YAML)")
    p.add_argument("--out", default=None, help="sweep folder (default runs/sweep/GRID-NAME)")
    p.add_argument("--executor", default="local", choices=["local", "ray", "serial"],
                   help="local: a process pool (default); ray: Ray tasks; serial: this process")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="trials at once (local default 1; ray default: every CPU)")
    p.add_argument("--address", default=None,
                   help="ray only: 'auto' joins the running cluster (default: start one here)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run trials that failed before again (default: keep their failure)")
    p.add_argument("--dry-run", action="store_true", help="check the grid and list its trials")
    p.add_argument("--max-trials", type=positive_int, default=10_000,
                   help="refuse grids of more trials than this (default 10,000)")
    p.set_defaults(run=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    from netshrink.bench import executors
    from netshrink.bench.grid import load_grid
    from netshrink.bench.sweep import run_trials
    from netshrink.fileio import atomic_write

    trials = load_grid(args.grid, max_trials=args.max_trials)
    executors.create(args.executor, args.workers, args.address)  # refuse bad options first
    if args.dry_run:
        for spec in trials:
            print(f"{spec.trial_id} {spec.task} {spec.model} {spec.data} seed={spec.seed} "
                  f"model_args={spec.model_args} params={spec.params} train={spec.train}")
        print(f"{len(trials)} trials; the grid is valid")
        return 0
    out = out_dir(args.out or f"runs/sweep/{Path(args.grid).stem}")
    atomic_write(out / "grid.yaml", Path(args.grid).read_text())
    rows = run_trials(trials, out, executor=args.executor, workers=args.workers,
                      address=args.address, retry_failed=args.retry_failed, echo=print)
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"results: {out / 'results.csv'}, {out / 'results.sqlite'}; "
          f"report: netshrink report {out}")
    if failed:
        print(f"{len(failed)} of {len(rows)} trials failed (errors in the table and in "
              f"{out / 'trials'}/ID/error.txt)")
        return 1
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="plots and a Markdown report of a sweep folder",
        description="Write report.md, summary.csv and plots/*.png: each metric against "
                    "compression (log axis), mean and std over seeds, one line per method.")
    p.add_argument("folder", help="a sweep folder (netshrink sweep --out)")
    p.add_argument("--x", default=None,
                   help="x axis column (default: compression, else parameters)")
    p.add_argument("--y", action="append", default=None,
                   help="a metric to plot (repeatable; default: every numeric metric)")
    p.add_argument("--group", action="append", default=None,
                   help="a column whose values are the lines (repeatable; default: the columns "
                        "that vary, except those x already shows)")
    p.add_argument("--out", default=None, help="where to write (default: the sweep folder)")
    p.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from netshrink.bench.summary import write_report

    if not Path(args.folder).is_dir():
        raise NetshrinkError(f"{args.folder} is not a folder; give the --out of a sweep")
    for path in write_report(args.folder, x=args.x, ys=args.y, group=args.group,
                             out=out_dir(args.out) if args.out else None):
        print(f"wrote {path}")
    return 0
