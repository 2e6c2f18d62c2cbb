"""netshrink.errors: one exception family, and the refusal of unknown dataclass fields."""

from dataclasses import dataclass

import pytest

from netshrink.errors import DataError, NetshrinkError, OutputError, reject_unknown_fields


@dataclass
class Options:
    alpha: float = 1.0
    beta: int = 2


def test_every_netshrink_error_is_a_value_error():
    for cls in (NetshrinkError, DataError, OutputError):
        assert issubclass(cls, ValueError)
    assert issubclass(DataError, NetshrinkError) and issubclass(OutputError, NetshrinkError)


def test_known_fields_pass():
    reject_unknown_fields(Options, {"alpha": 3.0}, "option")
    reject_unknown_fields(Options, {}, "option")


def test_unknown_fields_are_named_sorted_with_the_known_ones():
    with pytest.raises(NetshrinkError) as err:
        reject_unknown_fields(Options, {"zeta": 1, "alpha": 2, "gamma": 3}, "widget option")
    assert str(err.value) == "unknown widget option gamma, zeta; known: alpha, beta"


def test_non_string_keys_are_named_too():
    with pytest.raises(NetshrinkError, match=r"unknown option 7; known: alpha, beta"):
        reject_unknown_fields(Options, {7: 1}, "option")
