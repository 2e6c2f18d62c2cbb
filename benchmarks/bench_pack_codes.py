"""Benchmark: which position code and which entropy coder make the smallest .nsz file.

Reads .nsz files (by default the shared models the deep-compression reproduction wrote, its
`*_coded.nsz`), and for every sparse tensor in them re-encodes the positions of the kept
weights with each code, and the values (codebook indices, integers) with each coder:

- positions: a bitmask; the paper's relative index in fixed width (5 bits for fully connected
  layers, 8 for convolutions, and 4 bits for all), fillers included; the relative index with
  its width chosen per tensor, Huffman coded (the paper's) and ANS coded; the adaptive column
  model (ANS); and what .nsz chose (the smallest of its candidates, model tables included);
- values: fixed width, Huffman, ANS (the model tables, JSON, counted in);
- the header: JSON as is, and zlib-compressed (what the file stores).

Prints one table of total bytes over all the files and writes the numbers to a JSON file.

    PYTHONPATH=src python benchmarks/bench_pack_codes.py runs/reproduce/deep-compression
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from netshrink.fileio import atomic_write
from netshrink.pack import coding, nsz, positions


def _model_bytes(model: dict) -> int:
    return len(json.dumps(model, separators=(",", ":"))) if model else 0


def position_sizes(keep: np.ndarray, conv: bool) -> dict[str, int]:
    flat = keep.reshape(-1)
    out = {"bitmask": (flat.size + 7) // 8}
    for label, bits in (("paper fixed 5 (fc) / 8 (conv) bits", 8 if conv else 5),
                        ("fixed 4 bits", 4)):
        out[label] = len(coding.pack_bits(positions.gap_symbols(flat, bits), bits))
    for coder in ("huffman", "ans"):
        best = None
        for bits in positions.GAP_BITS:
            data, model = coding.encode(positions.gap_symbols(flat, bits), 1 << bits, coder)
            size = len(data) + _model_bytes(model)
            best = size if best is None else min(best, size)
        out[f"relative index, best width, {coder}"] = best
    rows = keep.shape[0] if keep.ndim > 1 else 1
    matrix = flat.reshape(rows, -1)
    out["adaptive columns (ans)"] = min(len(positions._columns(matrix)),
                                        len(positions._columns(np.ascontiguousarray(matrix.T))))
    info, data = positions.encode(keep, "ans")
    out[".nsz choice"] = len(data) + _model_bytes(info)
    return out


def value_sizes(values: np.ndarray) -> dict[str, int]:
    offset = int(values.min())
    alphabet = int(values.max()) - offset + 1
    out = {}
    for coder in coding.CODERS:
        data, model = coding.encode(values - offset, alphabet, coder)
        out[coder] = len(data) + _model_bytes(model)
    return out


def measure(path: Path) -> dict:
    header, payload = nsz.read(path)
    totals: dict[str, dict[str, int]] = {"positions": {}, "values": {}, "header": {}}
    text = json.dumps(header, separators=(",", ":")).encode()
    totals["header"] = {"json": len(text), "zlib json (stored)": len(zlib.compress(text, 9))}
    for entry in header["tensors"]:
        if entry["code"] != "symbols":
            continue
        tensor, keep = nsz.decode_tensor(entry, payload, header["coder"])
        values = tensor.numpy().astype(np.int64).reshape(-1)
        if keep is None:
            keep = values != 0
        conv = len(entry["shape"]) > 2
        for key, size in position_sizes(keep.reshape(entry["shape"]), conv).items():
            totals["positions"][key] = totals["positions"].get(key, 0) + size
        for key, size in value_sizes(values[keep.reshape(-1)]).items():
            totals["values"][key] = totals["values"].get(key, 0) + size
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder searched for *_coded.nsz files")
    parser.add_argument("--pattern", default="*_coded.nsz")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/bench_pack_codes.json"))
    args = parser.parse_args()
    files = sorted(args.folder.rglob(args.pattern))
    if not files:
        raise SystemExit(f"no {args.pattern} under {args.folder}")
    grand: dict[str, dict[str, int]] = {}
    per_file = {}
    for path in files:
        per_file[str(path)] = measure(path)
        for part, sizes in per_file[str(path)].items():
            for key, size in sizes.items():
                grand.setdefault(part, {})[key] = grand.setdefault(part, {}).get(key, 0) + size
    atomic_write(args.out, json.dumps({"files": per_file, "total": grand}, indent=2) + "\n")
    print(f"{len(files)} files; total bytes over all their shared weights")
    print("| part | code | bytes | vs smallest |\n|---|---|---|---|")
    for part, sizes in grand.items():
        low = min(sizes.values())
        for key, size in sorted(sizes.items(), key=lambda kv: kv[1]):
            print(f"| {part} | {key} | {size:,} | {size / low:.3f} |")


if __name__ == "__main__":
    main()
