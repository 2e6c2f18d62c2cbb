"""Value checks shared by every configuration, grid, recipe and command: types, finiteness and
ranges, each refusal one NetshrinkError that names the field and what it takes.

Each check returns the value in its plain type (an int, a float, a bool, a tuple of names), so a
config stores what it checked. Booleans are never numbers here (`True` is not a batch size),
numbers are never booleans (`per_channel="no"` is refused), and NaN or infinity is never a
valid number of anything.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from netshrink.errors import NetshrinkError

SEED_LIMIT = 2**63  # seeds are int64 for torch.Generator.manual_seed


def show(value: object) -> str:
    """`value`'s repr, cut short: a message names the culprit, it does not echo a megabyte."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rule(low, high, low_open: bool, high_open: bool) -> str:
    """How a range reads in a message: "positive", ">= 0", "in [0, 1)"."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low == 0 and low_open:
        return "positive"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return "any value"


def real(value: object, name: str, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite number (not a bool) within the bounds; returned as a float."""
    rule = _rule(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NetshrinkError(f"{name}={show(value)} must be a number, {rule}")
    number = float(value)
    if not math.isfinite(number):
        raise NetshrinkError(f"{name}={show(value)} must be finite and {rule}")
    if (low is not None and (number < low or (low_open and number == low))) or \
            (high is not None and (number > high or (high_open and number == high))):
        raise NetshrinkError(f"{name}={show(value)} must be {rule}")
    return number


def integer(value: object, name: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number (not a bool, not a float) within [low, high]; returned as an int."""
    if low == 1 and high is None:
        kind = "a positive integer"
    elif low is None and high is None:
        kind = "an integer"
    else:
        kind = f"an integer {_rule(low, high, False, False)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            (low is not None and value < low) or (high is not None and value > high):
        raise NetshrinkError(f"{name}={show(value)} must be {kind}")
    return int(value)


def optional_integer(value: object, name: str, low: int | None = None, high: int | None = None
                     ) -> int | None:
    return None if value is None else integer(value, name, low, high)


def positive_integer(value: object, name: str, high: int | None = None) -> int:
    return integer(value, name, 1, high)


def seed(value: object, name: str = "seed") -> int:
    """A seed: an integer in [0, 2**63) (what torch.Generator.manual_seed takes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            not 0 <= int(value) < SEED_LIMIT:
        raise NetshrinkError(f"{name}={show(value)} must be an integer in [0, 2**63)")
    return int(value)


def boolean(value: object, name: str) -> bool:
    """True or False, and nothing else ("no", 0 and None are not booleans)."""
    if not isinstance(value, bool):
        raise NetshrinkError(f"{name}={show(value)} must be true or false")
    return value


def choice(value: object, name: str, options: Iterable[str]) -> str:
    """One of `options` (text)."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise NetshrinkError(f"{name}={show(value)} must be one of {', '.join(options)}")
    return value


def optional_choice(value: object, name: str, options: Iterable[str]) -> str | None:
    return None if value is None else choice(value, name, options)


def text(value: object, name: str) -> str:
    """Non-empty text."""
    if not isinstance(value, str) or not value:
        raise NetshrinkError(f"{name}={show(value)} must be non-empty text")
    return value


def patterns(value: object, name: str) -> tuple[str, ...]:
    """A list of layer name patterns (a lone string is refused: it is not a list of names)."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise NetshrinkError(f"{name}={show(value)} must be a list of layer name patterns")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise NetshrinkError(f"{name}: {show(item)} is not a layer name pattern")
    return items


def mapping(value: object, name: str) -> dict:
    """A mapping with text keys."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise NetshrinkError(f"{name}={show(value)} must be a mapping of names to values")
    return value
