"""netshrink.pack.baselines: the plain int8 file and what gzip, xz and zstd make of it."""

import gzip
import lzma

import pytest
import torch
from torch import nn

import netshrink
from netshrink.pack import baselines
from netshrink.quant import QuantLinear


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_compressed_sizes_are_those_of_each_compressor():
    pytest.importorskip("zstandard")
    data = bytes(range(256)) * 40 + b"\0" * 5000
    sizes = baselines.compressed_sizes(data)
    assert set(sizes) == set(baselines.COMPRESSORS)
    assert sizes["gzip"] == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert sizes["xz"] == len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    assert all(0 < n < len(data) for n in sizes.values())


def test_the_zstd_baseline_needs_zstandard(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_zstandard(name, *args, **kwargs):
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    with pytest.raises(netshrink.NetshrinkError, match=r"pip install 'netshrink\[pack\]'"):
        baselines.compressed_sizes(b"x")


def test_int8_file_is_a_dense_int8_copy(tmp_path):
    model = small_model()
    netshrink.prune_(model, "magnitude", sparsity=0.9)
    path = baselines.int8_file(model, tmp_path / "m.safetensors")
    assert isinstance(model[0], nn.Linear) and not isinstance(model[0], QuantLinear)  # a copy
    loaded = netshrink.load(path, model=small_model())
    assert isinstance(loaded[0], QuantLinear)
    sparse = netshrink.save(loaded, tmp_path / "sparse.safetensors")
    assert path.stat().st_size > sparse.stat().st_size  # stored dense, not as mask bits


def test_int8_baselines_are_about_a_quarter_of_float32_and_compress_the_zeros():
    pytest.importorskip("zstandard")
    model = small_model()
    dense = baselines.int8_baselines(model)
    floats = sum(p.numel() for p in model.parameters()) * 4
    assert set(dense) == {"int8", "int8+gzip", "int8+xz", "int8+zstd"}
    assert floats / 4 < dense["int8"] < floats / 2  # int8 weights, float scales and metadata
    netshrink.prune_(model, "magnitude", sparsity=0.9)
    pruned = baselines.int8_baselines(model)
    assert abs(pruned["int8"] - dense["int8"]) < 200  # dense on disk (metadata differs)
    assert all(pruned[f"int8+{k}"] < dense[f"int8+{k}"] / 2 for k in baselines.COMPRESSORS)
