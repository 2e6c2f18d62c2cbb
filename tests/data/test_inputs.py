"""Inputs of any shape: a tensor, a tuple (positional) or a dict (keyword) of batched tensors."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from netshrink.data import Examples, inputs
from netshrink.errors import DataError


def pair():
    return torch.arange(12.0).reshape(4, 3), torch.arange(4)


def test_count_take_and_move_keep_structure_and_dtypes():
    a, b = pair()
    for x in (a, (a, b), {"a": a, "b": b}):
        assert inputs.count(x) == 4
        part = inputs.take(x, torch.tensor([2, 0]))
        assert type(part) is type(x)
        assert inputs.count(part) == 2
        first = inputs.tensors(part)[0]
        assert torch.equal(first, a[[2, 0]])
        moved = inputs.to_device(x, "cpu")
        assert [t.dtype for t in inputs.tensors(moved)] == [t.dtype for t in inputs.tensors(x)]
    assert inputs.take((a, b), slice(1, 3))[1].dtype == torch.int64


def test_call_passes_positional_and_keyword_arguments():
    class Seen(nn.Module):
        def forward(self, first, second=None):
            return first, second

    a, b = pair()
    assert Seen()(a)[0] is inputs.call(Seen(), a)[0]
    got = inputs.call(Seen(), (a, b))
    assert got[0] is a and got[1] is b
    got = inputs.call(Seen(), {"second": b, "first": a})
    assert got[0] is a and got[1] is b


def test_concat_and_stack():
    a, b = pair()
    joined = inputs.concat([{"a": a[:1], "b": b[:1]}, {"a": a[1:], "b": b[1:]}])
    assert torch.equal(joined["a"], a) and torch.equal(joined["b"], b)
    assert torch.equal(inputs.concat([a[:2], a[2:]]), a)
    with pytest.raises(DataError, match="different structure"):
        inputs.concat([(a, b), {"a": a, "b": b}])
    stacked = inputs.stack([(a[i], b[i]) for i in range(4)])
    assert torch.equal(stacked[0], a) and torch.equal(stacked[1], b)


def test_check_refuses_what_is_not_inputs():
    a, b = pair()
    assert isinstance(inputs.check([a, b]), tuple), "a list becomes positional inputs"
    with pytest.raises(DataError, match="tensor, a tuple of tensors"):
        inputs.check("tokens")
    with pytest.raises(DataError, match="empty tuple"):
        inputs.check(())
    with pytest.raises(DataError, match="dict of int"):
        inputs.check({"a": 1})
    with pytest.raises(DataError, match="number of examples"):
        inputs.check((a, b[:3]))
    with pytest.raises(DataError, match="batch dimension"):
        inputs.check(torch.tensor(1.0))


def test_shapes_and_descriptions_per_example():
    a, b = pair()
    assert inputs.example_shape(a) == (3,)
    assert inputs.example_shape((a, b)) == ((3,), ())
    assert inputs.example_shape({"a": a, "b": b}) == {"a": (3,), "b": ()}
    assert inputs.describe({"a": a, "b": b}) == "{a: float32 (3,), b: int64 ()}"
    assert inputs.describe((a, b)) == "(float32 (3,), int64 ())"
    ones = inputs.filled(((3,), (2, 2)), 1.0, torch.float64)
    assert [t.shape for t in ones] == [(1, 3), (1, 2, 2)] and ones[0].dtype == torch.float64
    assert inputs.filled({"x": (5,)}, 0.0)["x"].shape == (1, 5)
    assert inputs.filled((1, 8, 8), 0.0).shape == (1, 1, 8, 8)
    with pytest.raises(DataError, match="per-example shape"):
        inputs.check_shape((1, "8"))


def test_equal_compares_structure_dtype_and_values():
    a, b = pair()
    assert inputs.equal((a, b), (a.clone(), b.clone()))
    assert not inputs.equal((a, b), (b, a))
    assert not inputs.equal(b, b.float())
    assert not inputs.equal({"a": a}, {"b": a})


def test_labels_must_be_integer_class_indices():
    assert inputs.labels_of([0, 2, 1]).dtype == torch.int64
    with pytest.raises(DataError, match=r"float32.*integer class indices"):
        inputs.labels_of(torch.tensor([0.0, 1.0]))
    with pytest.raises(DataError, match=r"shape \(N,\)"):
        inputs.labels_of(torch.zeros(3, 2, dtype=torch.long))


def test_examples_keep_dtypes_and_batch_like_a_data_loader():
    tokens = torch.randint(0, 50, (10, 6))
    mask = torch.rand(10, 6) > 0.5
    data = Examples({"tokens": tokens, "mask": mask}, torch.arange(10) % 3)
    x, y = data[3]
    assert x["tokens"].dtype == torch.int64 and x["mask"].dtype == torch.bool
    assert torch.equal(x["tokens"], tokens[3]) and int(y) == 0
    loaded, labels = next(iter(DataLoader(data, batch_size=4)))
    assert inputs.equal(loaded, inputs.take(data.inputs, slice(0, 4)))
    assert torch.equal(labels, data.labels[:4])
    assert data.tensors == (data.inputs, data.labels)
    assert len(data.subset(torch.tensor([1, 2]))) == 2
    with pytest.raises(DataError, match="10 inputs but 9 labels"):
        Examples(tokens, torch.arange(9))
