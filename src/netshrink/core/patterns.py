"""Layer name patterns: how every method is told which layers to leave alone or treat apart.

A pattern is a module or weight name with shell wildcards (`fnmatch`): "fc", "features.*",
"*.out_proj", "blocks.?.conv1.weight". A pattern also covers everything under the module it
names ("encoder" covers "encoder.layers.0.linear1"), so skipping a block skips its layers. A
pattern that matches nothing in the model is refused with the names it could have meant: a
typo must not silently prune or quantize the layer it meant to spare.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from netshrink.errors import NetshrinkError


def matches(name: str, pattern: str) -> bool:
    """True when `pattern` names `name` or a module that contains it."""
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def any_match(name: str, patterns: Iterable[str]) -> bool:
    return any(matches(name, p) for p in patterns)


def check_patterns(patterns: Iterable[str], names: Iterable[str], option: str) -> None:
    """Refuse patterns that match none of `names`, suggesting close ones."""
    names = list(names)
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise NetshrinkError(f"{option}: {pattern!r} is not a layer name pattern")
        if not any(matches(n, pattern) for n in names):
            close = difflib.get_close_matches(pattern, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else (
                f"; the layers are {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}")
            raise NetshrinkError(f"{option}: {pattern!r} matches no layer of the model{hint}")


def last_match(name: str, table: Mapping[str, object]) -> object:
    """The value of the last pattern of `table` that matches `name` (None if none does), so
    a general pattern written first is refined by specific ones after it."""
    found = None
    for pattern, value in table.items():
        if matches(name, pattern):
            found = value
    return found
