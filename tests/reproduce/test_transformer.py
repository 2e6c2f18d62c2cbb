"""The transformer reproduction's settings: valid trials, and a description that says how the
stages were trained."""

from pathlib import Path

import pytest

from netshrink.bench.tasks import transformer as tasks
from netshrink.reproduce import ReproOptions, transformer


@pytest.mark.parametrize("full", [False, True])
def test_every_stage_is_a_valid_trial(full):
    s = transformer.settings(ReproOptions(out=Path("x"), full=full))
    tasks.check_distill(transformer.distill_trial(s).params)
    tasks.check_prune(transformer.prune_trial(s).params)
    assert transformer.prune_trial(s).params["base"] == tasks.TEACHER_BASE
    assert transformer.measure_trial(s).params["prune"] == transformer.prune_trial(s).trial_id


def test_the_description_names_each_stage_s_learning_rate_and_hints():
    options = ReproOptions(out=Path("x"))
    s = transformer.settings(options)
    text = transformer.describe(options, s)
    prune = s["prune"]
    assert f"learning rate {prune.get('lr', tasks.TRAINING['lr']):g}" in text
    assert f"{tasks.TRAINING['lr']:g}" in text  # the reference keeps the default
    assert ("hidden-state hints" in text) == bool(prune.get("hint_weight"))
    assert "--full: 10000 steps" in text
