"""YAML for the files users hand netshrink (grids, recipes): safe, and bounded.

Safe YAML (no Python objects) that reads `1e-3` as a number (as YAML 1.2 does) and refuses
duplicate keys; a document larger than a megabyte, nested deeper than 64 levels, or using more
than 100 aliases (the "billion laughs" bomb expands a few of them into billions of nodes) is
refused before it is built.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from netshrink.errors import NetshrinkError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 100


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader with YAML 1.2 floats, no duplicate keys, and bounds on aliases/depth."""

    def __init__(self, stream: str | bytes):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise NetshrinkError(f"more than {MAX_ALIASES} YAML aliases; write the values "
                                     "out instead")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise NetshrinkError(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _mapping_without_duplicates(loader: SafeLoader, node: yaml.MappingNode, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key (a list): refused by construct_mapping below
            duplicate = False
        if duplicate:
            raise NetshrinkError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice")
        if not isinstance(key, list | dict):
            seen.add(key)
    try:
        return loader.construct_mapping(node, deep=deep)
    except yaml.constructor.ConstructorError as err:
        raise NetshrinkError(f"line {node.start_mark.line + 1}: {err.problem}") from None


SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                           _mapping_without_duplicates)


def parse_yaml(text: str, source: str = "yaml") -> Any:
    """The document in `text`; errors start with `source`."""
    if len(text) > MAX_BYTES:
        raise NetshrinkError(f"{source}: larger than {MAX_BYTES:,d} bytes")
    try:
        return yaml.load(text, Loader=SafeLoader)
    except NetshrinkError as err:
        raise NetshrinkError(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        raise NetshrinkError(f"{source} is not valid YAML: {err}") from None
    except RecursionError:
        raise NetshrinkError(f"{source}: nested too deep") from None


def read_yaml(path: str | os.PathLike) -> Any:
    """The document in the YAML file at `path` (a missing, unreadable, too large or non-UTF-8
    file is one clear error)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise NetshrinkError(f"{path}: larger than {MAX_BYTES:,d} bytes")
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise NetshrinkError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise NetshrinkError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return parse_yaml(text, str(path))
