"""Run trials, each in its own folder named by its id; finished trials are skipped.

Minimal serial version: the full runner (process pool, Ray, results table, reports) builds on it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from netshrink.bench import tasks
from netshrink.bench.spec import TrialSpec
from netshrink.fileio import atomic_write


def run_trial(spec: TrialSpec, out: Path) -> dict:
    """Run one trial unless its result exists; return its row (spec fields + metrics + timing)."""
    folder = Path(out) / "trials" / spec.trial_id
    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "spec.yaml", spec.to_yaml())
    start = time.perf_counter()
    metrics = tasks.get(spec.task)(spec, folder)
    row = {"trial_id": spec.trial_id, **spec.to_dict(), "metrics": metrics,
           "seconds": time.perf_counter() - start, "pid": os.getpid()}
    atomic_write(done, json.dumps(row, sort_keys=True, default=str))
    return row


def run_trials(trials: list[TrialSpec], out: str | os.PathLike) -> list[dict]:
    """Run `trials` serially into `out`; returns one row per trial, in order."""
    return [run_trial(spec, Path(out)) for spec in trials]
