"""The `netshrink` command line. Each command is a small function; errors are one clear line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from netshrink.errors import NetshrinkError

Command = Callable[[argparse.Namespace], int]
_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []
# Each of these modules registers its subcommands with @command when imported.
_COMMAND_MODULES = (
    "netshrink.commands",
    "netshrink.bench.commands",
    "netshrink.prune.commands",
    "netshrink.quant.commands",
    "netshrink.distill.commands",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the fix, not a usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def command(add: Callable[[argparse._SubParsersAction], None]):
    """Register a function that adds one subcommand to the parser."""
    _COMMANDS.append(add)
    return add


def parse_value(text: str):
    """A command-line value: JSON when it parses (numbers, lists, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(items: list[str] | None, option: str) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NetshrinkError(f"{option} {item!r} must look like key=value")
        out[key.replace("-", "_")] = parse_value(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    from netshrink import __version__

    parser = _Parser(prog="netshrink", description=__doc__)
    parser.add_argument("--version", action="version", version=f"netshrink {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _load_commands()
    for add in _COMMANDS:
        add(sub)
    return parser


def _load_commands() -> None:
    """Import the modules whose commands register themselves (once)."""
    if _COMMANDS:
        return
    import importlib

    for module in _COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or not module.startswith(err.name):
                raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NetshrinkError as err:
        print(f"netshrink {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netshrink: interrupted", file=sys.stderr)
        return 130


def out_dir(path: str) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NetshrinkError(f"--out {path} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


if __name__ == "__main__":
    sys.exit(main())
