"""from_tensors: user data of any shape keeps its dtypes; labels are checked."""

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from netshrink import models
from netshrink.data import Examples, from_tensors, tensors_of
from netshrink.errors import DataError, NetshrinkError


def test_token_ids_stay_int64_and_floats_become_float32():
    tokens = torch.randint(0, 100, (50, 12))
    splits = from_tensors((tokens, torch.arange(50) % 4), val_size=5)
    assert splits.train.inputs.dtype == torch.int64
    assert splits.input_shape == (12,) and splits.num_classes == 4
    x, _ = tensors_of(splits.test)
    assert x.dtype == torch.int64
    images = from_tensors((torch.rand(50, 1, 4, 4, dtype=torch.float64), torch.arange(50) % 2))
    assert images.train.inputs.dtype == torch.float32
    flags = from_tensors((torch.rand(50, 3) > 0.5, torch.arange(50) % 2))
    assert flags.train.inputs.dtype == torch.bool


def test_tuple_and_dict_inputs_and_their_input_shape():
    a, b = torch.rand(40, 3), torch.randint(0, 9, (40, 5))
    y = torch.arange(40) % 2
    positional = from_tensors(((a, b), y), test=((a[:8], b[:8]), y[:8]))
    assert positional.input_shape == ((3,), (5,))
    assert positional.train.inputs[1].dtype == torch.int64
    keyword = from_tensors(({"a": a, "b": b}, y))
    assert keyword.input_shape == {"a": (3,), "b": (5,)}
    assert len(keyword.train) + len(keyword.test) == 40
    with pytest.raises(DataError, match="test inputs are"):
        from_tensors(((a, b), y), test=((a[:8], b[:8].float()), y[:8]))
    with pytest.raises(NetshrinkError, match="zoo's models take one image tensor"):
        models.create("mlp", positional.input_shape, 2)


def test_a_dataset_of_examples_of_any_shape():
    class Pairs(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return (torch.full((2,), float(i)), torch.tensor([i, i])), i % 2

    x, y = tensors_of(Pairs())
    assert x[0].shape == (6, 2) and x[1].dtype == torch.int64 and y.tolist() == [0, 1] * 3
    with pytest.raises(DataError, match="TensorDataset of 3 tensors is ambiguous"):
        tensors_of(TensorDataset(torch.rand(4, 2), torch.rand(4, 2), torch.arange(4)))


def test_labels_are_checked_against_num_classes():
    x = torch.rand(20, 3)
    with pytest.raises(DataError, match="label 5 is out of range for num_classes=5"):
        from_tensors((x, torch.arange(20) % 6), num_classes=5)
    with pytest.raises(DataError, match="label -1 is not a class index"):
        from_tensors((x, torch.arange(20) - 1))
    with pytest.raises(DataError, match=r"float32.*integer class indices"):
        from_tensors((x, torch.rand(20)))
    with pytest.raises(DataError, match="num_classes=0 must be a positive integer"):
        from_tensors((x, torch.arange(20) % 2), num_classes=0)
    assert from_tensors((x, torch.arange(20) % 2), num_classes=7).num_classes == 7
    assert isinstance(from_tensors((x, torch.arange(20) % 2)).train, Examples)
