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
