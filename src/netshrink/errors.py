"""The one exception type netshrink raises for bad input: arguments, files, configurations."""

from __future__ import annotations

from dataclasses import fields


class NetshrinkError(ValueError):
    """A wrong argument, file or configuration. The message names the culprit and the fix."""


class DataError(NetshrinkError):
    """A data set that is missing, corrupt or does not fit."""


class OutputError(NetshrinkError):
    """An output path that cannot be written: under a file, a folder where a file goes,
    read-only, or a full disk. The message names the path and the operating system's reason."""


def reject_unknown_fields(cls: type, values: dict, what: str) -> None:
    """Refuse keys of `values` that are not fields of dataclass `cls`, naming them and the known."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise NetshrinkError(
            f"unknown {what} {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(known))}"
        )
