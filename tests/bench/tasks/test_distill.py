"""The sweep tasks: teachers, ensembles and students as trials of netshrink.bench.run_trials."""

import pytest

from netshrink.bench import TrialSpec, run_trials
from netshrink.errors import NetshrinkError

TRAIN = {"epochs": 4, "lr": 3e-3, "batch_size": 64}


def test_teacher_ensemble_and_omitted_class_student(tmp_path):
    members = [TrialSpec("kd_train", "mlp", "digits", {"widths": [64]}, train=TRAIN,
                         params={"member": k, "jitter": 1 if k == 0 else 0}) for k in range(2)]
    rows = run_trials(members, tmp_path, executor="serial")
    assert all(r["metrics"]["test_errors"] < 100 for r in rows)  # 360 test images
    assert rows[0]["metrics"]["test_errors"] != rows[1]["metrics"]["test_errors"] or (
        rows[0]["metrics"]["final_test_accuracy"] != rows[1]["metrics"]["final_test_accuracy"])
    ids = [m.trial_id for m in members]
    ensemble = TrialSpec("kd_ensemble", "mlp", "digits", params={"members": ids})
    student = TrialSpec("kd_distill", "mlp", "digits", {"widths": [16]}, train=TRAIN,
                        params={"teachers": ids[:1], "temperature": 8.0, "omit": [3]})
    e, s = run_trials([ensemble, student], tmp_path, executor="serial")
    assert e["metrics"]["members"] == 2
    m = s["metrics"]
    assert m["teacher_cache"] == "miss"
    assert m["test_count_class3"] > 0
    assert m["corrected_test_test_errors"] <= m["test_errors"]  # the test-optimal shift
    assert (tmp_path / "teacher-cache").is_dir()
    again = TrialSpec("kd_distill", "mlp", "digits", {"widths": [16]}, train=TRAIN,
                      params={"teachers": ids[:1], "temperature": 2.0, "omit": [3]})
    assert run_trials([again], tmp_path, executor="serial")[0]["metrics"]["teacher_cache"] == "hit"


@pytest.mark.parametrize(("task", "params", "words"), [
    ("kd_distill", {"teachers": ["abc"], "temperature": 0}, "temperature"),
    ("kd_distill", {"teacher": ["abc"]}, "unknown params"),
    ("kd_distill", {"teachers": []}, "at least one"),
    ("kd_ensemble", {}, "missing params"),
    ("kd_train", {"jitter": -1}, "jitter"),
])
def test_bad_params_fail_before_anything_runs(tmp_path, task, params, words):
    with pytest.raises(NetshrinkError, match=words):
        run_trials([TrialSpec(task, "mlp", "digits", params=params)], tmp_path,
                   executor="serial")
    assert not list((tmp_path / "trials").glob("*")) if (tmp_path / "trials").exists() else True


def test_a_student_without_its_teacher_fails_clearly(tmp_path):
    spec = TrialSpec("kd_distill", "mlp", "digits", {"widths": [8]}, train=TRAIN,
                     params={"teachers": ["0123456789abcdef"]})
    row = run_trials([spec], tmp_path, executor="serial")[0]
    assert row["status"] == "failed" and "run the teachers' trials first" in row["error"]
