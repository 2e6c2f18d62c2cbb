"""Every way an IDX file can be bad is refused with a clear error."""

import gzip
import struct

import numpy as np
import pytest

from netshrink.data import idx
from netshrink.errors import DataError


def make_idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_round_trip_images_and_labels():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    parsed = idx.parse(make_idx(images), 3)
    assert parsed.shape == (2, 3, 4)
    assert np.array_equal(parsed, images)


def test_gzip_and_plain_read_the_same(tmp_path):
    content = make_idx(np.array([1, 2, 3], dtype=np.uint8))
    (tmp_path / "a").write_bytes(content)
    (tmp_path / "a.gz").write_bytes(gzip.compress(content))
    assert idx.read_bytes(tmp_path / "a") == idx.read_bytes(tmp_path / "a.gz") == content


def test_wrong_magic_number():
    content = bytearray(make_idx(np.zeros((2, 2, 2), np.uint8)))
    content[2] = 0x0D  # float type code
    with pytest.raises(DataError, match="magic number"):
        idx.parse(bytes(content), 3)


def test_wrong_dimensions():
    with pytest.raises(DataError, match="dimensions"):
        idx.parse(make_idx(np.zeros((2, 2), np.uint8)), 3)


def test_truncated_data():
    content = make_idx(np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(DataError, match="truncated"):
        idx.parse(content[:-7], 3)


def test_truncated_header():
    with pytest.raises(DataError, match=r"truncated|short"):
        idx.parse(make_idx(np.zeros((4, 5, 5), np.uint8))[:9], 3)


def test_trailing_bytes():
    with pytest.raises(DataError, match="trailing"):
        idx.parse(make_idx(np.zeros(3, np.uint8)) + b"\0", 1)


def test_corrupt_gzip(tmp_path):
    blob = gzip.compress(make_idx(np.zeros(100, np.uint8)))
    (tmp_path / "x.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip"):
        idx.read_bytes(tmp_path / "x.gz")


def test_label_count_must_match_image_count():
    with pytest.raises(DataError, match="3 images but 2 labels"):
        idx.check_pair(np.zeros((3, 2, 2)), np.zeros(2, np.uint8), 10, "x")


def test_labels_out_of_range():
    with pytest.raises(DataError, match="out of range"):
        idx.check_pair(np.zeros((2, 2, 2)), np.array([1, 10], np.uint8), 10, "x")
