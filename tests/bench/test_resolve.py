"""A trial's id is the hash of its resolved configuration: writing a default out changes
nothing, changing a value changes the id."""

import pytest

from netshrink.bench import TrialSpec
from netshrink.bench.resolve import resolve


def _id(**fields) -> str:
    return TrialSpec(**{"task": "train", "model": "mlp", "data": "digits", **fields}).trial_id


@pytest.mark.parametrize(("bare", "explicit"), [
    ({}, {"train": {"epochs": 1.0, "lr": 1e-3, "optimizer": "adam", "device": "cpu"}}),
    ({"train": {"epochs": 2}}, {"train": {"epochs": 2.0}}),
    ({}, {"model_args": {"widths": [1200, 1200], "dropout": 0.0, "init": "default"}}),
    ({}, {"data_args": {"val_size": 200}}),
    ({}, {"data_args": {"val_size": None, "root": None}}),
    ({}, {"data": "DIGITS"}),
])
def test_a_default_written_out_names_the_same_trial(bare, explicit):
    assert _id(**bare) == _id(**explicit)


@pytest.mark.parametrize("change", [
    {"train": {"epochs": 2.0}}, {"model_args": {"widths": [1200, 1201]}},
    {"data_args": {"val_size": 201}}, {"seed": 1}, {"model": "lenet300"},
])
def test_a_value_other_than_the_default_changes_the_id(change):
    assert _id(**change) != _id()


@pytest.mark.parametrize(("task", "bare", "explicit"), [
    ("prune", {"method": "random", "sparsity": 0.9},
     {"method": "random", "compression": 10, "scope": "global", "when": "init", "options": {}}),
    ("prune", {"method": "synflow", "sparsity": 0.5},
     {"method": "SynFlow", "sparsity": 0.5, "options": {"iterations": 100}}),
    ("lottery", {}, {"rounds": 18, "rate": 0.2, "controls": ["reinit", "shuffle"]}),
    ("deletion", {}, {"method": "magnitude", "fractions": [0.2, 0.4, 0.6, 0.8]}),
    ("quantization", {}, {"ptq": {"bits": 8, "observer": "mse"}, "qat_epochs": 1.0,
                          "latency_repeats": 30}),
    ("kd_train", {}, {"member": 0, "jitter": 0, "omit": []}),
    ("kd_distill", {"teachers": ["a"]}, {"teachers": ["a"], "temperature": 4, "alpha": 0.9,
                                         "loss": "kl", "cache": True}),
])
def test_each_tasks_params_resolve_with_its_defaults(task, bare, explicit):
    assert _id(task=task, params=bare) == _id(task=task, params=explicit)
    changed = {**explicit, "member": 1} if task.startswith("kd") else None
    if task == "prune":
        changed = {**explicit, "scope": "layerwise"}
    if changed is not None:
        assert _id(task=task, params=changed) != _id(task=task, params=bare)


def test_the_lottery_task_resolves_to_its_own_glorot_init():
    assert _id(task="lottery") == _id(task="lottery", model_args={"init": "glorot"})
    assert _id(task="lottery") != _id(task="lottery", model_args={"init": "default"})
    assert _id() != _id(model_args={"init": "glorot"})


def test_names_not_known_here_keep_what_was_written():
    spec = TrialSpec("someone-elses-task", "their-model", "their-data", {"a": 1},
                     {"b": 2}, {"c": 3})
    resolved = resolve(spec)
    assert resolved["params"] == {"c": 3} and resolved["model_args"] == {"a": 1}
    assert resolved["data_args"] == {"b": 2}
    assert resolved["train"]["epochs"] == 1.0 and "seed" not in resolved["train"]


def test_params_a_task_refuses_still_have_an_id():
    spec = TrialSpec("prune", "mlp", "digits", params={"method": "random", "sparsity": 2,
                                                        "options": "not a mapping"})
    assert len(spec.trial_id) == 16
    assert resolve(spec)["params"]["sparsity"] == 2
