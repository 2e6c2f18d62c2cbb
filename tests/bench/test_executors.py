"""The same grid gives the same results on the local pool and on Ray (a local instance)."""

import sys

import pytest

from netshrink.bench import expand, run_trials
from netshrink.errors import NetshrinkError

GRID = {"task": "train", "data": "digits", "model": "mlp",
        "model_args": {"widths": [[16], [48]]}, "train": {"epochs": 2, "batch_size": 64},
        "seed": [0, 1]}
TIMINGS = {"train_seconds"}


def results(rows):
    return {r["trial_id"]: {k: v for k, v in r["metrics"].items() if k not in TIMINGS}
            for r in rows}


def test_local_and_ray_executors_give_the_same_results(tmp_path):
    pytest.importorskip("ray")
    trials = expand(GRID)
    local = run_trials(trials, tmp_path / "local", executor="local", workers=2)
    ray_rows = run_trials(trials, tmp_path / "ray", executor="ray", workers=2)
    assert all(r["status"] == "ok" for r in local + ray_rows)
    assert results(local) == results(ray_rows)
    assert len({r["metrics"]["test_accuracy"] for r in local}) > 1  # not a degenerate grid
    for row in ray_rows:  # the driver wrote the files the Ray worker made
        folder = tmp_path / "ray" / "trials" / row["trial_id"]
        assert sorted(p.name for p in folder.iterdir()) == ["log.csv", "resolved.json",
                                                             "result.json", "spec.yaml"]
    import ray

    assert not ray.is_initialized()  # the instance it started is shut down


def test_ray_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(NetshrinkError, match=r"pip install 'netshrink\[ray\]'"):
        run_trials(expand(GRID), tmp_path, executor="ray")
    assert not (tmp_path / "trials").exists()
