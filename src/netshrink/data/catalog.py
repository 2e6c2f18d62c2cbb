"""Where the IDX data sets live: the search order, their checksums and the download path.

Search order for a data set NAME: the `root` argument, the NETSHRINK_DATA environment variable,
/usr/share/datasets (Debian's `dataset-fashion-mnist` installs /usr/share/datasets/fashion-mnist),
then the user cache (~/.cache/netshrink/data). In each base folder the files are looked up in
`BASE/NAME/`; an explicit `root` may also hold them directly. Every file is checked against the
SHA-256 of its decompressed content before use, wherever it came from.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from netshrink.data import idx
from netshrink.errors import DataError

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The decompressed size of each official file (MNIST and Fashion-MNIST alike): a file that
# decompresses past it is refused while it is read, before its checksum is computed.
SIZES = {"train-images-idx3-ubyte": 16 + 60_000 * 28 * 28, "train-labels-idx1-ubyte": 8 + 60_000,
         "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28, "t10k-labels-idx1-ubyte": 8 + 10_000}


@dataclass(frozen=True)
class IdxSource:
    """One IDX data set: its checksums, mirrors and the command that installs it."""

    name: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    install_hint: str
    classes: tuple[str, ...]


SOURCES = {
    "mnist": IdxSource(
        name="mnist",
        sha256={
            "train-images-idx3-ubyte":
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte":
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte":
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte":
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
        ),
        install_hint="netshrink download mnist (needs internet), or put the four IDX files in "
        "$NETSHRINK_DATA/mnist/",
        classes=tuple(str(i) for i in range(10)),
    ),
    "fashion-mnist": IdxSource(
        name="fashion-mnist",
        sha256={
            "train-images-idx3-ubyte":
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte":
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte":
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte":
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        install_hint="sudo apt-get install dataset-fashion-mnist (Debian/Ubuntu), or "
        "netshrink download fashion-mnist (needs internet)",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "netshrink" / "data"


def search_path(root: str | os.PathLike | None) -> list[Path]:
    """The folders tried, in order, for data set files."""
    bases: list[Path] = []
    if root is not None:
        bases.append(Path(root))
    env = os.environ.get("NETSHRINK_DATA")
    if env:
        bases.extend(Path(p) for p in env.split(os.pathsep) if p)
    bases.extend([Path("/usr/share/datasets"), cache_dir()])
    return bases


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def locate(name: str, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The four files of data set `name`, from the first folder that holds all of them."""
    source = SOURCES[name]
    if root is not None and not Path(root).is_dir():
        raise DataError(f"root={str(root)!r} (--data-root) is not a folder; give the folder "
                        f"that holds {name}'s IDX files, or leave it out to search "
                        "$NETSHRINK_DATA, /usr/share/datasets and the cache")
    tried = []
    folders = []
    for i, base in enumerate(search_path(root)):
        folders.append(base / name)
        if i == 0 and root is not None:
            folders.append(base)
    for folder in folders:
        tried.append(str(folder))
        found = {stem: _find_file(folder, stem) for stem in FILES}
        if all(found.values()):
            return found  # type: ignore[return-value]
    raise DataError(
        f"data set {name!r} not found (looked in {', '.join(tried)}). Install it: "
        f"{source.install_hint}"
    )


def read_verified(name: str, path: Path, stem: str) -> bytes:
    """Decompressed content of one file, refused unless its SHA-256 is the published one."""
    content = idx.read_bytes(path, SIZES[stem])
    digest = idx.sha256(content)
    expected = SOURCES[name].sha256[stem]
    if digest != expected:
        raise DataError(
            f"{path}: checksum mismatch for {name} {stem} (sha256 {digest[:16]}..., expected "
            f"{expected[:16]}...); the file is corrupt or not the official one. Delete it and "
            f"reinstall: {SOURCES[name].install_hint}"
        )
    return content


def download(name: str, dest: Path | None = None, mirrors: tuple[str, ...] | None = None) -> Path:
    """Fetch the four files of `name` into the cache (or `dest`), checked before they land.

    Each file is downloaded to a temporary file in the destination folder, its decompressed
    SHA-256 checked, then renamed into place, so a failed or corrupt download leaves nothing.
    """
    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r} for download; choose from {sorted(SOURCES)}")
    source = SOURCES[name]
    folder = (dest or cache_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILES:
        target = folder / f"{stem}.gz"
        if target.exists():
            read_verified(name, target, stem)
            continue
        errors = []
        for mirror in mirrors or source.mirrors:
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                    mirror + f"{stem}.gz", timeout=60
                ) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                read_verified(name, tmp, stem)
                os.replace(tmp, target)
                break
            except (OSError, DataError) as err:
                errors.append(f"{mirror}: {err}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            raise DataError(f"could not download {name} {stem}: " + "; ".join(errors))
    return folder
