"""netshrink.quant.replay: a recorded quantization replays onto a fresh float model, and an
entry that does not fit the model or is malformed is one clear error."""

import copy
import functools

import pytest
import torch
from torch import nn

import netshrink
from netshrink.core.transforms import recorded
from netshrink.errors import NetshrinkError
from netshrink.quant import QAT, Dynamic, QATConv2d, QATLinear, QuantLinear
from netshrink.quant.replay import check_entry, check_fold_entry, replay, replay_folding


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def conv_bn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))


def dynamic_entry():
    model = mlp()
    netshrink.quantize_(model, Dynamic())
    return model, recorded(model)[0]


def test_replay_builds_integer_layers_that_take_the_saved_weights():
    model, entry = dynamic_entry()
    check_entry(entry)
    fresh = replay(mlp().train(), entry)
    assert isinstance(fresh[0], QuantLinear) and isinstance(fresh[2], QuantLinear)
    assert not fresh.training  # an integer model is for inference
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), model(x))


def test_replay_of_qat_folds_and_swaps_and_keeps_training_mode():
    model = conv_bn()
    netshrink.quantize_(model, QAT(), data=torch.randn(8, 1, 4, 4))
    entry = recorded(model)[0]
    check_entry(entry)
    fresh = replay(conv_bn().train(), entry)
    assert isinstance(fresh[0], QATConv2d) and isinstance(fresh[3], QATLinear)
    assert isinstance(fresh[1], nn.Identity) and fresh.training


@pytest.mark.parametrize(("build", "words"), [
    (lambda: nn.Sequential(nn.Linear(4, 3)), r"quantizes layer '2', which the model lacks"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Conv1d(3, 2, 1)),
     r"quantizes '2' as linear, but the model's '2' is a Conv1d"),
    (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 5)),
     r"the file's '2' has out_features=2, the model's 5; the file does not match"),
])
def test_replay_refuses_a_model_the_entry_does_not_fit(build, words):
    _, entry = dynamic_entry()
    with pytest.raises(NetshrinkError, match=words):
        replay(build(), entry)


def test_replay_refuses_a_fold_into_something_that_is_not_a_batchnorm():
    with pytest.raises(NetshrinkError, match=r"folds '1' into '0', which the model does not "
                                             r"have as a layer and a BatchNorm"):
        replay(mlp(), {"kind": "quantize", "folded": [["0", "1"]]})
    with pytest.raises(NetshrinkError, match="corrupt quantize entry: a folded pair"):
        replay(mlp(), {"kind": "quantize", "folded": [["0"]]})
    with pytest.raises(NetshrinkError, match="corrupt quantize entry"):
        replay(mlp(), {"kind": "quantize", "layers": []})


def test_replay_folding():
    model = replay_folding(conv_bn(), {"kind": "fold", "pairs": [["0", "1"]]})
    assert isinstance(model[1], nn.Identity)
    with pytest.raises(NetshrinkError, match=r"corrupt fold entry \(pairs\)"):
        replay_folding(conv_bn(), {"kind": "fold", "pairs": "0,1"})
    check_fold_entry({"pairs": [["0", "1"]]})
    with pytest.raises(NetshrinkError, match=r"pairs must be a list of \[layer, batchnorm\]"):
        check_fold_entry({"pairs": [["0", 1]]})


@functools.cache
def _dynamic_entry():
    with torch.random.fork_rng():  # at collection: leave the global generator as it was
        return dynamic_entry()[1]


def _with_layer(**changes):
    """The Dynamic entry with layer 0's spec changed (built at collection: quantized once)."""
    entry = copy.deepcopy(_dynamic_entry())
    entry["layers"]["0"].update(changes)
    return entry


@pytest.mark.parametrize(("entry", "words"), [
    ({"stage": "done"}, "stage done must be qat or integer"),
    ({"config": []}, "config must be a mapping"),
    ({"folded": [["0", "1", "2"]]}, "folded must be a list of"),
    ({"layers": []}, "decomposed and layers must be mappings"),
    ({"decomposed": {"a": 3}}, "decomposed a: its spec must be a mapping"),
    ({"decomposed": {"a": {"embed_dim": 8, "num_heads": 0}}},
     "decomposed 'a': num_heads=0 must be an integer >= 1"),
    ({"layers": {"0": "linear"}}, "layer 0: a layer name and its spec"),
    ({"layers": {"0": {"type": "fft"}}}, "layer '0': unknown quantized layer type fft"),
    ({"layers": {"0": {"type": "linear", "in_features": 3}}}, "layer '0': out_features is "
                                                              "missing"),
    ({"layers": {"0": {"type": "conv2d", "in_channels": 1, "out_channels": 1}}},
     "kernel_size is missing"),
    (_with_layer(in_features=True), "layer '0': in_features=True must be an integer >= 1"),
    (_with_layer(out_features=2**31), "out_features=2147483648 must be an integer"),
    (_with_layer(stride=[1] * 7), "stride must be a short list of integers"),
    (_with_layer(padding=[-1]), "padding=-1 must be an integer >= 0"),
    (_with_layer(weight_bits=9), "weight_bits=9 must be an integer from 2 to 8"),
    (_with_layer(weight_bits=True), "weight_bits=True"),
    (_with_layer(group_size=0), "group_size=0"),
    (_with_layer(bias="yes"), "bias=yes must be true or false"),
    (_with_layer(activation=7), "layer '0': activation must be a mapping"),
])
def test_check_entry_refuses_malformed_entries_by_field(entry, words):
    with pytest.raises(NetshrinkError, match=words):
        check_entry(entry)


def test_check_entry_accepts_named_paddings():
    check_entry(_with_layer(padding="same"))
