"""The plain "train" task: it trains what the spec names and refuses params."""

import pytest

from netshrink.bench import TrialSpec, run_trials
from netshrink.bench.tasks.train import build, check_train
from netshrink.errors import NetshrinkError


def test_train_task_reports_accuracy_and_size(tmp_path):
    spec = TrialSpec("train", "mlp", "digits", {"widths": [8]},
                     train={"batch_size": 64, "iterations": 3}, seed=2)
    (row,) = run_trials([spec], tmp_path, executor="serial")
    assert row["status"] == "ok", row["error"]
    assert 0 <= row["metrics"]["test_accuracy"] <= 1
    assert row["metrics"]["parameters"] == 64 * 8 + 8 + 8 * 10 + 10


def test_build_seeds_the_model_and_trains_on_cpu():
    spec = TrialSpec("train", "mlp", "digits", {"widths": [8]}, seed=5)
    (_, a, config), (_, b, _) = build(spec), build(spec)
    assert config.device == "cpu" and config.seed == 5
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_params_are_refused_with_where_they_go():
    with pytest.raises(NetshrinkError, match="takes no params, got sparsity"):
        check_train({"sparsity": 0.5})
