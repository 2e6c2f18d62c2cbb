import numpy as np
import pytest

from netshrink.bench.spec import TrialSpec
from netshrink.errors import NetshrinkError


def _spec(**over):
    values = dict(task="train", model="mlp", data="digits", model_args={"widths": [32, 16]},
                  data_args={"val_size": 100}, params={"method": "magnitude", "sparsity": 0.5},
                  train={"epochs": 2, "lr": 1e-3}, seed=3)
    values.update(over)
    return TrialSpec(**values)


def test_yaml_and_json_round_trip_keep_content_and_id():
    spec = _spec()
    for back in (TrialSpec.from_yaml(spec.to_yaml()), TrialSpec.from_json(spec.to_json())):
        assert back == spec
        assert back.trial_id == spec.trial_id


def test_id_ignores_key_order():
    a = _spec(params={"method": "magnitude", "sparsity": 0.5}, train={"epochs": 2, "lr": 1e-3})
    b = _spec(params={"sparsity": 0.5, "method": "magnitude"}, train={"lr": 1e-3, "epochs": 2})
    assert a.trial_id == b.trial_id
    reordered = TrialSpec.from_dict(dict(reversed(list(a.to_dict().items()))))
    assert reordered.trial_id == a.trial_id


def test_id_is_a_stable_content_hash():
    # Pinned: ids name folders on disk, so a change here (of the hashing, or of a default of
    # TrainConfig, the mlp or the digits) would orphan every finished trial.
    assert TrialSpec(task="train", model="mlp").trial_id == "6b8f3d9ae26418ed"


def test_a_later_train_field_at_its_default_keeps_the_id():
    pinned = "6b8f3d9ae26418ed"
    assert TrialSpec(task="train", model="mlp", train={"bucket": False}).trial_id == pinned
    assert TrialSpec(task="train", model="mlp", train={"bucket": True}).trial_id != pinned


@pytest.mark.parametrize("change", [
    {"seed": 4}, {"task": "prune"}, {"model": "lenet300"}, {"data": "mnist"},
    {"params": {"method": "magnitude", "sparsity": 0.75}},
    {"train": {"epochs": 2, "lr": 1e-2}}, {"model_args": {"widths": [32, 17]}},
    {"data_args": {"val_size": 101}},
])
def test_any_content_change_changes_the_id(change):
    assert _spec(**change).trial_id != _spec().trial_id


def test_tuples_and_numpy_numbers_become_json_values():
    spec = _spec(model_args={"widths": (32, 16)}, params={"sparsity": np.float64(0.5),
                                                          "rounds": np.int64(3)},
                 seed=np.int64(3))
    assert spec.model_args == {"widths": [32, 16]}
    assert type(spec.params["rounds"]) is int and type(spec.seed) is int
    assert TrialSpec.from_yaml(spec.to_yaml()) == spec


@pytest.mark.parametrize(("values", "message"), [
    ({"task": "train"}, "missing model"),
    ({"task": "train", "model": "mlp", "sed": 1}, "unknown trial key sed"),
    ({"task": "train", "model": "mlp", "seed": "1"}, "seed must be an integer"),
    ({"task": "train", "model": "mlp", "seed": True}, "seed must be an integer"),
    ({"task": "", "model": "mlp"}, "task must be a non-empty string"),
    ({"task": "train", "model": "mlp", "params": [1]}, "params must be a mapping"),
    ({"task": "train", "model": "mlp", "params": {"p": object()}}, "params.p"),
    ({"task": "train", "model": "mlp", "params": {"p": float("nan")}}, "not a finite number"),
    ({"task": "train", "model": "mlp", "train": {1: 2}}, "must be a string"),
])
def test_bad_specs_are_refused_with_the_field_named(values, message):
    with pytest.raises(NetshrinkError, match=message):
        TrialSpec.from_dict(values)


def test_bad_yaml_and_json_are_refused():
    with pytest.raises(NetshrinkError, match="not valid YAML"):
        TrialSpec.from_yaml("task: [unclosed")
    with pytest.raises(NetshrinkError, match="not valid JSON"):
        TrialSpec.from_json("{")
    with pytest.raises(NetshrinkError, match="must be a mapping"):
        TrialSpec.from_yaml("- a\n- b\n")
