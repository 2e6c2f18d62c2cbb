"""Where a sparse tensor's kept entries are: four position codes, the smallest one chosen.

The tensor is read in row-major order, as a matrix of rows = its first dimension (a layer's
outputs) and columns = the rest (its inputs).

- "dense": every entry kept; nothing stored.
- "bitmask": one bit per entry.
- "gaps": the paper's relative index: for each kept entry, the number of entries skipped since
  the previous one, in b bits; a gap of 2^b - 1 or more first emits filler symbols (2^b - 1 =
  "skip that many, no entry here"). The paper stores 5 bits for fully connected layers and 8
  for convolutions, then Huffman codes them; here b is chosen per tensor (2 to 12) for the
  smallest coded stream, and the symbols go to the file's coder.
- "columns": the bitmask coded by ANS with an adaptive model: the probability that entry
  (r, c) is kept is (kept in column c among rows < r + alpha * density) / (r + alpha), so a
  column that pruning emptied (an input pixel at the border of every MNIST image) soon costs
  almost nothing, and a busy one is cheap too. Gaps see only distances and cannot learn that.
  Tried in both orientations (rows as given, or transposed). ANS only.

docs/pack.md lists the measured sizes of each code on the reproduction's networks.
"""

from __future__ import annotations

import json

import numpy as np

from netshrink.pack import coding

GAP_BITS = range(2, 13)
ALPHA = 2.0  # the adaptive model's prior weight (rows' worth) on the tensor's density
_EDGE = 2.0**-20  # probabilities kept inside (edge, 1 - edge)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    rows = shape[0] if len(shape) > 1 else 1
    total = int(np.prod(shape, dtype=np.int64))
    return rows, (total // rows if rows else 0)


def encode(keep: np.ndarray, coder: str) -> tuple[dict, bytes]:
    """(info for the header, bytes) of the smallest position code of bool array `keep`."""
    flat = keep.reshape(-1).astype(bool)
    kept = int(flat.sum())
    if kept == flat.size:
        return {"code": "dense", "kept": kept}, b""
    candidates = [({"code": "bitmask"}, np.packbits(flat).tobytes())]
    candidates.append(_best_gaps(flat, coder))
    if coder == "ans" and kept:
        rows, cols = _matrix_shape(keep.shape)
        matrix = flat.reshape(rows, cols)
        candidates.append(({"code": "columns", "transposed": False}, _columns(matrix)))
        candidates.append(({"code": "columns", "transposed": True},
                           _columns(np.ascontiguousarray(matrix.T))))
    info, data = min(candidates, key=lambda c: len(c[1]) + _model_bytes(c[0]))
    return {**info, "kept": kept}, data


def _model_bytes(info: dict) -> int:
    return len(json.dumps(info, separators=(",", ":")))


def decode(info: dict, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The bool keep array (of `shape`) that `encode` described (ValueError when corrupt)."""
    total = int(np.prod(shape, dtype=np.int64))
    kept = info.get("kept")
    if not isinstance(kept, int) or not 0 <= kept <= total:
        raise ValueError("corrupt position count")
    code = info.get("code")
    if code == "dense":
        if kept != total:
            raise ValueError("corrupt dense positions")
        return np.ones(shape, dtype=bool)
    if code == "bitmask":
        if len(data) != (total + 7) // 8:
            raise ValueError("bitmask of the wrong length")
        flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=total).astype(bool)
    elif code == "gaps":
        flat = _decode_gaps(info, data, total, kept)
    elif code == "columns":
        rows, cols = _matrix_shape(shape)
        if info.get("transposed"):
            flat = _decode_columns(data, cols, rows, kept).T.reshape(-1)
        else:
            flat = _decode_columns(data, rows, cols, kept).reshape(-1)
    else:
        raise ValueError(f"unknown position code {code!r}")
    if int(flat.sum()) != kept:
        raise ValueError("positions do not match their count")
    return flat.reshape(shape)


# --- gaps with filler symbols -------------------------------------------------------------------


def gap_symbols(flat: np.ndarray, bits: int) -> np.ndarray:
    """The relative-index symbols of kept entries, filler = 2^bits - 1 (skip that many)."""
    filler = (1 << bits) - 1
    where = np.flatnonzero(flat)
    gaps = np.diff(where, prepend=-1) - 1
    fills = gaps // filler
    out = np.full(int(fills.sum()) + len(gaps), filler, dtype=np.int64)
    out[np.cumsum(fills + 1) - 1] = gaps % filler
    return out


def _best_gaps(flat: np.ndarray, coder: str) -> tuple[dict, bytes]:
    best = None
    for bits in GAP_BITS:
        symbols = gap_symbols(flat, bits)
        data, model = coding.encode(symbols, 1 << bits, coder)
        info = {"code": "gaps", "bits": bits, "symbols": len(symbols), "coder": coder, **model}
        if best is None or len(data) + _model_bytes(info) < len(best[1]) + _model_bytes(best[0]):
            best = (info, data)
    return best


def _decode_gaps(info: dict, data: bytes, total: int, kept: int) -> np.ndarray:
    bits, count = info.get("bits"), info.get("symbols")
    if bits not in GAP_BITS or not isinstance(count, int) or not kept <= count <= total + kept:
        raise ValueError("corrupt gap positions")
    filler = (1 << bits) - 1
    symbols = coding.decode(data, info, count, filler + 1, info.get("coder"))
    steps = np.where(symbols == filler, filler, symbols + 1)
    where = (np.cumsum(steps) - 1)[symbols != filler]
    if len(where) != kept or (len(where) and where[-1] >= total):
        raise ValueError("gap positions run past the tensor")
    flat = np.zeros(total, dtype=bool)
    flat[where] = True
    return flat


# --- the adaptive column model ------------------------------------------------------------------


def _prior(kept: int, total: int) -> float:
    return ALPHA * (kept / total)


def _columns(matrix: np.ndarray) -> bytes:
    rows = matrix.shape[0]
    prior = _prior(int(matrix.sum()), matrix.size)
    before = np.cumsum(matrix, axis=0, dtype=np.int64) - matrix  # kept above, per column
    seen = np.arange(rows, dtype=np.float64)[:, None]
    p = np.clip((before + prior) / (seen + ALPHA), _EDGE, 1 - _EDGE)
    return coding.encode_binary(matrix.reshape(-1).astype(np.int64), p.reshape(-1))


def _decode_columns(data: bytes, rows: int, cols: int, kept: int) -> np.ndarray:
    prior = _prior(kept, rows * cols)
    decoder = coding.BinaryDecoder(data)
    counts = np.zeros(cols, dtype=np.int64)
    out = np.zeros((rows, cols), dtype=bool)
    for r in range(rows):
        p = np.clip((counts + prior) / (float(r) + ALPHA), _EDGE, 1 - _EDGE)
        row = decoder.decode(p).astype(bool)
        out[r] = row
        counts += row
    return out
