"""Run trials, each in its own folder named by its id; finished trials are never run twice.

Layout of a sweep folder OUT:

    OUT/trials/<trial_id>/   spec.yaml, result.json (+ error.txt, the task's files): complete
    OUT/results.sqlite       the results table (one row per trial; see results.py)
    OUT/results.csv          its flat export
    OUT/events.log           start / finish / fail lines, one per event, appended

A trial runs in a staging folder `OUT/trials/.<trial_id>.*.tmp` and becomes finished in one
step, by renaming that folder to `OUT/trials/<trial_id>`: a trial's files are complete or absent.
A sweep killed at any moment leaves only staging folders, which the next run deletes.

A trial whose task raises is finished too, as a failed row (status "failed", error text, the
traceback in error.txt): a failure such as layer collapse is a result, and a re-run does not
repeat it unless asked (`retry_failed=True`, `netshrink sweep --retry-failed`). A trial lost
because its worker died (killed, out of memory) is recorded as failed in the table but leaves no
folder, so the next run retries it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import secrets
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from netshrink.bench import tasks
from netshrink.bench.spec import TrialSpec
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write

TRIALS = "trials"
RESULT = "result.json"
EVENTS = "events.log"
EXECUTORS = ("local", "ray", "serial")
CSV_EVERY_SECONDS = 5.0


def trial_folder(out: str | os.PathLike, trial_id: str) -> Path:
    return Path(out) / TRIALS / trial_id


def read_result(folder: Path) -> dict | None:
    """The row a finished trial folder holds, None when the trial has not finished."""
    path = folder / RESULT
    if not path.exists():
        return None
    try:
        row = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        row = None
    if not isinstance(row, dict) or row.get("trial_id") != folder.name:
        raise NetshrinkError(f"{path} is corrupt; delete {folder} to run that trial again")
    return row


def finished_rows(out: str | os.PathLike) -> list[dict]:
    """The rows of every finished trial folder under `out`, oldest first."""
    root = Path(out) / TRIALS
    if not root.is_dir():
        return []
    rows = [read_result(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((r for r in rows if r is not None), key=lambda r: r.get("finished", ""))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


_SWEEP_FOLDER: Path | None = None  # the sweep folder of the trial running in this process


def sweep_folder(workdir: Path) -> Path:
    """The sweep folder of the running trial, for tasks that read other trials' files
    (`sweep_folder(workdir) / "trials" / other_id`). On Ray the trial's own folder is private
    to the worker; this is still the driver's sweep folder, readable where it is shared."""
    return _SWEEP_FOLDER if _SWEEP_FOLDER is not None else Path(workdir).parent.parent


def execute(spec: TrialSpec, workdir: Path, task_module: str | None = None,
            sweep: str | os.PathLike | None = None) -> dict:
    """Run the spec's task in `workdir` and write spec.yaml and result.json there; return the row.

    An exception of the task becomes a failed row (its traceback in error.txt); `workdir` is a
    staging folder, so nothing here needs to be atomic but result.json, written last. `sweep`:
    the sweep folder `sweep_folder` reports (default: two levels above workdir).
    """
    global _SWEEP_FOLDER
    _SWEEP_FOLDER = Path(sweep).resolve() if sweep is not None else None
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.yaml").write_text(spec.to_yaml())
    (workdir / "resolved.json").write_text(json.dumps(spec.resolved(), indent=2, sort_keys=True,
                                                      default=repr))
    started, start = _now(), time.perf_counter()
    status, error, metrics = "ok", None, {}
    try:
        metrics = tasks.ensure(spec.task, task_module).run(spec, workdir)
        if not isinstance(metrics, dict):
            raise NetshrinkError(
                f"task {spec.task!r} returned {type(metrics).__name__}; a task returns a dict "
                "of metrics"
            )
        metrics = json.loads(json.dumps(metrics, default=str))
    except Exception as err:
        status, error, metrics = "failed", f"{type(err).__name__}: {err}", {}
        (workdir / "error.txt").write_text(traceback.format_exc())
    row = {"trial_id": spec.trial_id, **spec.to_dict(), "status": status, "error": error,
           "metrics": metrics, "seconds": time.perf_counter() - start, "started": started,
           "finished": _now(), "host": socket.gethostname(), "pid": os.getpid()}
    atomic_write(workdir / RESULT, json.dumps(row, sort_keys=True, default=str))
    return row


def new_staging(out: str | os.PathLike, trial_id: str) -> Path:
    """A fresh staging folder for a trial, beside its final folder (same file system)."""
    root = Path(out) / TRIALS
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / f".{trial_id}.{secrets.token_hex(4)}.tmp"
        try:
            path.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0o700
            return path
        except FileExistsError:
            continue


def commit(staging: Path, folder: Path) -> dict:
    """Rename a staging folder holding result.json to the trial's folder; return its row.

    If the trial's folder appeared meanwhile (someone else finished it), that one wins and the
    staging folder is dropped.
    """
    try:
        os.rename(staging, folder)
    except OSError:
        if not folder.exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    else:
        _fsync_dir(folder.parent)
    row = read_result(folder)
    if row is None:
        raise NetshrinkError(f"{folder} exists but holds no {RESULT}; delete it to re-run")
    return row


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_trial(spec: TrialSpec, out: str | os.PathLike, task_module: str | None = None) -> dict:
    """Run one trial in this process unless it has finished; return its row."""
    # The task's defaults are part of the trial's id: know the task before naming its folder
    # (a task that cannot be found fails below, as the trial's error).
    with contextlib.suppress(Exception):
        tasks.ensure(spec.task, task_module)
    folder = trial_folder(out, spec.trial_id)
    row = read_result(folder)
    if row is not None:
        return row
    staging = new_staging(out, spec.trial_id)
    try:
        execute(spec, staging, task_module, sweep=out)
        return commit(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def lost_row(spec: TrialSpec, error: str) -> dict:
    """The row of a trial whose worker died: failed, with no folder (a re-run retries it)."""
    return {"trial_id": spec.trial_id, **spec.to_dict(), "status": "failed", "error": error,
            "metrics": {}, "seconds": None, "started": None, "finished": _now(), "host": None,
            "pid": None}


@contextlib.contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold OUT/.sweep.lock: one sweep at a time writes a folder (freed even on SIGKILL)."""
    path = out / ".sweep.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise NetshrinkError(
                f"another sweep (pid {holder}) is writing to {out}; wait for it or use another "
                "--out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def _remove_staging(out: Path) -> int:
    """Delete staging folders left by a killed run (only call while holding the lock)."""
    removed = 0
    for path in (out / TRIALS).glob(".*.tmp"):
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


class EventLog:
    """OUT/events.log: one appended line per start, finish or failure (who ran what, when)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, event: str, trial_id: str, detail: str = "") -> None:
        with open(self.path, "a") as handle:
            handle.write(f"{_now()} {event} {trial_id} {detail}".rstrip() + "\n")


def run_trials(
    trials: Iterable[TrialSpec | dict],
    out: str | os.PathLike,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run `trials` into the sweep folder `out`; return one row per trial, in input order.

    executor: "local" (a process pool of `workers` processes, default 1, one torch thread
    each), "ray" (`address="auto"` joins a running cluster, None starts a local instance with
    `workers` CPUs; workers default: every CPU of the cluster) or "serial" (in this process).
    Finished trials are not run again; failed ones only with `retry_failed`. A row holds the
    spec fields, trial_id, status ("ok"/"failed"), error, metrics, seconds, started, finished,
    host and pid. `echo` receives one progress line per trial.
    """
    from netshrink.bench import executors
    from netshrink.bench.results import ResultsTable

    specs = [t if isinstance(t, TrialSpec) else TrialSpec.from_dict(t) for t in trials]
    for i, spec in enumerate(specs):
        try:
            tasks.check(spec)
        except NetshrinkError as err:
            raise NetshrinkError(f"trial {i} (task {spec.task}): {err}") from None
    runner = executors.create(executor, workers, address)
    unique = {spec.trial_id: spec for spec in specs}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NetshrinkError(f"out {out} exists and is not a folder")
    (out / TRIALS).mkdir(parents=True, exist_ok=True)
    say = echo or (lambda _line: None)
    with sweep_lock(out), ResultsTable(out) as table:
        _remove_staging(out)
        log = EventLog(out / EVENTS)
        rows: dict[str, dict] = {}
        todo = []
        for trial_id, spec in unique.items():
            folder = trial_folder(out, trial_id)
            row = read_result(folder)
            if row is not None and (row.get("status", "ok") == "ok" or not retry_failed):
                rows[trial_id] = row
                if table.get(trial_id) != row:
                    table.put(row)
                continue
            if row is not None:
                _retire(folder)
                log.write("retry", trial_id)
            todo.append(spec)
        say(f"{len(unique)} trials: {len(rows)} finished before, {len(todo)} to run "
            f"({runner.describe()})")
        last_csv = time.monotonic()
        try:
            for done, row in enumerate(runner.run(todo, out, lambda s: log.write(
                    "start", s.trial_id, f"task={s.task}")), start=1):
                rows[row["trial_id"]] = row
                table.put(row)
                log.write("finish" if row["status"] == "ok" else "fail", row["trial_id"],
                          row["error"] or "")
                say(f"[{done}/{len(todo)}] {_describe(row)}")
                if time.monotonic() - last_csv > CSV_EVERY_SECONDS:
                    table.export_csv()
                    last_csv = time.monotonic()
        finally:
            table.export_csv()
    return [rows[spec.trial_id] for spec in specs]


def _retire(folder: Path) -> None:
    """Remove a finished trial's folder so that it runs again (rename first: never half there)."""
    doomed = folder.with_name(f".{folder.name}.retired.tmp")
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _describe(row: dict) -> str:
    """One progress line: status, id, what it ran, a few metrics, time."""
    spec = " ".join(f"{k}={v}" for k, v in sorted(row["params"].items()))
    head = f"{row['status']:6s} {row['trial_id']} {row['task']} {row['model']} {row['data']} " \
           f"seed={row['seed']} {spec}".rstrip()
    if row["status"] != "ok":
        return f"{head}: {row['error']}"
    shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in list(row["metrics"].items())[:3]]
    seconds = f" ({row['seconds']:.1f} s)" if row.get("seconds") is not None else ""
    return f"{head} {' '.join(shown)}{seconds}"
