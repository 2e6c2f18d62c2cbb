"""Position codes: exact for every code and tensor shape; the smallest is the one chosen."""

import numpy as np
import pytest

from netshrink.pack import positions


@pytest.mark.parametrize("coder", ["ans", "huffman", "bits"])
@pytest.mark.parametrize("shape", [(300,), (20, 30), (4, 3, 5, 5), (2, 3, 3, 3, 3)])
@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
def test_round_trip_is_exact(coder, shape, density):
    rng = np.random.default_rng(len(shape))
    keep = rng.random(shape) < density
    info, data = positions.encode(keep, coder)
    assert np.array_equal(positions.decode(info, data, shape), keep)


def test_gap_symbols_insert_fillers_for_long_gaps():
    flat = np.zeros(40, dtype=bool)
    flat[[0, 2, 30]] = True
    assert positions.gap_symbols(flat, 3).tolist() == [0, 1, 7, 7, 7, 6]  # 27 = 3 x 7 + 6


def test_adaptive_columns_win_where_pruning_emptied_whole_inputs():
    rng = np.random.default_rng(0)
    keep = rng.random((200, 400)) < 0.1
    keep[:, rng.random(400) < 0.5] = False  # half the inputs dead, as MNIST's border pixels
    info, data = positions.encode(keep, "ans")
    gaps, gap_data = positions.encode(keep, "huffman")
    live = keep[:, keep.any(0)]
    p = live.mean()
    bound = live.size * -(p * np.log2(p) + (1 - p) * np.log2(1 - p)) / 8  # knowing the dead
    assert info["code"] == "columns" and gaps["code"] == "gaps"
    assert len(data) < 1.1 * bound < 0.9 * len(gap_data)


def test_corrupt_positions_refused():
    keep = np.random.default_rng(0).random((10, 10)) < 0.2
    info, data = positions.encode(keep, "bits")
    with pytest.raises(ValueError):
        positions.decode({**info, "kept": info["kept"] + 1}, data, (10, 10))
    with pytest.raises(ValueError):
        positions.decode({**info, "code": "morse"}, data, (10, 10))
