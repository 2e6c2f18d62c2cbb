"""DistillConfig refuses bad input with one clear error each."""

import math

import pytest

from netshrink.distill import DistillConfig
from netshrink.errors import NetshrinkError


@pytest.mark.parametrize("t", [0, -1.0, math.nan, math.inf, True, "4"])
def test_temperature_must_be_positive(t):
    with pytest.raises(NetshrinkError, match="temperature"):
        DistillConfig(temperature=t)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("alpha", 1.5, "alpha"), ("alpha", -0.1, "alpha"), ("loss", "l2", "loss"),
    ("hint_weight", -1.0, "hint_weight"), ("jitter", -2, "jitter"), ("jitter", 1.5, "jitter"),
    ("hints", [("a",)], "pair"),
])
def test_bad_fields(field, value, words):
    with pytest.raises(NetshrinkError, match=words):
        DistillConfig(**{field: value})


def test_cache_refused_with_jitter_and_with_hints():
    with pytest.raises(NetshrinkError, match="cannot be cached"):
        DistillConfig(cache_dir="c", jitter=2)
    with pytest.raises(NetshrinkError, match="inner"):
        DistillConfig(cache_dir="c", hints=[("1", "1")])


def test_round_trip_through_a_dict():
    config = DistillConfig(temperature=20, alpha=0.5, loss="mse", hints=[["a.b", "c"]])
    assert config.hints == (("a.b", "c"),)
    assert DistillConfig.from_dict(config.to_dict()) == config
    with pytest.raises(NetshrinkError, match="unknown distillation option"):
        DistillConfig.from_dict({"temprature": 2})
