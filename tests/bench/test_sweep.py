import json
import os
from pathlib import Path

import pytest

from netshrink.bench import TrialSpec, run_trials
from netshrink.bench.results import ResultsTable, load_rows
from netshrink.bench.sweep import sweep_lock
from netshrink.errors import NetshrinkError


@pytest.fixture(autouse=True)
def sample_tasks(monkeypatch):
    """Register the sample tasks from an importable module (pool workers import it too)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import sample_tasks  # noqa: F401


def spec(x, **params):
    return TrialSpec(task="sample-double", model="mlp", data="digits", params={"x": x, **params})


def ledger_counts(path: Path) -> dict:
    counts: dict = {}
    for line in path.read_text().split() if path.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    return counts


def test_rows_come_back_in_input_order_with_files_and_table(tmp_path):
    trials = [spec(x) for x in (3, 1, 2)]
    rows = run_trials(trials, tmp_path, executor="serial")
    assert [r["metrics"]["double"] for r in rows] == [6, 2, 4]
    assert [r["trial_id"] for r in rows] == [t.trial_id for t in trials]
    for trial in trials:
        folder = tmp_path / "trials" / trial.trial_id
        assert sorted(p.name for p in folder.iterdir()) == ["note.txt", "resolved.json",
                                                             "result.json", "spec.yaml",
                                                             "sweep.txt"]
        assert json.loads((folder / "resolved.json").read_text()) == trial.resolved()
        assert Path((folder / "sweep.txt").read_text()) == tmp_path.resolve()
        assert TrialSpec.from_yaml((folder / "spec.yaml").read_text()) == trial
    assert {r["trial_id"] for r in load_rows(tmp_path)} == {t.trial_id for t in trials}
    assert (tmp_path / "results.csv").read_text().count("\n") == 4


def test_a_rerun_never_runs_a_finished_trial_twice(tmp_path):
    ledger = tmp_path / "ledger"
    first = [spec(x, ledger=str(ledger)) for x in (1, 2)]
    run_trials(first, tmp_path / "out", executor="serial")
    rows = run_trials([*first, spec(3, ledger=str(ledger))], tmp_path / "out", executor="serial")
    assert [r["metrics"]["double"] for r in rows] == [2, 4, 6]
    assert sorted(ledger_counts(ledger).values()) == [1, 1, 1]
    events = (tmp_path / "out" / "events.log").read_text().splitlines()
    assert sum(" start " in e for e in events) == 3


def test_duplicate_trials_run_once(tmp_path):
    ledger = tmp_path / "ledger"
    rows = run_trials([spec(1, ledger=str(ledger))] * 3, tmp_path / "out", executor="serial")
    assert len(rows) == 3 and list(ledger_counts(ledger).values()) == [1]


def test_a_failing_trial_is_a_failed_row_kept_until_retry_is_asked(tmp_path):
    ledger = tmp_path / "ledger"
    trials = [spec(1, ledger=str(ledger)), spec(2, fail=True, ledger=str(ledger))]
    good, bad = run_trials(trials, tmp_path, executor="serial")
    assert good["status"] == "ok" and good["error"] is None
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: collapsed at x=2"
    assert bad["metrics"] == {}
    folder = tmp_path / "trials" / bad["trial_id"]
    assert "Traceback" in (folder / "error.txt").read_text()
    run_trials(trials, tmp_path, executor="serial")
    assert ledger_counts(ledger)[bad["trial_id"]] == 1  # a failure is a result: not re-run
    _, again = run_trials(trials, tmp_path, executor="serial", retry_failed=True)
    assert ledger_counts(ledger) == {good["trial_id"]: 1, bad["trial_id"]: 2}
    assert again["status"] == "failed"
    assert [r["status"] for r in load_rows(tmp_path)] == ["ok", "failed"]


def test_the_task_check_runs_before_any_trial(tmp_path):
    ledger = tmp_path / "ledger"
    with pytest.raises(NetshrinkError, match=r"trial 1 \(task sample-double\): params.x"):
        run_trials([spec(1, ledger=str(ledger)), spec("one")], tmp_path / "out",
                   executor="serial")
    assert not ledger.exists() and not (tmp_path / "out").exists()


def test_bad_executor_arguments_are_refused(tmp_path):
    for kwargs, message in [({"executor": "slurm"}, "not one of local, ray, serial"),
                            ({"workers": 0}, "workers=0"),
                            ({"executor": "local", "address": "auto"}, "only applies")]:
        with pytest.raises(NetshrinkError, match=message):
            run_trials([spec(1)], tmp_path, **kwargs)


def test_leftover_staging_folders_are_removed_and_corrupt_results_refused(tmp_path):
    run_trials([spec(1)], tmp_path, executor="serial")
    stale = tmp_path / "trials" / ".abc.1234.tmp"
    stale.mkdir()
    (stale / "half").write_text("x")
    [row] = run_trials([spec(1)], tmp_path, executor="serial")
    assert not stale.exists()
    (tmp_path / "trials" / row["trial_id"] / "result.json").write_text('{"trial_id": ')
    with pytest.raises(NetshrinkError, match=r"result\.json is corrupt; delete"):
        run_trials([spec(1)], tmp_path, executor="serial")


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path):
    with sweep_lock(tmp_path), pytest.raises(NetshrinkError, match="another sweep"):
        run_trials([spec(1)], tmp_path, executor="serial")


def test_the_table_is_rebuilt_from_trial_folders(tmp_path):
    rows = run_trials([spec(1), spec(2)], tmp_path, executor="serial")
    (tmp_path / "results.sqlite").unlink()
    assert {r["trial_id"] for r in load_rows(tmp_path)} == {r["trial_id"] for r in rows}
    run_trials([spec(1), spec(2)], tmp_path, executor="serial")
    with ResultsTable(tmp_path) as table:
        assert [r["trial_id"] for r in table.rows()] == [r["trial_id"] for r in rows]


def test_local_pool_runs_each_trial_in_a_worker_with_one_thread(tmp_path):
    trials = [spec(x) for x in range(4)]
    rows = run_trials(trials, tmp_path, executor="local", workers=2)
    assert [r["metrics"]["double"] for r in rows] == [0, 2, 4, 6]
    assert {r["metrics"]["threads"] for r in rows} == {1}
    for row in rows:
        note = tmp_path / "trials" / row["trial_id"] / "sweep.txt"
        assert Path(note.read_text()) == tmp_path.resolve()
    pids = {r["metrics"]["pid"] for r in rows}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_a_worker_that_dies_loses_only_its_trial_which_a_rerun_retries(tmp_path):
    ledger = tmp_path / "ledger"
    trials = [spec(1, ledger=str(ledger)), spec(2, die=True, ledger=str(ledger)),
              spec(3, ledger=str(ledger))]
    rows = run_trials(trials, tmp_path / "out", executor="local", workers=1)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["error"].startswith("worker lost")
    assert not (tmp_path / "out" / "trials" / rows[1]["trial_id"]).exists()
    again = run_trials(trials, tmp_path / "out", executor="local", workers=1)
    assert [r["status"] for r in again] == ["ok", "failed", "ok"]
    assert ledger_counts(ledger) == {rows[0]["trial_id"]: 1, rows[1]["trial_id"]: 2,
                                     rows[2]["trial_id"]: 1}
