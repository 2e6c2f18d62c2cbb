"""Reproductions of published results: `netshrink reproduce NAME [--full]`.

Each reproduction is a module here that registers a function with `@reproduction(NAME)`. It
builds its trials, runs them on the sweep runner, and writes CSV, PNG and a Markdown table with
the paper's published figures beside ours into `options.out`. The default run is scaled down to
finish in under an hour on 2 cores and prints how; `--full` runs the paper's protocol.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netshrink.errors import NetshrinkError


@dataclass(frozen=True)
class ReproOptions:
    """How to run a reproduction. seeds=None: the reproduction's default seeds."""

    out: Path
    full: bool = False
    executor: str = "local"
    workers: int = 1
    seeds: tuple[int, ...] | None = None
    data: tuple[str, ...] | None = None


Reproduction = Callable[[ReproOptions], None]
_REPRODUCTIONS: dict[str, tuple[Reproduction, str]] = {}


def reproduction(name: str, summary: str) -> Callable[[Reproduction], Reproduction]:
    """Decorator: register a reproduction under `name` with a one-line summary."""

    def wrap(fn: Reproduction) -> Reproduction:
        _REPRODUCTIONS[name] = (fn, summary)
        return fn

    return wrap


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def names() -> dict[str, str]:
    """{name: summary} of every reproduction."""
    _discover()
    return {name: summary for name, (_, summary) in sorted(_REPRODUCTIONS.items())}


def run(name: str, options: ReproOptions) -> None:
    _discover()
    if name not in _REPRODUCTIONS:
        raise NetshrinkError(
            f"unknown reproduction {name!r}; choose from {', '.join(sorted(_REPRODUCTIONS))}"
        )
    _REPRODUCTIONS[name][0](options)
