"""The deep_compression task: dense, pruned, shared, coded, each measured from its file."""

import pytest
import torch

from netshrink.bench import TrialSpec, run_trials
from netshrink.bench.sweep import run_trial
from netshrink.errors import NetshrinkError

SETTINGS = [{"name": "paper", "density": {"1": 0.3, "3": 0.5, "5": 0.8},
             "bits": {"1": 4, "3": 4, "5": 5}, "rounds": 2},
            {"name": "sparser", "density": {"1": 0.15}, "bits": {"*": 3}, "rounds": 1}]


def test_task_measures_every_stage_from_its_file(tmp_path):
    spec = TrialSpec(task="deep_compression", model="lenet300", data="digits",
                     train={"epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu"},
                     params={"settings": SETTINGS, "retrain": {"epochs": 0.5},
                             "finetune": {"epochs": 0.5, "lr": 1e-4}})
    m = run_trial(spec, tmp_path)["metrics"]
    for tag in ("paper", "sparser"):
        sizes = [m[f"{tag}_{stage}_bytes"] for stage in ("pruned", "shared", "coded")]
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] < m["dense_bytes"] / 5
        assert m[f"{tag}_huffman_accuracy"] == m[f"{tag}_coded_accuracy"]  # same model
        assert 0.0 <= m[f"{tag}_coded_accuracy"] <= 1.0
        assert m[f"{tag}_int8_xz_bytes"] < m[f"{tag}_int8_bytes"]
    assert m["sparser_density"] < m["paper_density"] < 0.6
    assert m["sparser_coded_bytes"] < m["paper_coded_bytes"]


@pytest.fixture
def distill_calls(monkeypatch):
    """[(teacher, DistillConfig)] of every netshrink.distill call the test makes."""
    import netshrink

    calls = []
    real = netshrink.distill

    def recording(student, teacher, *args, **kwargs):
        calls.append((teacher, args[1]))
        return real(student, teacher, *args, **kwargs)

    monkeypatch.setattr(netshrink, "distill", recording)
    return calls


def test_a_distilled_setting_retrains_from_the_dense_net(tmp_path, distill_calls):
    calls = distill_calls
    setting = {**SETTINGS[1], "name": "taught", "density": {"1": 0.3, "3": 0.5, "5": 0.8},
               "distill": {"temperature": 2.0, "alpha": 0.7}}
    spec = TrialSpec(task="deep_compression", model="lenet300", data="digits",
                     train={"epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu"},
                     params={"settings": [setting], "retrain": {"epochs": 0.5},
                             "finetune": {"epochs": 0.5, "lr": 1e-4}})
    m = run_trial(spec, tmp_path)["metrics"]
    assert m["taught_density"] < 0.6 and m["taught_coded_bytes"] < m["dense_bytes"] / 5
    assert m["taught_coded_accuracy"] > 0.5  # 10 classes: far above chance
    # every pruning round and the centroid fine-tuning, taught by one frozen dense net
    assert len(calls) == setting["rounds"] + 1
    assert len({id(teacher) for teacher, _ in calls}) == 1
    assert all(config.temperature == 2.0 and config.alpha == 0.7 for _, config in calls)


def test_a_named_teacher_is_trained_and_teaches_instead_of_the_dense_net(tmp_path,
                                                                         distill_calls):
    import netshrink

    setting = {**SETTINGS[1], "name": "taught", "density": {"1": 0.3, "3": 0.5, "5": 0.8},
               "distill": {"temperature": 2.0, "alpha": 0.7}}
    spec = TrialSpec(task="deep_compression", model="lenet300", data="digits",
                     train={"epochs": 2, "batch_size": 64, "lr": 3e-3, "device": "cpu"},
                     params={"settings": [setting], "retrain": {"epochs": 0.5},
                             "finetune": {"epochs": 0.5, "lr": 1e-4},
                             "teacher": {"model": "lenet5", "epochs": 2}})
    m = run_trial(spec, tmp_path)["metrics"]
    teachers = [teacher for teacher, _ in distill_calls]
    assert 0.5 < m["teacher_accuracy"] <= 1.0  # trained: far above chance on 10 classes
    assert len(teachers) == setting["rounds"] + 1 and len({id(t) for t in teachers}) == 1
    assert not any(isinstance(module, torch.nn.Conv2d) for module in
                   netshrink.load(next(tmp_path.rglob("dense.safetensors"))).modules())
    assert any(isinstance(module, torch.nn.Conv2d) for module in teachers[0].modules())
    assert m["taught_coded_accuracy"] > 0.5


@pytest.mark.parametrize(("params", "words"), [
    ({"settings": []}, "non-empty list"),
    ({"settings": [{**SETTINGS[0], "density": {"1": 1.5}}]}, "densities in"),
    ({"settings": [{**SETTINGS[0], "bits": {"1": 12}}]}, r"layers\['1'\]=12"),
    ({"settings": [{**SETTINGS[0], "depth": 3}]}, "unknown deep_compression settings"),
    ({"settings": SETTINGS, "retrain": {"epochz": 1}}, "unknown training option"),
    ({"settings": [{**SETTINGS[0], "distill": {"temprature": 2}}]}, "temprature"),
    ({"settings": [{**SETTINGS[0], "distill": 4}]}, "mapping of DistillConfig"),
    ({"settings": SETTINGS, "teacher": {"model": "alexnet", "epochs": 1}}, "one of conv2"),
    ({"settings": SETTINGS, "teacher": {"model": "lenet5", "epochs": 0}}, "positive number"),
    ({"settings": SETTINGS, "teacher": {"model": "lenet5", "epoch": 1}}, "unknown"),
    ({"settings": SETTINGS, "teacher": "lenet5"}, "must be a mapping"),
])
def test_bad_params_are_refused_before_anything_runs(tmp_path, params, words):
    with pytest.raises(NetshrinkError, match=words):
        run_trials([TrialSpec("deep_compression", "lenet300", "digits", params=params)],
                   tmp_path)
