"""Entropy coders for streams of small integers (symbols 0..alphabet-1), and fixed-width bits.

Three coders, each a pair `encode(symbols, alphabet) -> (bytes, model)` / `decode(bytes,
model, count, alphabet) -> symbols`, where `model` is the small JSON-able table the decoder
needs (stored in the file's header):

- "bits": every symbol in ceil(log2(alphabet)) bits; no model. What the paper's stage before
  Huffman coding stores.
- "huffman": canonical Huffman codes (the paper's choice); the model is each symbol's code
  length. Decoding is a Python loop over a lookup table, about a million symbols a second.
- "ans": asymmetric numeral systems (rANS, from the `constriction` library, Rust), with a
  categorical model from the symbols' exact counts; codes within a fraction of a bit of the
  empirical entropy per stream instead of Huffman's whole bits per symbol, and decodes fast.
  docs/pack.md gives the measured sizes that made it the default.

Binary streams with per-symbol probabilities (the position code's adaptive model) use
`encode_binary` / `decode_binary` (ANS only).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from netshrink.errors import NetshrinkError

CODERS = ("ans", "huffman", "bits")
MAX_HUFFMAN_BITS = 24  # longer codes (from extreme skews) are flattened until they fit
_TABLE_BITS = 16       # Huffman decoding reads this many bits per table lookup


def width(alphabet: int) -> int:
    """Bits per symbol of the fixed-width code."""
    return max(1, math.ceil(math.log2(max(alphabet, 2))))


def encode(symbols: np.ndarray, alphabet: int, coder: str) -> tuple[bytes, dict]:
    """(bytes, model) of `symbols` (ints in [0, alphabet)) in `coder`."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError("symbol outside the alphabet")
    if coder not in CODERS:
        raise NetshrinkError(f"coder={coder!r} must be one of {', '.join(CODERS)}")
    if alphabet <= 1:  # one possible symbol: nothing to store
        return b"", {}
    if coder == "bits":
        return pack_bits(symbols, width(alphabet)), {}
    counts = np.bincount(symbols, minlength=alphabet)
    if coder == "huffman":
        lengths = huffman_lengths(counts)
        return huffman_encode(symbols, lengths), {"lengths": lengths.tolist()}
    return ans_encode(symbols, counts), {"counts": counts.tolist()}


def decode(data: bytes, model: dict, count: int, alphabet: int, coder: str) -> np.ndarray:
    """The `count` symbols `encode` wrote (raises ValueError on data that does not decode)."""
    if alphabet <= 1:
        if data:
            raise ValueError("bytes for a one-symbol alphabet")
        return np.zeros(count, dtype=np.int64)
    if coder == "bits":
        return unpack_bits(data, width(alphabet), count)
    if coder == "huffman":
        return huffman_decode(data, _int_list(model.get("lengths"), alphabet), count)
    if coder == "ans":
        return ans_decode(data, _int_list(model.get("counts"), alphabet), count)
    raise ValueError(f"unknown coder {coder!r}")


def _int_list(values, alphabet: int) -> np.ndarray:
    if not isinstance(values, list) or len(values) != alphabet or \
            not all(isinstance(v, int) and v >= 0 for v in values):
        raise ValueError("corrupt coder model")
    return np.asarray(values, dtype=np.int64)


# --- fixed width --------------------------------------------------------------------------------


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Each value in `bits` bits, most significant first, packed into bytes."""
    values = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    flat = ((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).reshape(-1)
    return np.packbits(flat).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    if len(data) != (count * bits + 7) // 8:
        raise ValueError("fixed-width stream of the wrong length")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count * bits)
    weights = (np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return flat.reshape(count, bits).astype(np.int64) @ weights


# --- canonical Huffman -------------------------------------------------------------------------


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Code length of each symbol (0 for an unused one) of an optimal prefix code, at most
    MAX_HUFFMAN_BITS long (counts flattened until it fits, which only extreme skews need)."""
    counts = np.asarray(counts, dtype=np.int64)
    while True:
        lengths = _lengths(counts)
        if lengths.max(initial=0) <= MAX_HUFFMAN_BITS:
            return lengths
        counts = np.where(counts > 0, counts // 2 + 1, 0)


def _lengths(counts: np.ndarray) -> np.ndarray:
    used = np.flatnonzero(counts)
    lengths = np.zeros(len(counts), dtype=np.int64)
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    # heap of (weight, tie-breaker, symbols below): merging two adds a bit to all their symbols
    heap = [(int(counts[s]), int(s), [int(s)]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        w1, t1, a = heapq.heappop(heap)
        w2, t2, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, min(t1, t2), a + b))
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code of each symbol: by length, then symbol, counting up."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, previous = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - previous
        previous = int(lengths[s])
        codes[s] = code
        code += 1
    return codes


def huffman_encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    codes = canonical_codes(lengths)
    sym_lengths = lengths[symbols]
    if symbols.size and sym_lengths.min() == 0:
        raise ValueError("symbol without a code")
    total = int(sym_lengths.sum())
    owner = np.repeat(np.arange(symbols.size), sym_lengths)
    within = np.arange(total) - np.repeat(np.cumsum(sym_lengths) - sym_lengths, sym_lengths)
    bits = (codes[symbols][owner] >> (sym_lengths[owner] - 1 - within)) & 1
    return np.packbits(bits.astype(np.uint8)).tobytes()


def huffman_decode(data: bytes, lengths: np.ndarray, count: int) -> np.ndarray:
    """Decode by table lookup: the next 16 bits give the symbol and its length directly when
    the code is at most 16 bits long; longer codes are read bit by bit."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if lengths.max(initial=0) > MAX_HUFFMAN_BITS or not lengths.any():
        raise ValueError("corrupt Huffman code lengths")
    if sum(2.0 ** -int(n) for n in lengths if n) > 1.0:
        raise ValueError("corrupt Huffman code lengths (not a prefix code)")
    codes = canonical_codes(lengths)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int64)
    padded = np.concatenate([bits, np.zeros(_TABLE_BITS, dtype=np.int64)])
    window = np.zeros(len(bits), dtype=np.int64)
    for t in range(_TABLE_BITS):
        window = (window << 1) | padded[t:t + len(bits)]
    table_symbol = np.full(1 << _TABLE_BITS, -1, dtype=np.int64)
    table_length = np.zeros(1 << _TABLE_BITS, dtype=np.int64)
    long_codes = {}
    for s in np.flatnonzero(lengths):
        n = int(lengths[s])
        if n <= _TABLE_BITS:
            start = int(codes[s]) << (_TABLE_BITS - n)
            table_symbol[start:start + (1 << (_TABLE_BITS - n))] = s
            table_length[start:start + (1 << (_TABLE_BITS - n))] = n
        else:
            long_codes[(n, int(codes[s]))] = int(s)
    sym_of, len_of, windows = table_symbol.tolist(), table_length.tolist(), window.tolist()
    out, position, total = [], 0, len(bits)
    for _ in range(count):
        if position >= total:
            raise ValueError("Huffman stream ends early")
        w = windows[position]
        n = len_of[w]
        if n:
            out.append(sym_of[w])
            position += n
            continue
        position, symbol = _long_code(bits, position, long_codes)
        out.append(symbol)
    if position > total:
        raise ValueError("Huffman stream ends early")
    return np.asarray(out, dtype=np.int64)


def _long_code(bits: np.ndarray, position: int, long_codes: dict) -> tuple[int, int]:
    code, n = 0, 0
    while n < MAX_HUFFMAN_BITS and position + n < len(bits):
        code = (code << 1) | int(bits[position + n])
        n += 1
        if n > _TABLE_BITS and (n, code) in long_codes:
            return position + n, long_codes[(n, code)]
    raise ValueError("corrupt Huffman stream")


# --- asymmetric numeral systems (constriction) --------------------------------------------------


def _constriction():
    try:
        import constriction
    except ImportError:
        raise NetshrinkError("the 'ans' coder needs the constriction package: pip install "
                             "'netshrink[pack]' (or save with coder='huffman')") from None
    return constriction


def _categorical(counts: np.ndarray):
    constriction = _constriction()
    if counts.sum() == 0:
        raise ValueError("corrupt coder model (no symbols)")
    return constriction.stream.model.Categorical(counts.astype(np.float64) / counts.sum(),
                                                 perfect=False)


def ans_encode(symbols: np.ndarray, counts: np.ndarray) -> bytes:
    if symbols.size == 0:
        return b""
    coder = _constriction().stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), _categorical(counts))
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode(data: bytes, counts: np.ndarray, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if len(data) % 4 or int(counts.sum()) != count:
        raise ValueError("corrupt ANS stream")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    coder = _constriction().stream.stack.AnsCoder(words)
    return coder.decode(_categorical(counts), count).astype(np.int64)


def encode_binary(bits: np.ndarray, probabilities: np.ndarray) -> bytes:
    """ANS code of 0/1 `bits`, bit i being 1 with probability probabilities[i]."""
    if bits.size == 0:
        return b""
    constriction = _constriction()
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(bits.astype(np.int32), constriction.stream.model.Bernoulli(perfect=False),
                         np.asarray(probabilities, dtype=np.float64))
    return coder.get_compressed().astype("<u4").tobytes()


class BinaryDecoder:
    """Decodes what encode_binary wrote, a block at a time (each block's probabilities may
    depend on the blocks decoded before it)."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise ValueError("corrupt ANS stream")
        constriction = _constriction()
        self._coder = constriction.stream.stack.AnsCoder(
            np.frombuffer(data, dtype="<u4").astype(np.uint32))
        self._model = constriction.stream.model.Bernoulli(perfect=False)

    def decode(self, probabilities: np.ndarray) -> np.ndarray:
        return self._coder.decode(self._model, np.asarray(probabilities, dtype=np.float64))
