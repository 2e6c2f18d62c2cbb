"""trial_model: the model file of an earlier trial of the same sweep, or a clear refusal."""

import pytest

from netshrink.bench import sweep
from netshrink.bench.tasks import trial_model
from netshrink.errors import NetshrinkError


def test_finds_an_earlier_trials_model_two_levels_above_the_workdir(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "_SWEEP_FOLDER", None)  # no sweep folder given to this trial
    model = tmp_path / "trials" / "abc" / "model.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    assert trial_model(tmp_path / "trials" / ".staging", "abc", "base", "run it") == model


def test_uses_the_sweep_folder_the_running_trial_was_given(tmp_path, monkeypatch):
    shared = tmp_path / "driver"
    model = shared / "trials" / "abc" / "model.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    monkeypatch.setattr(sweep, "_SWEEP_FOLDER", shared)
    assert trial_model(tmp_path / "worker" / "private" / "t", "abc", "base", "run it") == model


def test_a_missing_model_names_the_trial_and_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "_SWEEP_FOLDER", None)
    with pytest.raises(NetshrinkError, match=r"base trial abc has no model .*run the bases"):
        trial_model(tmp_path / "trials" / "t", "abc", "base", "run the bases first")
