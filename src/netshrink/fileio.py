"""Atomic file writes: a file is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from netshrink.errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    An output that cannot be written (a folder where the file goes, a parent that is a file,
    a read-only folder, a full disk) is one OutputError naming the path and the reason, and
    leaves nothing behind.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target}: a folder is in the way of the output file; give "
                          "another file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise _output_error(target, err) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as any other
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise _output_error(target, err) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _output_error(target: Path, err: OSError) -> OutputError:
    return OutputError(f"I/O error writing {target}: {err.strerror or err}; check that its "
                       "folder exists, is writable and has free space")


def atomic_write(path: str | os.PathLike, content: str | bytes) -> None:
    """Write `content` to `path` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(tmp, mode) as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the file `source` to `target` whole or not at all."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
