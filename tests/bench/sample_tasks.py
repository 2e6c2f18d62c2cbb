"""Tasks for the sweep tests. Workers import this module by name, so it sits on sys.path."""

import os
from pathlib import Path

from netshrink.bench import task
from netshrink.errors import NetshrinkError


def _check(params: dict) -> None:
    if not isinstance(params.get("x"), int):
        raise NetshrinkError("params.x must be an integer")


@task("sample-double", check=_check)
def double(spec, workdir: Path) -> dict:
    """Write a file and return 2x; appends one line per run to params['ledger'] if given."""
    if spec.params.get("ledger"):
        with open(spec.params["ledger"], "a") as handle:
            handle.write(f"{spec.trial_id}\n")
    (workdir / "note.txt").write_text(f"x={spec.params['x']}")
    if spec.params.get("fail"):
        raise RuntimeError(f"collapsed at x={spec.params['x']}")
    if spec.params.get("die"):
        os._exit(3)
    import torch

    return {"double": 2 * spec.params["x"], "pid": os.getpid(),
            "threads": torch.get_num_threads()}
