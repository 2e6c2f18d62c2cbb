"""Comparisons of methods: trial specs, tasks, sweeps (resumable), results, reports.

    trials = netshrink.bench.load_grid("recipes/sweep-digits.yaml")
    rows = netshrink.bench.run_trials(trials, "runs/sweep", executor="local", workers=2)

See docs/bench.md for the grid format, the sweep folder and the executors.
"""

from netshrink.bench.grid import expand, load_grid
from netshrink.bench.spec import TrialSpec
from netshrink.bench.sweep import run_trial, run_trials
from netshrink.bench.tasks import task

__all__ = ["TrialSpec", "expand", "load_grid", "run_trial", "run_trials", "task"]
