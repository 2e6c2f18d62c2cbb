"""One template for every reproduction: options in, trials swept, tables out.

A reproduction module is only its protocol and its tables:

    settings(options) -> dict | dataclass   the resolved settings (scaled down unless --full)
    describe(options, settings) -> str      how this run differs from the paper (printed first)
    stages(settings, options) -> [[TrialSpec, ...], ...]
                                            the trials, stage by stage (a later stage may read
                                            an earlier one's files: students their teachers)
    tables(run: Run) -> str                 its CSV files and plots written into run.out; the
                                            Markdown of its tables returned

The template does the rest, the same way for all: print the note, write OUT/config.json (the
options, the settings and every trial with its id) before anything runs, sweep the trials
into OUT/sweep (resumable: a rerun runs only what is missing), hand the tables the trials that
finished ("ok"; a failed or missing trial is simply absent, so a table says n/a, never raises
KeyError), list every failed trial with its error at the end of OUT/results.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from netshrink.bench import TrialSpec, run_trials
from netshrink.fileio import atomic_write

if TYPE_CHECKING:
    from netshrink.reproduce import ReproOptions

SWEEP = "sweep"
RESULTS = "results.md"
CONFIG = "config.json"


@dataclass(frozen=True)
class Run:
    """What a reproduction's tables get: its options and settings, the note printed first, the
    rows of the trials that finished (run_trials rows, status "ok"), and the wall time."""

    options: object
    settings: object
    note: str
    rows: list[dict]
    seconds: float = 0.0

    @property
    def out(self) -> Path:
        return Path(self.options.out)

    def row(self, spec: TrialSpec) -> dict | None:
        """The finished row of `spec`, None when it failed or did not run."""
        trial_id = spec.trial_id
        return next((r for r in self.rows if r["trial_id"] == trial_id), None)


def run(name: str, protocol: ModuleType, options: ReproOptions) -> Run:
    """Run reproduction `name`, whose protocol and tables are the module `protocol`."""
    out = Path(options.out)
    settings = protocol.settings(options)
    note = protocol.describe(options, settings)
    print(note, flush=True)
    stages = [list(s) for s in protocol.stages(settings, options)]
    save_config(out, name, options, settings, [spec for stage in stages for spec in stage])
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"  [{time.perf_counter() - start:6.0f} s] {line}", flush=True)

    rows: list[dict] = []
    for stage in stages:
        rows += sweep(stage, options, echo)
    finished = [r for r in rows if r.get("status", "ok") == "ok"]
    result = Run(options, settings, note, finished, time.perf_counter() - start)
    text = protocol.tables(result).rstrip() + "\n" + failed_section(rows)
    atomic_write(out / RESULTS, text)
    print(text)
    print(f"wrote into {out}: " + ", ".join(sorted(p.name for p in out.iterdir()
                                                    if p.is_file())))
    return result


def sweep(trials: Sequence[TrialSpec], options: ReproOptions, echo: Callable[[str], None] = print
          ) -> list[dict]:
    """Run the trials into OUT/sweep (resumable); one progress line per trial."""
    if not trials:
        return []
    return run_trials(list(trials), sweep_dir(options), executor=options.executor,
                      workers=options.workers, echo=echo)


def sweep_dir(options: ReproOptions) -> Path:
    return Path(options.out) / SWEEP


def save_config(
    out: Path,
    name: str,
    options: ReproOptions,
    settings: object,
    trials: Sequence[TrialSpec],
) -> None:
    """OUT/config.json: the options, the reproduction's settings and every trial with its id."""
    if dataclasses.is_dataclass(settings):
        settings = dataclasses.asdict(settings)
    payload = {"reproduction": name, "full": options.full, "executor": options.executor,
               "workers": options.workers, "seeds": options.seeds, "data": options.data,
               "settings": settings,
               "trials": [t.to_dict() | {"trial_id": t.trial_id} for t in trials]}
    atomic_write(Path(out) / CONFIG, json.dumps(payload, indent=2, default=str) + "\n")


def failed_section(rows: list[dict]) -> str:
    """The Markdown list of failed trials ('' when none failed)."""
    failed = {r["trial_id"]: r for r in rows if r.get("status", "ok") != "ok"}
    if not failed:
        return ""
    lines = [f"\n## Failed trials ({len(failed)})\n",
             "Left out of the tables above; their tracebacks are in "
             f"{SWEEP}/trials/ID/error.txt (a trial whose worker died has none and reruns).\n"]
    for r in failed.values():
        params = [f"{k}={v}" for k, v in sorted((r.get("params") or {}).items())]
        words = [r["trial_id"], r.get("task"), r.get("model"), r.get("data"),
                 f"seed={r.get('seed')}", *params]
        lines.append(f"- {' '.join(str(w) for w in words if w)}: {r.get('error')}")
    return "\n".join(lines) + "\n"


def pm(mean: float | None, std: float | None, scale: float = 100.0, digits: int = 2) -> str:
    """'mean ± std' (× scale), or 'n/a'."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def find(table: list[dict], **key: object) -> dict:
    """The first row of `table` whose values match `key`, {} when none does."""
    for row in table:
        if all(row.get(k) == v for k, v in key.items()):
            return row
    return {}
