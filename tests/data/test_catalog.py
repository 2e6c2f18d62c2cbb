"""netshrink.data.catalog: the search order for IDX files, locating them, checksums, and the
download path (checked before a file lands)."""

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from netshrink import data
from netshrink.data import catalog
from netshrink.errors import DataError
from tests.conftest import needs_mnist

SYSTEM = Path("/usr/share/datasets")


def _copy_mnist(dest):
    source = catalog.locate("mnist")
    dest.mkdir(parents=True)
    for path in source.values():
        shutil.copy(path, dest / path.name)
    return source


def _fake_files(folder, stems=catalog.FILES, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        content = bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 4])
        (folder / (f"{stem}.gz" if gz else stem)).write_bytes(
            gzip.compress(content) if gz else content)
    return folder


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No data anywhere but under tmp_path: no NETSHRINK_DATA, the cache and the system folder
    (/usr/share/datasets) in tmp_path."""
    monkeypatch.delenv("NETSHRINK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real = catalog.search_path
    monkeypatch.setattr(catalog, "search_path", lambda root: [
        tmp_path / "system" if p == SYSTEM else p for p in real(root)])
    return tmp_path


@needs_mnist
def test_download_path_with_a_local_mirror(tmp_path):
    source = _copy_mnist(tmp_path / "mirror")
    folder = catalog.download("mnist", dest=tmp_path / "cache",
                              mirrors=((tmp_path / "mirror").as_uri() + "/",))
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in source.values())
    assert len(data.load("mnist", root=tmp_path / "cache").train) == 55000


@needs_mnist
def test_corrupt_download_leaves_nothing(tmp_path):
    _copy_mnist(tmp_path / "mirror")
    bad = tmp_path / "mirror" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x05"))
    with pytest.raises(DataError, match="could not download"):
        catalog.download("mnist", dest=tmp_path / "cache",
                         mirrors=((tmp_path / "mirror").as_uri() + "/",))
    left = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert all(not name.endswith(".part") for name in left)
    assert "train-labels-idx1-ubyte.gz" not in left


def test_search_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv("NETSHRINK_DATA", os.pathsep.join([str(tmp_path / "a"), "",
                                                          str(tmp_path / "b")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.cache_dir() == tmp_path / "xdg" / "netshrink" / "data"
    assert catalog.search_path(tmp_path / "root") == [
        tmp_path / "root", tmp_path / "a", tmp_path / "b", SYSTEM,
        tmp_path / "xdg" / "netshrink" / "data"]
    monkeypatch.delenv("NETSHRINK_DATA")
    assert catalog.search_path(None)[0] == SYSTEM


def test_locate_takes_the_first_folder_holding_all_four_files(no_data, monkeypatch):
    first, second = no_data / "first", no_data / "second"
    _fake_files(first / "mnist", catalog.FILES[:3])  # incomplete: skipped
    _fake_files(second / "mnist", gz=False)
    monkeypatch.setenv("NETSHRINK_DATA", f"{first}{os.pathsep}{second}")
    found = catalog.locate("mnist")
    assert list(found) == list(catalog.FILES)
    assert all(p.parent == second / "mnist" and p.suffix != ".gz" for p in found.values())


def test_an_explicit_root_may_hold_the_files_directly(no_data):
    _fake_files(no_data / "root")
    found = catalog.locate("fashion-mnist", root=no_data / "root")
    assert {p.parent for p in found.values()} == {no_data / "root"}


def test_not_found_names_every_folder_tried_and_the_install_command(no_data):
    (no_data / "root").mkdir()
    with pytest.raises(DataError) as err:
        catalog.locate("fashion-mnist", root=no_data / "root")
    message = str(err.value)
    assert message.startswith(f"data set 'fashion-mnist' not found (looked in "
                              f"{no_data / 'root' / 'fashion-mnist'}, {no_data / 'root'}, "
                              f"{no_data / 'system' / 'fashion-mnist'}, ")
    assert "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(DataError, match=r"root='.*nowhere' \(--data-root\) is not a folder"):
        catalog.locate("mnist", root=no_data / "nowhere")


def test_read_verified_refuses_a_file_that_is_not_the_official_one(tmp_path):
    path = _fake_files(tmp_path / "m") / "t10k-labels-idx1-ubyte.gz"
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    with pytest.raises(DataError, match=rf"checksum mismatch for mnist t10k-labels-idx1-ubyte "
                                        rf"\(sha256 {digest[:16]}\.\.\., expected ff7bcfd416de"):
        catalog.read_verified("mnist", path, "t10k-labels-idx1-ubyte")


def test_download_refuses_an_unknown_name_and_a_bad_mirror_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match=r"unknown data set 'cifar' for download; choose from "
                                        r"\['fashion-mnist', 'mnist'\]"):
        catalog.download("cifar", dest=tmp_path)
    mirror = _fake_files(tmp_path / "mirror")
    with pytest.raises(DataError, match=r"could not download mnist train-images-idx3-ubyte: "
                                        r".*checksum mismatch"):
        catalog.download("mnist", dest=tmp_path / "cache", mirrors=(mirror.as_uri() + "/",))
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []
    with pytest.raises(DataError, match=r"could not download mnist .*missing"):
        catalog.download("mnist", dest=tmp_path / "cache",
                         mirrors=((tmp_path / "missing").as_uri() + "/",))


def test_download_checks_a_file_already_in_place(tmp_path):
    _fake_files(tmp_path / "cache" / "mnist")
    with pytest.raises(DataError, match="checksum mismatch"):
        catalog.download("mnist", dest=tmp_path / "cache", mirrors=("file:///nowhere/",))
