"""Shared plumbing of the pruning reproductions (obd, lottery, synflow): run the sweep, save the
resolved configuration, write files, format mean ± spread."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from netshrink.bench import TrialSpec, run_trials
from netshrink.fileio import atomic_write


def sweep(trials: Sequence[TrialSpec], options) -> list[dict]:
    """Run the trials on the runner into OUT/sweep (resumable); print one line per trial."""
    return run_trials(list(trials), Path(options.out) / "sweep", executor=options.executor,
                      workers=options.workers, echo=print)


def resolve_and_sweep(name: str, options, settings_for, scale_note, trials_for
                      ) -> tuple[dict, str, list[dict]]:
    """The common start of a reproduction: resolve its settings, print how they scale the paper
    down, save the resolved configuration, run the trials. Returns (settings, note, rows)."""
    settings = settings_for(options)
    note = scale_note(options, settings)
    print(note)
    trials = trials_for(settings)
    save_config(Path(options.out), name, options, settings, trials)
    return settings, note, sweep(trials, options)


def save_config(out: Path, name: str, options, settings: dict, trials: Sequence[TrialSpec]
                ) -> None:
    """The resolved configuration: options, the reproduction's settings and every trial."""
    payload = {"reproduction": name, "full": options.full, "executor": options.executor,
               "workers": options.workers, "settings": settings,
               "trials": [t.to_dict() | {"trial_id": t.trial_id} for t in trials]}
    atomic_write(Path(out) / "config.json", json.dumps(payload, indent=2, default=str) + "\n")


def failures(rows: list[dict]) -> list[str]:
    return [f"{r['trial_id']}: {r.get('error')}" for r in rows if r.get("status", "ok") != "ok"]


def pm(mean: float | None, std: float | None, scale: float = 100.0, digits: int = 2) -> str:
    """'mean ± std' (× scale), or 'n/a'."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def write_text(out: Path, name: str, text: str) -> Path:
    path = Path(out) / name
    atomic_write(path, text)
    return path
