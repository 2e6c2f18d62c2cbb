"""netshrink.bench.results: the SQLite results table of a sweep folder, its CSV export, and
reading a folder's rows."""

import csv
import json
import sqlite3

import pytest

from netshrink.bench.results import SCHEMA_VERSION, ResultsTable, load_rows
from netshrink.errors import NetshrinkError


def test_a_corrupt_table_is_refused_with_the_fix(tmp_path):
    (tmp_path / "results.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(NetshrinkError, match="delete it and run the sweep again"):
        ResultsTable(tmp_path)


def test_table_rows_are_whole_json_and_replaced_in_place(tmp_path):
    with ResultsTable(tmp_path) as table:
        table.put({"trial_id": "a", "task": "t", "status": "failed", "metrics": {}})
        table.put({"trial_id": "b", "task": "t", "metrics": {"m": 1.5}})
        table.put({"trial_id": "a", "task": "t", "status": "ok", "metrics": {"m": 2.0}})
        assert [(r["trial_id"], r["metrics"]) for r in table.rows()] == [
            ("a", {"m": 2.0}), ("b", {"m": 1.5})]
    db = sqlite3.connect(tmp_path / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    statuses = dict(db.execute("SELECT trial_id, status FROM results"))
    assert statuses == {"a": "ok", "b": "ok"}
    assert json.loads(db.execute("SELECT row FROM results WHERE trial_id='b'").fetchone()[0])


def test_get_and_rows_of_a_new_table(tmp_path):
    with ResultsTable(tmp_path / "new") as table:
        assert table.rows() == [] and table.get("x") is None
        table.put({"trial_id": "x", "task": "t", "metrics": {"m": 1}})
        assert table.get("x") == {"trial_id": "x", "task": "t", "metrics": {"m": 1}}
    assert (tmp_path / "new" / "results.sqlite").is_file()


def test_a_table_of_another_version_is_refused(tmp_path):
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(NetshrinkError, match=f"has results table version {SCHEMA_VERSION + 1}; "
                                             f"this netshrink reads version {SCHEMA_VERSION}"):
        ResultsTable(tmp_path)


def test_a_row_that_is_not_json_is_refused_naming_the_trial(tmp_path):
    with ResultsTable(tmp_path) as table:
        table.put({"trial_id": "bad", "task": "t"})
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("UPDATE results SET row='{not json' WHERE trial_id='bad'")
    db.commit()
    db.close()
    with ResultsTable(tmp_path) as table, pytest.raises(
            NetshrinkError, match="the row of trial bad is not JSON; delete the file"):
        table.rows()


def test_export_csv_flattens_every_row(tmp_path):
    with ResultsTable(tmp_path) as table:
        table.put({"trial_id": "a", "task": "t", "metrics": {"accuracy": 0.5}})
        table.put({"trial_id": "b", "task": "t", "status": "failed", "metrics": {}})
        path = table.export_csv()
    assert path == tmp_path / "results.csv"
    rows = list(csv.DictReader(path.open()))
    assert [(r["trial_id"], r["status"], r["accuracy"]) for r in rows] == [
        ("a", "ok", "0.5"), ("b", "failed", "")]


def test_load_rows_from_the_table_or_the_trial_folders(tmp_path):
    with ResultsTable(tmp_path / "table") as table:
        table.put({"trial_id": "a", "task": "t"})
    assert [r["trial_id"] for r in load_rows(tmp_path / "table")] == ["a"]
    trial = tmp_path / "folders" / "trials" / "b"
    trial.mkdir(parents=True)
    (trial / "result.json").write_text(json.dumps({"trial_id": "b", "task": "t"}))
    assert [r["trial_id"] for r in load_rows(tmp_path / "folders")] == ["b"]


def test_load_rows_refuses_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(NetshrinkError, match="missing is not a folder"):
        load_rows(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NetshrinkError, match=r"empty holds no results .*run `netshrink sweep"):
        load_rows(tmp_path / "empty")
