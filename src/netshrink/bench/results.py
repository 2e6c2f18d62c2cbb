"""The results table of a sweep folder: SQLite (the machine format) and a CSV export.

`results.sqlite` holds one row per trial (its full row as JSON, plus status and time). Each
write is one SQLite transaction, so a crash loses at most the trial being written and never
leaves half a row; WAL mode lets `netshrink report` read while a sweep writes. The table is an
index of the trial folders (`trials/<trial_id>/result.json`, the truth): a sweep re-adds a
finished trial the table misses, and a deleted table is rebuilt from the folders.
`results.csv` is a flat export (see `report.flatten`), rewritten atomically.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from netshrink.bench.report import flatten, write_csv
from netshrink.errors import NetshrinkError

SCHEMA_VERSION = 1
TABLE_FILE = "results.sqlite"
CSV_FILE = "results.csv"


class ResultsTable:
    """One sweep folder's results; use as a context manager or call close()."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / TABLE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._setup()
        except sqlite3.DatabaseError as err:
            raise NetshrinkError(
                f"{self.path} is not a readable results table ({err}); delete it and run the "
                "sweep again: it is rebuilt from the trial folders"
            ) from None

    def _setup(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise NetshrinkError(
                f"{self.path} has results table version {version}; this netshrink reads "
                f"version {SCHEMA_VERSION}"
            )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results ("
                " trial_id TEXT PRIMARY KEY, status TEXT NOT NULL, task TEXT NOT NULL,"
                " updated REAL NOT NULL, row TEXT NOT NULL)"
            )
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def put(self, row: dict) -> None:
        """Insert or replace one trial's row, in one transaction."""
        text = json.dumps(row, sort_keys=True, default=str)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO results (trial_id, status, task, updated, row) VALUES (?,?,?,?,?) "
                "ON CONFLICT(trial_id) DO UPDATE SET status=excluded.status, "
                "task=excluded.task, updated=excluded.updated, row=excluded.row",
                (row["trial_id"], row.get("status", "ok"), row["task"], time.time(), text),
            )

    def get(self, trial_id: str) -> dict | None:
        found = self._db.execute("SELECT row FROM results WHERE trial_id=?",
                                 (trial_id,)).fetchone()
        return json.loads(found[0]) if found else None

    def rows(self) -> list[dict]:
        """Every row, in the order trials were first recorded."""
        cursor = self._db.execute("SELECT trial_id, row FROM results ORDER BY rowid")
        out = []
        for trial_id, text in cursor:
            try:
                out.append(json.loads(text))
            except json.JSONDecodeError:
                raise NetshrinkError(
                    f"{self.path}: the row of trial {trial_id} is not JSON; delete the file to "
                    "rebuild it from the trial folders"
                ) from None
        return out

    def export_csv(self, path: str | os.PathLike | None = None) -> Path:
        """Write every row, flattened, to `results.csv` beside the table (atomically)."""
        return write_csv([flatten(r) for r in self.rows()], path or self.path.with_name(CSV_FILE))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_rows(folder: str | os.PathLike) -> list[dict]:
    """The rows of a sweep folder: from its table, else read from its trial folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NetshrinkError(f"{folder} is not a folder")
    if (folder / TABLE_FILE).exists():
        with ResultsTable(folder) as table:
            rows = table.rows()
    else:
        from netshrink.bench.sweep import finished_rows

        rows = finished_rows(folder)
    if not rows:
        raise NetshrinkError(
            f"{folder} holds no results (no {TABLE_FILE} rows, no trials/*/result.json); "
            "run `netshrink sweep GRID.yaml --out DIR` first"
        )
    return rows
