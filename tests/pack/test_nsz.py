"""The .nsz file: exact for every layer type, bit width and coder; damaged files refused; the
loaded model equals the compressed model in memory, the zoo's and the user's own."""

import copy
import json
import struct
import zlib

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.pack import nsz, share_
from tests.user_models import build, call


class Layers(nn.Module):
    """One of each layer type the file must hold."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.conv1d = nn.Conv1d(8, 6, 3, padding=1)
        self.conv2d = nn.Conv2d(1, 5, 3, padding=1)
        self.conv3d = nn.Conv3d(1, 4, 3, padding=1)
        self.head = nn.Linear(6 + 5 + 4, 3)

    def forward(self, tokens, image, volume):
        a = self.conv1d(self.embed(tokens).transpose(1, 2)).mean(2)
        b = self.conv2d(image).mean((2, 3))
        c = self.conv3d(volume).mean((2, 3, 4))
        return self.head(torch.cat([a, b, c], 1))


def _inputs():
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 30, (2, 7), generator=g), torch.randn(2, 1, 6, 6, generator=g),
            torch.randn(2, 1, 4, 4, 4, generator=g))


def _layers(seed=0):
    torch.manual_seed(seed)
    return Layers().eval()


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("coder", ["ans", "huffman", "bits"])
@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_shared_layers_of_every_type_decode_exactly(tmp_path, coder, bits):
    model = _layers()
    netshrink.prune_(model, "magnitude", sparsity=0.6)
    share_(model, bits=bits)
    path = nsz.save(model, tmp_path / "m.nsz", coder=coder)
    loaded = netshrink.load(path, model=_layers(seed=1))
    _same_state(loaded, model)
    assert torch.equal(loaded(*_inputs()), model(*_inputs()))


@pytest.mark.parametrize("coder", ["ans", "huffman"])
def test_pruned_float_and_int8_models_decode_exactly_with_their_masks(tmp_path, coder):
    model = _layers()
    netshrink.prune_(model, "magnitude", sparsity=0.7)
    path = nsz.save(model, tmp_path / "pruned.nsz", coder=coder)
    loaded = netshrink.load(path, model=_layers(seed=1))
    _same_state(loaded, model)
    assert netshrink.prune.current_mask(loaded).keys() == netshrink.prune.current_mask(
        model).keys()
    integer = copy.deepcopy(model)
    netshrink.quantize_(integer, netshrink.quant.Dynamic())
    path = nsz.save(integer, tmp_path / "int8.nsz", coder=coder)
    loaded = netshrink.load(path, model=_layers(seed=2))
    _same_state(loaded, integer)
    assert torch.equal(loaded(*_inputs()), integer(*_inputs()))
    assert netshrink.prune.density(loaded) == pytest.approx(netshrink.prune.density(integer))


def test_zoo_model_rebuilt_from_the_file_alone_and_smaller_than_the_baselines(tmp_path):
    torch.manual_seed(0)
    model = netshrink.models.create("lenet300", (1, 28, 28), 10)
    netshrink.prune_(model, "magnitude", sparsity=0.95)
    share_(model, bits=4)
    path = netshrink.save(model, tmp_path / "lenet.nsz")  # netshrink.save dispatches on .nsz
    assert nsz.is_nsz(path)
    loaded = netshrink.load(path)
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    dense = netshrink.save(netshrink.models.create("lenet300", (1, 28, 28), 10),
                           tmp_path / "dense.safetensors", sparse=False).stat().st_size
    sizes = netshrink.pack.baselines.int8_baselines(model)
    assert path.stat().st_size < min(sizes["int8+gzip"], sizes["int8+xz"], sizes["int8+zstd"])
    assert dense / path.stat().st_size > 50
    assert netshrink.serialize.read_metadata(path)["format"] == nsz.FORMAT
    assert netshrink.serialize.read_tensors(path).keys() == model.state_dict().keys()


@pytest.mark.parametrize("name", ["residual_cnn", "token_transformer", "conv1d"])
def test_user_models_load_into_a_fresh_instance(tmp_path, name):
    model, inputs, _ = build(name)
    model.eval()
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    share_(model, bits=4)
    path = netshrink.save(model, tmp_path / "user.nsz")
    with torch.no_grad():
        expected = call(model, inputs)
    fresh, _, _ = build(name, seed=3)
    loaded = netshrink.load(path, model=fresh.eval())
    with torch.no_grad():
        assert torch.equal(call(loaded, inputs), expected)
    with pytest.raises(NetshrinkError, match=r"only weights|pass the model"):
        netshrink.load(path)  # a user's model needs its instance


def _saved(tmp_path):
    model = _layers()
    netshrink.prune_(model, "magnitude", sparsity=0.6)
    share_(model, bits=4)
    return nsz.save(model, tmp_path / "m.nsz")


def test_truncated_bit_flipped_and_altered_files_are_refused(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    cases = {"truncated": data[:-100], "cut short": data[:10],
             "bit flipped": data[:200] + bytes([data[200] ^ 0x10]) + data[201:],
             "appended": data + b"\x00"}
    for label, content in cases.items():
        bad = tmp_path / f"{label.replace(' ', '_')}.nsz"
        bad.write_bytes(content)
        with pytest.raises(NetshrinkError, match=r"checksum mismatch|not a netshrink"):
            netshrink.load(bad, model=_layers())
    foreign = tmp_path / "foreign.nsz"
    foreign.write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(NetshrinkError, match=r"not a netshrink \.nsz file"):
        netshrink.load(foreign, model=_layers())


def test_an_altered_file_with_a_recomputed_checksum_is_still_refused(tmp_path):
    """Someone edits a weight and fixes the checksum: the content digest catches it."""
    path = _saved(tmp_path)
    header, payload = nsz.read(path)
    entry = next(e for e in header["tensors"] if e["code"] == "raw" and e["dtype"] == "float32")
    offset = entry["data"][0]
    payload = payload[:offset] + bytes([payload[offset] ^ 1]) + payload[offset + 1:]
    packed = zlib.compress(json.dumps(header).encode())
    body = nsz.MAGIC + struct.pack("<I", len(packed)) + packed + payload
    path.write_bytes(body + nsz._digest(body))
    with pytest.raises(NetshrinkError, match="do not match the file's digest"):
        netshrink.load(path, model=_layers())


def test_file_for_another_model_is_refused_by_name(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(NetshrinkError, match="the file shares"):
        netshrink.load(path, model=nn.Sequential(nn.Linear(3, 3)))


def test_failed_save_leaves_nothing_behind(tmp_path):
    model = _layers()
    with pytest.raises(NetshrinkError, match="JSON"):
        nsz.save(model, tmp_path / "m.nsz", metadata={"bad": object()})
    with pytest.raises(NetshrinkError, match="coder"):
        nsz.save(model, tmp_path / "m.nsz", coder="lzw")
    assert list(tmp_path.iterdir()) == []


def test_breakdown_accounts_for_the_payload(tmp_path):
    path = _saved(tmp_path)
    rows = nsz.breakdown(path)
    _, payload = nsz.read(path)
    assert sum(r["position_bytes"] + r["value_bytes"] for r in rows) == len(payload)
