"""Model files: exact round trip, never unpickled, corrupt files refused, nothing half-written."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import netshrink
from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.serialize import _MASK, _VALUES, _encode_sparse


@pytest.mark.parametrize("name", ["lenet300", "resnet", "mlp"])
def test_round_trip_is_exact(name, tmp_path):
    model = models.create(name, input_shape=(1, 8, 8), num_classes=5)
    model.train()
    model(torch.rand(16, 1, 8, 8))  # move BatchNorm statistics away from their defaults
    path = netshrink.save(model, tmp_path / "m.safetensors", metadata={"note": "x"})
    loaded = netshrink.load(path)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(model.eval()(x), loaded.eval()(x))
    assert loaded.netshrink_spec == model.netshrink_spec
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"], "no temporary left"


def test_truncated_file_is_refused(tmp_path):
    path = netshrink.save(models.create("lenet300"), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NetshrinkError, match=r"corrupt|truncated"):
        netshrink.load(path)


def test_pickle_and_foreign_files_are_refused(tmp_path):
    bad = tmp_path / "m.pt"
    bad.write_bytes(pickle.dumps({"weight": 1}))
    with pytest.raises(NetshrinkError, match="not a valid safetensors"):
        netshrink.load(bad)
    foreign = tmp_path / "f.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(NetshrinkError, match="without netshrink metadata"):
        netshrink.load(foreign)
    with pytest.raises(NetshrinkError, match="no such file"):
        netshrink.load(tmp_path / "missing.safetensors")


def test_user_model_needs_the_model_to_load_into(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    path = netshrink.save(model, tmp_path / "u.safetensors")
    with pytest.raises(NetshrinkError, match="pass the model"):
        netshrink.load(path)
    other = nn.Sequential(nn.Linear(3, 2))
    netshrink.load(path, model=other)
    assert torch.equal(other[0].weight, model[0].weight)
    with pytest.raises(NetshrinkError, match="do not fit"):
        netshrink.load(path, model=nn.Sequential(nn.Linear(4, 2)))


def _pruned_lenet300(sparsity=0.9):
    model = models.create("lenet300")
    netshrink.prune_(model, "magnitude", sparsity=sparsity, scope="layerwise")
    return model


def test_a_pruned_model_is_stored_sparse_and_loads_exactly(tmp_path):
    model = _pruned_lenet300()
    sparse = netshrink.save(model, tmp_path / "s.safetensors")
    dense = netshrink.save(model, tmp_path / "d.safetensors", sparse=False)
    # 90% zeros: one bit per weight plus 10% of the float32 values, about 7.6x less
    assert sparse.stat().st_size < dense.stat().st_size / 6
    header = netshrink.serialize.read_metadata(sparse)
    stored_sparse = {k for k in header["sparse"] if k.endswith("weight")}
    assert stored_sparse == set(netshrink.prune.prunable(model))
    loaded = netshrink.load(sparse)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert netshrink.serialize.read_metadata(dense).get("sparse") is None


def test_dense_tensors_are_not_stored_sparse(tmp_path):
    model = models.create("lenet300")   # no zeros: bits would only add bytes
    path = netshrink.save(model, tmp_path / "m.safetensors")
    assert "sparse" not in netshrink.serialize.read_metadata(path)


def test_masked_tensors_are_stored_by_their_mask_so_it_comes_back_exactly(tmp_path):
    model = _pruned_lenet300(sparsity=0.1)
    mask = netshrink.prune.current_mask(model)
    with torch.no_grad():  # a kept weight that happens to be 0 is still kept
        model[1].parametrizations.weight.original[mask["1.weight"]][:1].zero_()
        index = mask["1.weight"].nonzero()[0]
        model[1].parametrizations.weight.original[tuple(index)] = 0.0
    path = netshrink.save(model, tmp_path / "m.safetensors")
    header = netshrink.serialize.read_metadata(path)
    assert all(header["sparse"][n].get("mask") for n in mask)
    dense_bytes = sum(4 * t.numel() for t in model.state_dict().values())
    assert path.stat().st_size < dense_bytes  # one bit per weight for 10% of 32: smaller still
    loaded = netshrink.load(path)
    restored = netshrink.prune.current_mask(loaded)
    assert all(torch.equal(restored[n], mask[n]) for n in mask)


def test_sparse_parts_that_disagree_are_refused(tmp_path):
    model = _pruned_lenet300()
    path = netshrink.save(model, tmp_path / "m.safetensors")
    tensors = netshrink.serialize.read_tensors(path)   # decoded, dense
    header = netshrink.serialize.read_metadata(path)
    name = next(iter(header["sparse"]))
    header.pop("checksum")  # a format-3 file (no checksum) reaches the checks of its parts
    header["format_version"] = 3
    _encode_sparse(tensors)
    tensors[name + _VALUES] = tensors[name + _VALUES][:-1]           # one value missing
    meta = {"netshrink": json.dumps(header)}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(NetshrinkError, match="corrupt sparse tensor"):
        netshrink.load(tmp_path / "bad.safetensors")
    del tensors[name + _MASK]
    save_file(tensors, str(tmp_path / "bad2.safetensors"), metadata=meta)
    with pytest.raises(NetshrinkError, match="parts missing"):
        netshrink.load(tmp_path / "bad2.safetensors")
