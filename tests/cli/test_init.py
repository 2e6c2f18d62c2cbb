"""The command table: every command is there whatever was imported first, and each --help works."""

import subprocess
import sys

import pytest

from netshrink.cli import COMMANDS, build_parser, main


def _choices(parser) -> set[str]:
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices)


def test_the_parser_has_exactly_the_commands_of_the_table():
    assert _choices(build_parser()) == set(COMMANDS)
    assert _choices(build_parser()) == set(COMMANDS)  # built twice: the same


def test_importing_one_family_first_keeps_every_command():
    # The old registry filled itself on import: after `import netshrink.quant.commands`,
    # `netshrink train` was an invalid choice. Here a family module is imported first.
    code = ("import netshrink.cli.quant, netshrink.cli.prune\n"
            "from netshrink.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit as e:\n    print(e.code)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "--lr-schedule" in out.stdout and out.stdout.strip().endswith("0")


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_works(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"] if command else ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: netshrink")
    if command is None:
        assert all(name in out for name in COMMANDS)


def test_python_dash_m_runs_the_command_line():
    out = subprocess.run([sys.executable, "-m", "netshrink", "--version"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.startswith("netshrink ")
