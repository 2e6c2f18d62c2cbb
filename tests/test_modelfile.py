"""Hostile and careless model files: every one is refused with one clear NetshrinkError naming
what is wrong, before anything large is built; none costs more than 100 MB to refuse; a
flipped bit in the weights is caught by the checksum; older files still load."""

import copy
import json
import random

import pytest
import torch
from safetensors.torch import save_file

import netshrink
from netshrink import models
from netshrink.cli import main
from netshrink.errors import NetshrinkError
from netshrink.quant import Static
from netshrink.serialize import read_metadata, read_tensors
from tests.allocations import LIMIT, measured


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(path, header, tensors, model) of a small mlp file (about 1.5 kB)."""
    torch.manual_seed(0)
    model = models.create("mlp", (1, 4, 4), 3, widths=[6])
    path = netshrink.save(model, tmp_path_factory.mktemp("small") / "m.safetensors")
    return path, read_metadata(path), read_tensors(path), model


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """(path, header, tensors) of a pruned, int8 ResNet-8 file: every kind of entry."""
    torch.manual_seed(0)
    model = models.create("resnet", (1, 8, 8), 3, depth=8, width=4)
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    netshrink.quantize_(model, Static(observer="minmax"), data=torch.rand(32, 1, 8, 8))
    path = netshrink.save(model, tmp_path_factory.mktemp("quantized") / "q.safetensors")
    return path, read_metadata(path), read_tensors(path)


def write(path, header, tensors):
    text = header if isinstance(header, str) else json.dumps(header)
    save_file(tensors, str(path), metadata={"netshrink": text})
    return path


def raw_tensors(path):
    """The tensors exactly as stored (sparse parts too), to write a file back unchanged."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118


def _set(path: tuple, value):
    def mutate(h):
        target = h
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _drop(path: tuple):
    def mutate(h):
        target = h
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


# (mutation of the small file's metadata, words the message must hold)
SMALL_CASES = [
    (_set(("model", "args", "widths"), [20000, 20000]), "weights do not fit"),
    (_set(("model", "args", "widths"), [10**9]), "needs|do not fit"),
    (_set(("model", "args", "widths"), "abc"), "widths='abc'"),
    (_set(("model", "args", "widths"), [-4]), "widths"),
    (_set(("model", "args", "input_shape"), "abc"), "input_shape"),
    (_set(("model", "args", "input_shape"), [1, 10**5, 10**5]), "input_shape"),
    (_set(("model", "args", "input_shape"), [1, 4, 4, 4, 4]), "input_shape"),
    (_set(("model", "args", "num_classes"), 10**30), "num_classes"),
    (_set(("model", "args", "num_classes"), "ten"), "num_classes"),
    (_set(("model", "args", "init"), {"x": 1}), "init"),
    (_set(("model", "args", "dropout"), float("nan")), "dropout"),
    (_set(("model", "args", "colour"), "red"), "no argument colour"),
    (_set(("model", "name"), "not-a-model"), "unknown model"),
    (_set(("model", "name"), 5), r"metadata \(model"),
    (_set(("model",), "mlp"), r"metadata \(model"),
    (_set(("model", "args"), [1, 2]), r"metadata \(model"),
    (_drop(("model", "name")), r"metadata \(model"),
    (_drop(("model", "args")), "weights do not fit"),  # the mlp's defaults: 1200 wide
    (_set(("format_version",), "4"), "format_version"),
    (_set(("format_version",), True), "format_version"),
    (_set(("format_version",), -1), "format_version"),
    (_set(("format_version",), 99), "newer netshrink"),
    (_set(("format",), "other"), "not a netshrink model file"),
    (_set(("transforms",), {"kind": "fold"}), "transforms"),
    (_set(("transforms",), [1]), "transforms"),
    (_set(("transforms",), [{"kind": 7}]), "transform 1 has no kind"),
    (_set(("transforms",), [{"kind": "teleport"}]), "unknown transform 'teleport'"),
    (_set(("transforms",), [{"kind": "prune-mask", "parameters": "1.weight"}]), "parameters"),
    (_set(("transforms",), [{"kind": "prune-mask", "parameters": ["nope.weight"]}]),
     "nope.weight"),
    (_set(("transforms",), [{"kind": "fold", "pairs": [["1"]]}]), "pairs"),
    (_set(("transforms",), [{"kind": "fold", "pairs": [["1", "3"]]}]), "BatchNorm"),
    (_set(("transforms",), [{"kind": "quantize", "layers": {"1": {"type": "linear"}}}]),
     "in_features is missing"),
    (_set(("transforms",), [{"kind": "quantize", "layers": {"1": {
        "type": "linear", "in_features": 10**12, "out_features": 6}}}]), "in_features"),
    (_set(("transforms",), [{"kind": "quantize", "layers": {"1": {
        "type": "linear", "in_features": 16, "out_features": 6, "bias": True}}}]),
     "corrupt netshrink metadata|layer '1'"),
    (_set(("transforms",), [{"kind": "quantize", "layers": {"1": {
        "type": "conv9d", "in_channels": 1}}}]), "conv9d"),
    (_set(("transforms",), [{"kind": "quantize", "layers": {"zz": {
        "type": "linear", "in_features": 16, "out_features": 6}}}]), "'zz'"),
    (_set(("transforms",), [{"kind": "quantize", "stage": "done"}]), "stage"),
    (_set(("transforms",), [{"kind": "quantize", "folded": "1"}]), "folded"),
    (_set(("transforms",), [{"kind": "quantize", "decomposed": {"1": {"embed_dim": "x"}}}]),
     "embed_dim"),
    (_set(("transforms",), [{"kind": "structured", "layers": {"1": {"out": [0] * 5000}}}]),
     "distinct"),
    (_set(("transforms",), [{"kind": "structured", "layers": {"1": {"out": [0, 99]}}}]),
     "which has 6"),
    (_set(("transforms",), [{"kind": "structured", "layers": {"1": {"sideways": [0]}}}]),
     "axes"),
    (_set(("transforms",), [{"kind": "structured", "layers": []}]), "mappings"),
    (_set(("sparse",), []), "sparse"),
    (_set(("sparse",), {"1.weight": {"shape": [2**39]}}), "1.weight"),
    (_set(("sparse",), {"1.weight": {"shape": "big"}}), "1.weight"),
    (_set(("sparse",), {"1.weight": {"shape": [6, 16], "mask": "yes"}}), "1.weight"),
    (_set(("versions",), "1.0"), "versions"),
    (_set(("user",), [1]), "user"),
    (_set(("checksum",), "0" * 64), "checksum"),
    (_set(("checksum",), "not hex"), "checksum"),
    (_drop(("checksum",)), "checksum"),
]


@pytest.mark.parametrize(("mutate", "words"), SMALL_CASES)
def test_wrong_metadata_is_one_clear_error(small, tmp_path, mutate, words):
    _, header, tensors, _ = small
    bad = copy.deepcopy(header)
    mutate(bad)
    target = write(tmp_path / "bad.safetensors", bad, tensors)
    with pytest.raises(NetshrinkError, match=words):
        netshrink.load(target)


@pytest.mark.parametrize("text", [
    "not json", "[1, 2]", "null", '"text"', "{" * 100_000, "[" * 200_000 + "]" * 200_000,
    '{"format": "netshrink-model", "model": ' + "[" * 100 + "]" * 100 + "}",
    '{"format": "netshrink-model", "transforms": [' + "{}," * 50 + "{}]}",
])
def test_malformed_metadata_json_is_one_clear_error(small, tmp_path, text):
    target = write(tmp_path / "bad.safetensors", text, small[2])
    with pytest.raises(NetshrinkError, match=r"netshrink|metadata|transform"):
        netshrink.load(target)


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: t.pop("3.bias"), "missing 3.bias"),
    (lambda t: t.update(extra=torch.zeros(2)), "unexpected extra"),
    (lambda t: t.update({"1.weight": torch.zeros(7, 16)}), "1.weight is"),
    (lambda t: t.update({"1.weight": torch.zeros(6, 16, dtype=torch.float64)}), "F64"),
])
def test_tensors_that_do_not_fit_the_architecture_are_named(small, tmp_path, change, words):
    _, header, tensors, _ = small
    tensors = dict(tensors)
    change(tensors)
    bad = dict(header, checksum=netshrink.modelfile.checksum(tensors))
    with pytest.raises(NetshrinkError, match=words):
        netshrink.load(write(tmp_path / "bad.safetensors", bad, tensors))


def test_quantized_file_mutations_are_refused(quantized, tmp_path):
    path, header, _ = quantized
    stored = raw_tensors(path)
    entry = next(i for i, e in enumerate(header["transforms"]) if e["kind"] == "quantize")
    layer = next(iter(header["transforms"][entry]["layers"]))
    for key, value, words in (("in_channels", 10**6, "in_channels"),
                              ("kernel_size", [3, 3, 3, 3, 3, 3, 3], "kernel_size"),
                              ("type", "linear", "in_features is missing"),
                              ("activation", "int8", "activation"),
                              ("weight_bits", "eight", "corrupt|weight_bits")):
        bad = copy.deepcopy(header)
        bad["transforms"][entry]["layers"][layer][key] = value
        with pytest.raises(NetshrinkError, match=words):
            netshrink.load(write(tmp_path / "bad.safetensors", bad, stored))
    assert isinstance(netshrink.load(write(tmp_path / "ok.safetensors", header, stored)),
                      torch.nn.Module)


def test_a_flipped_bit_in_the_weights_is_refused_by_the_checksum(small, tmp_path):
    path, _, _, _ = small
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # the tensor data after the header
    rng = random.Random(0)
    for offset in rng.sample(range(start, len(data)), 40):
        flipped = bytearray(data)
        flipped[offset] ^= 1 << rng.randrange(8)
        target = tmp_path / "flip.safetensors"
        target.write_bytes(flipped)
        with pytest.raises(NetshrinkError, match="checksum"):
            netshrink.load(target)


def test_bit_flips_anywhere_load_exactly_or_are_refused(small, tmp_path):
    """A dense sample of single-bit flips over the whole file: the file either loads with the
    very same weights (a flip in harmless metadata) or is one NetshrinkError."""
    path, _, tensors, _ = small
    data = path.read_bytes()
    rng = random.Random(1)
    loaded = refused = 0
    for offset in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[offset] ^= 1 << rng.randrange(8)
        target = tmp_path / "flip.safetensors"
        target.write_bytes(flipped)
        try:
            model = netshrink.load(target)
        except NetshrinkError:
            refused += 1
            continue
        loaded += 1
        for key, value in tensors.items():
            assert torch.equal(model.state_dict()[key], value), (offset, key)
    assert refused > loaded  # most flips break the file; those that do not change no weight


def test_truncation_at_every_offset_is_refused(small, tmp_path):
    path, _, _, _ = small
    data = path.read_bytes()
    target = tmp_path / "cut.safetensors"
    for end in range(len(data)):
        target.write_bytes(data[:end])
        with pytest.raises(NetshrinkError):
            netshrink.load(target)


def test_files_of_earlier_formats_still_load(small, quantized, tmp_path):
    """Format 3 (sparse, no checksum) and format 1 (dense, no checksum) files load as before."""
    for path, header, version in ((small[0], small[1], 1), (quantized[0], quantized[1], 3)):
        old = {k: v for k, v in header.items() if k != "checksum"}
        old["format_version"] = version
        stored = raw_tensors(path)
        loaded = netshrink.load(write(tmp_path / "old.safetensors", old, stored))
        expected = netshrink.load(path)
        for key, value in expected.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_a_user_model_is_checked_against_the_file_before_its_tensors_are_read(small):
    path = small[0]
    with pytest.raises(NetshrinkError, match="weights do not fit"):
        netshrink.load(path, model=torch.nn.Sequential(torch.nn.Flatten(),
                                                       torch.nn.Linear(16, 7)))


def _refused(path) -> None:
    with pytest.raises(NetshrinkError):
        netshrink.load(path)


def test_the_allocation_counters_see_large_allocations():
    """The controls: a 120 MB tensor and a 120 MB bytes object are counted (the bound can
    fail); both are freed at once, so the torch count is a sum, not a peak."""
    torch_bytes, _ = measured(lambda: torch.zeros(30_000_000).sum())
    assert torch_bytes > LIMIT
    _, python_peak = measured(lambda: len(bytes(120 * 2**20)))
    assert python_peak > LIMIT


def test_no_file_of_at_most_10_kb_costs_more_than_100_mb_to_refuse(small, quantized, tmp_path):
    """Architectures of terabytes, quantized layers of a trillion inputs, sparse tensors of
    2**39 entries, deep JSON and the mutations above, each in at most 10 kB."""
    _, header, tensors, _ = small
    bombs = []
    for widths in ([20000, 20000], [10**6] * 3, [2**31]):
        bombs.append(_set(("model", "args", "widths"), widths))
    bombs.append(lambda h: h.update(model={"name": "resnet", "args": {
        "input_shape": [3, 32, 32], "num_classes": 10, "width": 10**5}}))
    bombs.append(lambda h: h.update(model={"name": "vgg", "args": {
        "input_shape": [3, 32, 32], "num_classes": 10, "width": 4096}}))
    bombs.append(lambda h: h.update(model={"name": "lenet5", "args": {
        "input_shape": [1, 16000, 16000], "num_classes": 10}}))
    bombs.append(lambda h: h.update(model={"name": "conv6", "args": {
        "input_shape": [3, 2048, 2048], "num_classes": 10}}))
    bombs += [mutate for mutate, _ in SMALL_CASES]
    files = []
    for i, mutate in enumerate(bombs):
        bad = copy.deepcopy(header)
        mutate(bad)
        files.append(write(tmp_path / f"bomb{i}.safetensors", bad, tensors))
    q_path, q_header, _ = quantized
    stored = raw_tensors(q_path)
    entry = next(i for i, e in enumerate(q_header["transforms"]) if e["kind"] == "quantize")
    for key in ("in_channels", "out_channels"):
        bad = copy.deepcopy(q_header)
        for spec in bad["transforms"][entry]["layers"].values():
            spec[key] = 2**30
        files.append(write(tmp_path / f"q-{key}.safetensors", bad, stored))
    assert sum(f.stat().st_size <= 10_000 for f in files) >= 55  # larger ones measured too
    for f in files:
        torch_bytes, python_peak = measured(lambda f=f: _refused(f))
        assert torch_bytes < LIMIT and python_peak < LIMIT, (f, torch_bytes, python_peak)


def test_netshrink_info_never_prints_a_traceback(small, tmp_path, capsys):
    path, header, tensors, _ = small
    cases = [write(tmp_path / f"info{i}.safetensors", copy.deepcopy(header), tensors)
             for i in range(len(SMALL_CASES))]
    for (mutate, _), target in zip(SMALL_CASES, cases, strict=True):
        bad = copy.deepcopy(header)
        mutate(bad)
        write(target, bad, tensors)
    (tmp_path / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    cases += [tmp_path / "garbage.safetensors", tmp_path / "missing.safetensors", tmp_path]
    for target in cases:
        assert main(["info", str(target)]) == 2, target
        err = capsys.readouterr().err
        assert err.startswith("netshrink info: error: ") and err.count("\n") == 1, err
    assert main(["info", str(path)]) == 0
    assert "parameters:" in capsys.readouterr().out
