"""The symbol coders: exact round trips, sizes near the entropy, corrupt streams refused."""

import numpy as np
import pytest

from netshrink.pack import coding


@pytest.mark.parametrize("coder", coding.CODERS)
@pytest.mark.parametrize("alphabet", [1, 2, 3, 17, 256, 4096])
def test_round_trip_is_exact(coder, alphabet):
    rng = np.random.default_rng(alphabet)
    symbols = np.minimum(rng.geometric(0.2, 3000) - 1, alphabet - 1)
    data, model = coding.encode(symbols, alphabet, coder)
    assert np.array_equal(coding.decode(data, model, len(symbols), alphabet, coder), symbols)


def test_entropy_coders_approach_the_entropy_and_ans_beats_huffman_on_skew():
    rng = np.random.default_rng(0)
    symbols = (rng.random(20000) < 0.05).astype(np.int64)  # one bit per symbol for Huffman
    p = symbols.mean()
    entropy_bytes = len(symbols) * -(p * np.log2(p) + (1 - p) * np.log2(1 - p)) / 8
    ans, _ = coding.encode(symbols, 2, "ans")
    huffman, _ = coding.encode(symbols, 2, "huffman")
    assert len(ans) < 1.02 * entropy_bytes + 8
    assert len(huffman) == len(symbols) // 8  # Huffman cannot go below a bit a symbol
    assert len(ans) < len(huffman) / 3


def test_huffman_lengths_are_a_limited_prefix_code():
    counts = np.array([2**i for i in range(40)], dtype=np.int64)  # Fibonacci-like skew
    lengths = coding.huffman_lengths(counts)
    assert lengths.max() <= coding.MAX_HUFFMAN_BITS
    assert sum(2.0 ** -int(n) for n in lengths) <= 1.0
    symbols = np.repeat(np.arange(40), 3)
    data = coding.huffman_encode(symbols, lengths)
    assert np.array_equal(coding.huffman_decode(data, lengths, len(symbols)), symbols)


def test_binary_stream_with_per_symbol_probabilities():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, 1000)
    bits = (rng.random(1000) < p).astype(np.int64)
    data = coding.encode_binary(bits, p)
    decoder = coding.BinaryDecoder(data)
    out = np.concatenate([decoder.decode(p[:400]), decoder.decode(p[400:])])
    assert np.array_equal(out, bits)


def test_corrupt_streams_raise_value_error():
    with pytest.raises(ValueError):
        coding.decode(b"\x00" * 3, {}, 10, 16, "bits")
    with pytest.raises(ValueError):
        coding.decode(b"\x00", {"lengths": [1, 1, 1]}, 4, 3, "huffman")  # not a prefix code
    with pytest.raises(ValueError):
        coding.decode(b"\x00" * 4, {"counts": [1, 2]}, 5, 2, "ans")  # counts do not sum
