"""Hostile .nsz files: a checksum is no defence against a file crafted with a valid one, so
every such file (header bombs, wrong schema, tensors of trillions of entries, an architecture
larger than its tensors) is one NetshrinkError naming what is wrong, and refusing one of at
most 10 kB costs under 100 MB."""

import copy
import json
import struct
import zlib

import pytest
import torch

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.pack import nsz, share_
from tests.allocations import LIMIT, measured


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, header, payload, model) of a pruned, 3-bit shared mlp's .nsz file (~1.5 kB)."""
    torch.manual_seed(0)
    model = models.create("mlp", (1, 8, 8), 3, widths=[24])
    netshrink.prune_(model, "magnitude", sparsity=0.7)
    share_(model, bits=3)
    path = nsz.save(model, tmp_path_factory.mktemp("nsz") / "m.nsz")
    header, payload = nsz.read(path)
    return path, header, payload, model


def forge(path, header, payload: bytes, packed: bytes | None = None):
    """Write a .nsz file with a valid checksum around `header` (or raw header bytes)."""
    if packed is None:
        text = header if isinstance(header, str) else json.dumps(header)
        packed = zlib.compress(text.encode())
    body = nsz.MAGIC + struct.pack("<I", len(packed)) + packed + payload
    path.write_bytes(body + nsz._digest(body))
    return path


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def mutate(h):
        target = h
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return mutate


def _tensor(field, value, index=1):
    def mutate(h):
        h["tensors"][index][field] = value
    return mutate


HEADER_CASES = [
    (_set("model", "args", "widths", [20000, 20000]), r"'1.weight' has shape \[24, 64\]"),
    (_set("model", "args", "widths", [10**9]), r"the model's .1000000000, 64.; the file does"),
    (_set("model", "args", "widths", "abc"), "widths='abc'"),
    (_set("model", "name", "no-such-model"), "unknown model"),
    (_set("model", "mlp"), r"metadata \(model"),
    (_set("model", None), "holds only weights"),
    (_set("format", "netshrink-model"), r"not a netshrink \.nsz file"),
    (_set("format_version", "1"), "format_version"),
    (_set("format_version", 7), "newer netshrink"),
    (_set("coder", "lzw"), "tensors or coder"),
    (_set("tensors", {"1.bias": {}}), "tensors or coder"),
    (_set("transforms", [1]), "transforms"),
    (_set("transforms", [{"kind": "teleport"}]), "unknown transform 'teleport'"),
    (_set("transforms", [{"kind": "share", "layers": []}]), "share"),
    (_set("transforms", [{"kind": "share", "layers": {"1.weight": {"clusters": 10**6}}}]),
     "1.weight"),
    (_set("user", [1]), "user"),
    (_tensor("name", 5), "tensor 2: its name"),
    (_tensor("name", "1.bias", index=2), "repeated"),
    (_tensor("dtype", "complex128"), "dtype, shape or code"),
    (_tensor("shape", "big"), "dtype, shape or code"),
    (_tensor("shape", [-1]), "dtype, shape or code"),
    (_tensor("shape", [2**39]), "entries, more than 256 per byte"),
    (_tensor("shape", [2**20, 2**20]), "entries, more than 256 per byte"),
    (_tensor("code", "zip"), "dtype, shape or code"),
    (_tensor("shape", [7]), "weights do not fit"),
    (_tensor("dtype", "float64"), "weights do not fit"),
    (_tensor("data", [10**9, 4]), "corrupt tensor"),
    (_tensor("data", "here"), "corrupt tensor"),
    (_set("content", "0" * 32), "digest"),
]


@pytest.mark.parametrize(("mutate", "words"), HEADER_CASES)
def test_a_crafted_header_with_a_valid_checksum_is_one_clear_error(saved, tmp_path, mutate,
                                                                    words):
    _, header, payload, _ = saved
    bad = copy.deepcopy(header)
    mutate(bad)
    with pytest.raises(NetshrinkError, match=words):
        netshrink.load(forge(tmp_path / "bad.nsz", bad, payload))


def test_the_sparse_and_symbol_codes_are_checked(saved, tmp_path):
    """Each coded tensor's counts, alphabets and positions corrupted in turn."""
    _, header, payload, _ = saved
    coded = [i for i, e in enumerate(header["tensors"]) if e["code"] != "raw"]
    assert coded
    for i in coded:
        for mutate in (lambda e: e.setdefault("positions", {}).update(kept=10**9),
                       lambda e: e.setdefault("positions", {}).update(code="morse"),
                       lambda e: e.setdefault("values", {}).update(count=-1),
                       lambda e: e.setdefault("values", {}).update(alphabet=2**40)):
            bad = copy.deepcopy(header)
            mutate(bad["tensors"][i])
            with pytest.raises(NetshrinkError, match=r"corrupt tensor|do not match"):
                netshrink.load(forge(tmp_path / "bad.nsz", bad, payload))


@pytest.mark.parametrize(("packed", "words"), [
    (zlib.compress(b" " * 50_000_000, 9), "more than 256 times"),  # a 49 kB zlib bomb
    (zlib.compress(b"[" * 5_000), "nested deeper"),
    (zlib.compress(b"not json"), "corrupt netshrink metadata"),
    (zlib.compress(b"\xff\xfe{}"), "not UTF-8"),
    (zlib.compress(b"[1, 2]"), r"not a netshrink \.nsz file"),
    (b"not zlib at all", r"corrupt \.nsz header"),
    (zlib.compress(b"{}")[:-3], "truncated"),
])
def test_a_crafted_header_stream_is_one_clear_error(saved, tmp_path, packed, words):
    with pytest.raises(NetshrinkError, match=words):
        netshrink.load(forge(tmp_path / "bad.nsz", None, saved[2], packed=packed))


def test_truncation_at_every_offset_and_bit_flips_are_refused(saved, tmp_path):
    path = saved[0]
    data = path.read_bytes()
    target = tmp_path / "cut.nsz"
    for end in range(len(data)):
        target.write_bytes(data[:end])
        with pytest.raises(NetshrinkError, match=r"checksum mismatch|not a netshrink"):
            netshrink.load(target)
    for offset in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[offset] ^= 0x04
        target.write_bytes(flipped)
        with pytest.raises(NetshrinkError, match=r"checksum mismatch|not a netshrink"):
            netshrink.load(target)


def test_a_user_model_is_compared_with_the_file_before_it_is_decoded(saved):
    with pytest.raises(NetshrinkError, match=r"the model's .3, 64.; the file does not match"):
        netshrink.load(saved[0], model=torch.nn.Sequential(torch.nn.Flatten(),
                                                           torch.nn.Linear(64, 3)))


def test_the_real_file_still_loads_exactly(saved):
    path, _, _, model = saved
    loaded = netshrink.load(path)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_no_nsz_file_of_at_most_10_kb_costs_more_than_100_mb_to_refuse(saved, tmp_path):
    _, header, payload, _ = saved
    files = []
    for i, (mutate, _) in enumerate(HEADER_CASES):
        bad = copy.deepcopy(header)
        mutate(bad)
        files.append(forge(tmp_path / f"bomb{i}.nsz", bad, payload))
    for i, packed in enumerate((zlib.compress(b" " * 5_000_000, 9),
                                zlib.compress(b"[" * 1_000_000, 9))):
        files.append(forge(tmp_path / f"zip{i}.nsz", None, payload, packed=packed))
    for widths in ([10**5] * 3, [2**31]):  # an architecture of terabytes, its tensors to match
        bad = copy.deepcopy(header)
        bad["model"]["args"]["widths"] = widths
        files.append(forge(tmp_path / f"wide{len(files)}.nsz", bad, payload))
    for f in files:
        assert f.stat().st_size <= 10_000, f
        torch_bytes, python_peak = measured(lambda f=f: _refused(f))
        assert torch_bytes < LIMIT and python_peak < LIMIT, (f, torch_bytes, python_peak)


def _refused(path) -> None:
    with pytest.raises(NetshrinkError):
        netshrink.load(path)
