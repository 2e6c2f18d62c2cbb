"""netshrink.core.patterns: layer name patterns, their coverage of submodules, and refusal of
patterns that match nothing."""

import pytest

from netshrink.core.patterns import any_match, check_patterns, last_match, matches
from netshrink.errors import NetshrinkError

NAMES = ["features.0", "features.3", "classifier.fc1", "classifier.fc2", "encoder.layers.0.linear1"]


@pytest.mark.parametrize(("name", "pattern", "expected"), [
    ("fc", "fc", True),
    ("features.0", "features.*", True),
    ("encoder.layers.0.linear1", "encoder", True),       # a module covers what is under it
    ("encoder.layers.0.linear1", "encoder.layers", True),
    ("encoderx.linear", "encoder", False),               # a prefix is not a module
    ("classifier.fc1", "fc1", False),                    # patterns anchor at the start
    ("classifier.fc1", "*.fc1", True),
    ("blocks.3.conv1.weight", "blocks.?.conv1.weight", True),
    ("blocks.13.conv1.weight", "blocks.?.conv1.weight", False),
    ("FC", "fc", False),                                 # case matters
])
def test_matches(name, pattern, expected):
    assert matches(name, pattern) is expected


def test_any_match():
    assert any_match("classifier.fc2", ["nothing", "classifier"])
    assert not any_match("classifier.fc2", [])
    assert not any_match("classifier.fc2", ["features"])


def test_check_patterns_accepts_patterns_that_match():
    check_patterns(["features", "*.fc?", "encoder"], NAMES, "skip")


def test_a_typo_is_refused_with_close_names():
    with pytest.raises(NetshrinkError, match=r"^skip: 'classifier.fc3' matches no layer of "
                                             r"the model; did you mean classifier.fc2, "
                                             r"classifier.fc1\?$"):
        check_patterns(["classifier.fc3"], NAMES, "skip")


def test_a_pattern_far_from_every_name_lists_the_layers():
    names = [f"layer{i}" for i in range(14)]
    with pytest.raises(NetshrinkError, match=r"layers: 'zzz' matches no layer of the model; "
                                             r"the layers are layer0, .* layer11 \.\.\.$"):
        check_patterns(["zzz"], names, "layers")
    with pytest.raises(NetshrinkError, match=r"the layers are a, b$"):
        check_patterns(["zzz"], ["a", "b"], "layers")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_a_pattern_that_is_not_a_string_is_refused(bad):
    with pytest.raises(NetshrinkError, match=rf"^skip: {bad!r} is not a layer name pattern"):
        check_patterns([bad], NAMES, "skip")


def test_last_match_lets_later_patterns_refine_earlier_ones():
    table = {"*": 0.5, "classifier": 0.8, "classifier.fc2": 0.1}
    assert last_match("features.0", table) == 0.5
    assert last_match("classifier.fc1", table) == 0.8
    assert last_match("classifier.fc2", table) == 0.1
    assert last_match("features.0", {"classifier": 1}) is None
