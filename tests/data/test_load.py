"""Named data sets: search order, checksums, splits, download path, user data."""

import gzip
import shutil

import pytest
import torch
from torch.utils.data import Dataset

from netshrink import data
from netshrink.data import catalog
from netshrink.errors import DataError
from tests.conftest import needs_mnist


def test_digits_splits(digits):
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    assert len(digits.val) == 200
    x = digits.train.tensors[0]
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1


def test_validation_is_seeded_and_disjoint():
    a, b, c = data.load("digits", seed=1), data.load("digits", seed=1), data.load("digits", seed=2)
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])
    assert torch.equal(a.test.tensors[0], c.test.tensors[0]), "the test set never changes"
    train_rows = {tuple(r.flatten().tolist()) for r in a.train.tensors[0]}
    overlap = sum(tuple(r.flatten().tolist()) in train_rows for r in a.val.tensors[0])
    assert overlap <= 2  # digits holds a few duplicate images; the split itself is disjoint


def test_val_size_checked():
    with pytest.raises(DataError, match="val_size"):
        data.load("digits", val_size=100000)
    assert len(data.load("digits", val_size=0).val) == 0


def test_unknown_name_lists_choices():
    with pytest.raises(DataError, match="choose from"):
        data.load("cifar-1000")


def test_missing_data_names_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NETSHRINK_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(catalog, "search_path",
                        lambda root: [tmp_path / "a", tmp_path / "cache"])
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist")
    with pytest.raises(DataError, match="netshrink download mnist"):
        data.load("mnist")


def test_fashion_mnist_from_debian_package():
    splits = data.load("fashion-mnist", val_size=5000, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55000, 5000, 10000)
    assert splits.input_shape == (1, 28, 28)
    assert int(splits.test.tensors[1].bincount().min()) == 1000


@needs_mnist
def test_mnist_matches_published_statistics():
    splits = data.load("mnist", val_size=0)
    x_test, y_test = splits.test.tensors
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert abs(float(x_test.mean()) * 255 - 33.7912) < 1e-3
    assert abs(float(splits.train.tensors[0].mean()) * 255 - 33.3184) < 1e-3


def _copy_mnist(dest):
    source = catalog.locate("mnist")
    dest.mkdir(parents=True)
    for path in source.values():
        shutil.copy(path, dest / path.name)
    return source


@needs_mnist
def test_explicit_root_wins_and_checksum_mismatch_is_refused(tmp_path):
    _copy_mnist(tmp_path / "mnist")
    assert len(data.load("mnist", root=tmp_path).test) == 10000
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[-1] = (content[-1] + 1) % 10  # a valid file, but not the official one
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="checksum mismatch"):
        data.load("mnist", root=tmp_path)


class Squares(Dataset):
    def __len__(self):
        return 50

    def __getitem__(self, i):
        return torch.full((2,), float(i)), i % 3


def test_user_dataset_and_tensors():
    splits = data.from_tensors(Squares(), val_size=5)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (35, 5, 10)
    assert splits.num_classes == 3 and splits.input_shape == (2,)
    x, y = torch.rand(20, 4), torch.randint(0, 2, (20,))
    tuple_splits = data.from_tensors((x, y), test=(x[:5], y[:5]))
    assert len(tuple_splits.test) == 5
    with pytest.raises(DataError, match="20 inputs but 19 labels"):
        data.from_tensors((x, y[:19]))


def test_loads_are_independent_copies():
    first = data.load("digits")
    first.test.tensors[0].zero_()
    first.train.tensors[0].zero_()
    second = data.load("digits")
    assert second.test.tensors[0].sum() > 0 and second.train.tensors[0].sum() > 0
