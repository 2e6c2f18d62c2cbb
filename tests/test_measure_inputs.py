"""FLOPs and latency of models whose inputs are token ids, two tensors or keyword arguments."""

import pytest
import torch

from netshrink import NetshrinkError, measure, models


def test_flops_of_positional_and_keyword_inputs(any_inputs):
    cls, splits = any_inputs["pair"]
    pair = cls()
    linear = 2 * (6 * 24 + 4 * 24 + 24 * 3)  # a MAC is 2 FLOPs; one example counted
    assert measure.flops(pair, splits.test.inputs) == linear
    assert measure.flops(pair, input_shape=splits.input_shape) == linear
    cls, splits = any_inputs["keywords"]
    assert measure.flops(cls(), splits.test.inputs) == 2 * (5 * 16 + 16 * 2)


def test_flops_of_token_ids_count_attention_and_one_example(any_inputs):
    cls, splits = any_inputs["tokens"]
    model = cls()
    tokens = splits.test.inputs
    width, length, hidden = 16, tokens.shape[1], 32
    projections = length * (3 * width * width + width * width + 2 * width * hidden)
    attention = 2 * length * length * width  # Q K^T and the weighted sum of V
    expected = 2 * (projections + attention + width * 2)  # + the head
    assert measure.flops(model, tokens) == expected, "the fused attention fast path is off"
    assert measure.flops(model, tokens[:1]) == expected
    assert torch.backends.mha.get_fastpath_enabled(), "and on again afterwards"


def test_flops_from_a_shape_as_before():
    model = models.create("lenet5", (1, 28, 28), 10)
    by_shape = measure.flops(model, (1, 28, 28))
    assert by_shape == measure.flops(model, input_shape=(1, 28, 28))
    assert by_shape == measure.flops(model, torch.rand(3, 1, 28, 28))
    with pytest.raises(NetshrinkError, match="exactly one"):
        measure.flops(model, torch.rand(1, 1, 28, 28), input_shape=(1, 28, 28))
    with pytest.raises(NetshrinkError, match="exactly one"):
        measure.flops(model)


@pytest.mark.parametrize("case", ["tokens", "pair", "keywords"])
def test_latency_calls_the_model_with_its_own_arguments(any_inputs, case):
    cls, splits = any_inputs[case]
    calls = []
    model = cls()
    model.register_forward_hook(lambda module, args, kwargs, out: calls.append(len(out)),
                                with_kwargs=True)
    stats = measure.latency(model, splits.test.inputs, repeats=3, warmup=1, num_threads=1)
    assert stats.runs == 3 and calls == [len(splits.test)] * 4
