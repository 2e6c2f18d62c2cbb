"""Comparisons of methods: trial specs, tasks, sweeps (resumable), results, reports."""

from netshrink.bench.spec import TrialSpec
from netshrink.bench.sweep import run_trials
from netshrink.bench.tasks import task

__all__ = ["TrialSpec", "run_trials", "task"]
