"""The sweep tasks run on the runner and record layer collapse instead of failing."""

import pytest

from netshrink import NetshrinkError
from netshrink.bench import TrialSpec, run_trials

TRAIN = {"batch_size": 64, "iterations": 6, "eval_every": 3}


def test_prune_task_at_init_and_after_training(tmp_path):
    trials = [
        TrialSpec("prune", "mlp", "digits", {"widths": [32]},
                  params={"method": "synflow", "compression": 10, "options": {"iterations": 5}},
                  train=TRAIN),
        TrialSpec("prune", "mlp", "digits", {"widths": [32]},
                  params={"method": "magnitude", "sparsity": 0.5, "when": "trained",
                          "finetune": {"iterations": 3}}, train=TRAIN),
    ]
    rows = run_trials(trials, tmp_path, executor="serial")
    assert all(r["status"] == "ok" for r in rows), rows
    first, second = (r["metrics"] for r in rows)
    assert first["density"] == pytest.approx(0.1, abs=1e-3)
    assert first["collapsed"] is False and first["collapsed_layers"] == ""
    assert 0 <= first["test_accuracy"] <= 1
    assert second["density"] == pytest.approx(0.5, abs=1e-3)
    assert "dense_test_accuracy" in second


def test_prune_task_records_layer_collapse(tmp_path):
    spec = TrialSpec("prune", "mlp", "digits", {"widths": [4]},
                     params={"method": "random", "compression": 1000}, train=TRAIN)
    (row,) = run_trials([spec], tmp_path, executor="serial")
    assert row["status"] == "ok"
    assert row["metrics"]["collapsed"] is True
    assert row["metrics"]["collapsed_layers"]


def test_bad_params_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(NetshrinkError, match="sparsity"):
        run_trials([TrialSpec("prune", "mlp", "digits", params={"method": "random",
                                                                 "sparsity": 2})], tmp_path)
    with pytest.raises(NetshrinkError, match="unknown prune parameter"):
        run_trials([TrialSpec("prune", "mlp", "digits", params={"method": "random",
                                                                 "sparsity": 0.5,
                                                                 "sparsty": 1})], tmp_path)
    with pytest.raises(NetshrinkError, match="lottery"):
        run_trials([TrialSpec("lottery", "mlp", "digits", params={"rounds": 2,
                                                                   "wibble": 1})], tmp_path)


def test_lottery_task_flat_metrics(tmp_path):
    spec = TrialSpec("lottery", "mlp", "digits", {"widths": [32], "init": "glorot"},
                     params={"rounds": 2, "control_rounds": [2]}, train=TRAIN)
    (row,) = run_trials([spec], tmp_path, executor="serial")
    assert row["status"] == "ok", row.get("error")
    metrics = row["metrics"]
    for key in ("r00.ticket.early_stop_test_accuracy", "r02.ticket.percent_remaining",
                "r02.reinit.test_accuracy", "r02.shuffle.early_stop_iteration"):
        assert key in metrics
    assert metrics["r02.ticket.percent_remaining"] == pytest.approx(
        metrics["r02.shuffle.percent_remaining"])


def test_deletion_task_curves(tmp_path):
    spec = TrialSpec("deletion", "mlp", "digits", {"widths": [8]},
                     params={"method": "obd", "fractions": [0.0, 0.5],
                             "retrain": {"iterations": 3}}, train=TRAIN)
    (row,) = run_trials([spec], tmp_path, executor="serial")
    assert row["status"] == "ok", row.get("error")
    m = row["metrics"]
    assert m["one-shot.0.train_loss"] == pytest.approx(m["trained.train_loss"])
    assert m["one-shot.0.predicted_train_loss"] == pytest.approx(m["trained.train_loss"])
    assert m["one-shot.0.5.train_loss"] > m["one-shot.0.train_loss"]
    assert "iterative.0.5.train_loss_after" in m
