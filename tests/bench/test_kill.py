"""A sweep killed with SIGKILL midway, started again, finishes every trial exactly once."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

GRID = """\
task: train
data: digits
model: mlp
model_args: {widths: [[32]]}
train: {epochs: 4, batch_size: 32}
seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""
SRC = Path(__file__).parents[2] / "src"


def sweep(grid: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH",
                                                                                 "")])}
    return subprocess.Popen([sys.executable, "-m", "netshrink", "sweep", str(grid), "--out",
                             str(out), "--workers", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finished(out: Path) -> set[str]:
    root = out / "trials"
    if not root.exists():
        return set()
    return {p.name for p in root.iterdir() if not p.name.startswith(".")}


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_midway_then_resume_runs_every_trial_exactly_once(tmp_path):
    grid, out = tmp_path / "grid.yaml", tmp_path / "out"
    grid.write_text(GRID)
    first = sweep(grid, out)
    deadline = time.monotonic() + 120
    while len(finished(out)) < 3:
        assert first.poll() is None, f"the sweep ended before it was killed:\n{first.stdout.read()}"
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.02)
    workers = children(first.pid)
    first.send_signal(signal.SIGKILL)
    first.wait()
    first.stdout.close()
    deadline = time.monotonic() + 20
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers), "workers outlived the killed sweep"
    done_before = finished(out)
    assert 3 <= len(done_before) < 10, "the kill did not land midway"
    events_before = (out / "events.log").read_text()

    second = sweep(grid, out)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert f"{len(done_before)} finished before" in output

    ids = finished(out)
    assert len(ids) == 10 and done_before <= ids
    assert not list((out / "trials").glob(".*")), "staging folders were left behind"
    resumed = (out / "events.log").read_text()[len(events_before):].splitlines()
    started_again = [line.split()[2] for line in resumed if line.split()[1] == "start"]
    assert sorted(started_again) == sorted(ids - done_before)  # each unfinished trial once

    for trial in ids:
        row = json.loads((out / "trials" / trial / "result.json").read_text())
        assert row["trial_id"] == trial and row["status"] == "ok"
        assert 0.0 <= row["metrics"]["test_accuracy"] <= 1.0
    with open(out / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert sorted(r["trial_id"] for r in table) == sorted(ids)
    assert all(r["status"] == "ok" and 0 <= float(r["test_accuracy"]) <= 1 for r in table)
    db = sqlite3.connect(out / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = [json.loads(text) for (text,) in db.execute("SELECT row FROM results")]
    assert sorted(r["trial_id"] for r in rows) == sorted(ids)
    seeds = sorted(r["seed"] for r in rows)
    assert seeds == list(range(10))
