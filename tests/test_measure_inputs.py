"""FLOPs and latency of models whose inputs are token ids, two tensors or keyword arguments."""

import pytest
import torch

from netshrink import NetshrinkError, measure, models


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only fights the other processes of a small machine."""
    with measure.threads(1):
        yield


def test_flops_of_positional_and_keyword_inputs(any_inputs):
    build, splits = any_inputs["pair"]
    pair = build()
    conv = 8 * 8 * 4 * 3 * 3  # MACs of one 8x8 image: 4 channels of 3x3 kernels
    expected = 2 * (conv + 6 * 8 + 12 * 3)  # a MAC is 2 FLOPs; one example counted
    assert measure.flops(pair, splits.test.inputs) == expected
    assert measure.flops(pair, input_shape=splits.input_shape) == expected
    build, splits = any_inputs["keywords"]
    assert measure.flops(build(), splits.test.inputs) == 2 * (5 * 16 + 16 * 2)


def test_flops_of_token_ids_count_attention_and_one_example(any_inputs):
    build, splits = any_inputs["tokens"]
    model = build()
    tokens = splits.test.inputs
    width, length, hidden, layers = 16, tokens.shape[1], 32, 2
    projections = length * (3 * width * width + width * width + 2 * width * hidden)
    attention = 2 * length * length * width  # Q K^T and the weighted sum of V
    expected = 2 * (layers * (projections + attention) + width * 2)  # + the head
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
    build, splits = any_inputs[case]
    calls = []
    model = build()
    model.register_forward_hook(lambda module, args, kwargs, out: calls.append(len(out)),
                                with_kwargs=True)
    stats = measure.latency(model, splits.test.inputs, repeats=3, warmup=1, num_threads=1)
    assert stats.runs == 3 and calls == [len(splits.test)] * 4
