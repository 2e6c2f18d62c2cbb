"""The `netshrink` command line. Each command is a small function; errors are one clear line.

The commands are listed in COMMANDS, one line each, by family: foundation (models, train,
info, download, demo, reproduce), bench (sweep, report), prune, quant, distill. Each family
module builds its commands on the public API of the packages below it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from netshrink.cli import bench, distill, foundation, prune, quant, recipes
from netshrink.errors import NetshrinkError

AddCommand = Callable[[argparse._SubParsersAction], None]

# name -> the function that adds its parser, in the order `netshrink --help` lists them
COMMANDS: dict[str, AddCommand] = {
    "models": foundation.add_models,
    "train": foundation.add_train,
    "info": foundation.add_info,
    "download": foundation.add_download,
    "demo": foundation.add_demo,
    "reproduce": foundation.add_reproduce,
    "sweep": bench.add_sweep,
    "report": bench.add_report,
    "prune": prune.add_prune,
    "quantize": quant.add_quantize,
    "distill": distill.add_distill,
    "run": recipes.add_run,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the fix, not a usage dump."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from netshrink import __version__

    parser = _Parser(prog="netshrink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"netshrink {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NetshrinkError as err:
        print(f"netshrink {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file the command reads or writes: the path and the reason
        where = f" on {err.filename}" if err.filename else ""
        print(f"netshrink {args.command}: error: I/O error{where}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netshrink: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
