"""Hostile data files and data: gzip bombs are refused while they are read (never inflated
whole), garbage, truncated and bit-flipped files are one DataError, roots that are not folders
are errors, and user data with bad labels or NaN is refused by name."""

import gzip
import random
import tracemalloc

import numpy as np
import pytest
import torch

from netshrink import data
from netshrink.data import catalog, idx
from netshrink.data.splits import from_tensors
from netshrink.errors import DataError

LABELS = "train-labels-idx1-ubyte"


def idx_labels(count: int = 200) -> bytes:
    rng = np.random.default_rng(0)
    return bytes([0, 0, 8, 1]) + count.to_bytes(4, "big") + bytes(rng.integers(0, 10, count,
                                                                                dtype=np.uint8))


def test_a_gzip_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb = tmp_path / f"{LABELS}.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 64_000_000, 9))  # 62 kB on disk, 64 MB inside
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="decompresses to more than the official file's"):
            idx.read_bytes(bomb, catalog.SIZES[LABELS])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, peak  # the labels file's 60 kB cap, and 1 MB chunks


def test_a_plain_file_larger_than_the_official_one_is_refused(tmp_path):
    big = tmp_path / LABELS
    big.write_bytes(b"\0" * (catalog.SIZES[LABELS] + 10))
    with pytest.raises(DataError, match="larger than the official file"):
        idx.read_bytes(big, catalog.SIZES[LABELS])


@pytest.mark.parametrize(("content", "words"), [
    (b"\x1f\x8b" + bytes(range(200)), "gzip stream is corrupt"),
    (gzip.compress(idx_labels())[:-12], "truncated|corrupt"),
    (gzip.compress(idx_labels()) + b"garbage", "trailing garbage"),
])
def test_garbage_and_truncated_gzip_is_one_data_error(tmp_path, content, words):
    path = tmp_path / "f.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=words):
        idx.read_bytes(path, 10**6)


def test_truncation_at_every_offset_of_a_gzip_idx_file_is_refused(tmp_path):
    whole = gzip.compress(idx_labels(), mtime=0)
    path = tmp_path / "f.gz"
    for end in range(1, len(whole)):
        path.write_bytes(whole[:end])
        with pytest.raises(DataError):
            idx.parse(idx.read_bytes(path, 10**6), 1, str(path))


def test_truncation_at_every_offset_of_a_plain_idx_file_is_refused():
    whole = idx_labels()
    for end in range(len(whole)):
        with pytest.raises(DataError, match=r"too short|truncated"):
            idx.parse(whole[:end], 1, "f")


def test_bit_flips_of_a_gzip_idx_file_give_the_same_labels_or_one_data_error(tmp_path):
    content = idx_labels()
    whole = gzip.compress(content, mtime=0)
    path = tmp_path / "f.gz"
    rng = random.Random(0)
    refused = 0
    for offset in range(len(whole)):
        flipped = bytearray(whole)
        flipped[offset] ^= 1 << rng.randrange(8)
        path.write_bytes(flipped)
        try:
            labels = idx.parse(idx.read_bytes(path, 10**6), 1, str(path))
        except DataError:
            refused += 1
            continue
        assert labels.tobytes() == content[8:], offset  # a flip in the gzip header's flags
    assert refused > len(whole) // 2


@pytest.mark.parametrize(("header", "words"), [
    (bytes([1, 0, 8, 1]), "wrong magic number"),
    (bytes([0, 0, 9, 1]), "wrong magic number"),
    (bytes([0, 0, 8, 3]), "has 3 dimensions, expected 1"),
])
def test_wrong_idx_headers_are_named(header, words):
    with pytest.raises(DataError, match=words):
        idx.parse(header + idx_labels()[4:], 1, "f")


def test_huge_dimensions_in_a_small_file_are_refused_without_allocating():
    content = bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") * 3 + b"\0" * 100
    with pytest.raises(DataError, match="truncated"):
        idx.parse(content, 3, "f")


def test_a_folder_of_files_that_are_not_the_official_ones_is_refused(tmp_path):
    for stem in catalog.SIZES:
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(idx_labels()))
    with pytest.raises(DataError, match="checksum mismatch for mnist"):
        data.load("mnist", root=tmp_path)


@pytest.mark.parametrize("root", ["/no/such/folder", "{file}"])
def test_a_root_that_is_not_a_folder_is_an_error_not_a_fall_back(tmp_path, root):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        data.load("mnist", root=root.format(file=tmp_path / "a-file"))


@pytest.mark.parametrize(("labels", "classes", "words"), [
    (torch.tensor([0, 1, 2, 12] * 10), 10, "label 12 is out of range for num_classes=10"),
    (torch.tensor([0, -1] * 20), None, "label -1 is not a class index"),
    (torch.tensor([0.0, 1.0] * 20), None, "labels are float32"),
    (torch.tensor([[0, 1]] * 20), None, "one class index per example"),
    (torch.tensor([0, 1] * 20), 0, "num_classes=0"),
    (torch.tensor([0, 1] * 20), True, "num_classes=True"),
])
def test_user_labels_are_checked(labels, classes, words):
    x = torch.rand(len(labels), 4)
    with pytest.raises(DataError, match=words):
        from_tensors((x, labels), num_classes=classes)


def test_inputs_and_labels_of_different_lengths_are_refused():
    with pytest.raises(DataError):
        from_tensors((torch.rand(10, 4), torch.zeros(9, dtype=torch.long)))
