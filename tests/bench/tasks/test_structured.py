"""The structured sweep tasks refuse bad parameters before a sweep runs."""

import pytest

from netshrink.bench import tasks
from netshrink.errors import NetshrinkError


def test_tasks_are_listed():
    assert {"structured_base", "structured", "structured_latency"} <= set(tasks.names())


@pytest.mark.parametrize("params, match", [
    ({"sparsity": 0.5}, "base"),
    ({"base": "x", "sparsity": 0.5, "engine": "nni"}, "engine"),
    ({"base": "x", "sparsity": 0.5, "criterion": "l3"}, "criterion"),
    ({"base": "x", "sparsity": 0.5, "ratio": 1}, "ratio"),
])
def test_prune_trial_params_are_checked(params, match):
    with pytest.raises(NetshrinkError, match=match):
        tasks.get("structured").check(params)


def test_latency_arms_are_checked():
    with pytest.raises(NetshrinkError, match="arm"):
        tasks.get("structured_latency").check({"base": "x", "sparsity": 0.5,
                                               "arms": [["netshrink", "l1"]]})


@pytest.mark.parametrize("params, match", [
    ({"base": "x", "sparsity": 0.5, "recovery": "prayer"}, "recovery='prayer'"),
    ({"base": "x", "sparsity": 0.5, "distill": {"temperature": 2.0}}, "recovery: distill"),
    ({"base": "x", "sparsity": 0.5, "recovery": "distill", "distill": {"heat": 2}}, "heat"),
    ({"base": "x", "sparsity": 0.5, "recovery": "distill", "distill": {"temperature": 0}},
     "temperature"),
])
def test_recovery_params_are_checked(params, match):
    with pytest.raises(NetshrinkError, match=match):
        tasks.get("structured").check(params)


def test_a_distill_recovery_trains_the_pruned_net_from_its_dense_base(tmp_path, monkeypatch):
    import netshrink
    from netshrink import measure
    from netshrink.bench import sweep
    from netshrink.bench.spec import TrialSpec
    from netshrink.bench.tasks import structured

    monkeypatch.setattr(sweep, "_SWEEP_FOLDER", None)
    train = {"epochs": 1.0, "batch_size": 64, "lr": 1e-2}
    base = TrialSpec("structured_base", "mlp", "digits", {"widths": [32]}, {}, {}, train, 0)
    base_dir = tmp_path / "trials" / base.trial_id
    base_dir.mkdir(parents=True)
    structured.base_task(base, base_dir)
    dense = measure.count_parameters(netshrink.load(base_dir / "model.safetensors"))
    calls = []
    real = netshrink.distill.distill

    def spy(student, teacher, *args, **kwargs):
        calls.append((measure.count_parameters(teacher), args[1].temperature))
        return real(student, teacher, *args, **kwargs)

    monkeypatch.setattr(netshrink, "distill", spy)
    for recovery in ("finetune", "distill"):
        spec = TrialSpec("structured", "mlp", "digits", {"widths": [32]}, {},
                         {"base": base.trial_id, "sparsity": 0.5, "criterion": "group_l1",
                          "recovery": recovery, "finetune": train,
                          **({"distill": {"temperature": 2.0}} if recovery == "distill"
                             else {})}, train, 0)
        work = tmp_path / "trials" / spec.trial_id
        work.mkdir(parents=True)
        metrics = structured.prune_task(spec, work)
        assert 0.0 < metrics["test_accuracy"] <= 1.0
        assert metrics["parameters_after"] < metrics["parameters_before"]
    assert calls == [(dense, 2.0)]  # only the distill trial, taught by the dense base
