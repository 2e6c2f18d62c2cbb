"""How a recipe times each stage: statically quantized models as compile_int8 runs them."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import Dynamic, Static
from netshrink.recipes import parse
from netshrink.recipes.report import compiled_for, runtime_label


def _recipe(runtime: str):
    return parse({"data": "digits", "model": "mlp", "runtime": runtime,
                  "measure": {"repeats": 2, "threads": 1}, "stages": [{"train": {}}]})


class Gated(nn.Module):
    """A sigmoid between integer layers: no integer program can hold it."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.sigmoid(self.a(x)))


def _quantized(model, config, data):
    netshrink.quantize_(model.eval(), config, data=data)
    return model


def test_static_stages_are_compiled_and_float_and_dynamic_ones_run_as_modules():
    torch.manual_seed(0)
    data = torch.randn(64, 6)
    chain = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    float_model = nn.Sequential(nn.Linear(6, 3)).eval()
    runner, label, note = compiled_for(_recipe("torch"), "quantize",
                                       _quantized(chain, Static(), data), data[:4], data)
    assert label in ("torch", "torch, fbgemm kernels") and note is None and runner is not chain
    assert isinstance(runner, netshrink.quant.CompiledModel)
    for model in (float_model, _quantized(nn.Sequential(nn.Linear(6, 3)), Dynamic(), None)):
        assert compiled_for(_recipe("onnxruntime"), "s", model, data[:4], data) == \
            (model, "torch", None)


def test_a_model_no_runtime_can_compile_falls_back_under_auto_and_is_an_error_when_named():
    torch.manual_seed(0)
    data = torch.randn(64, 6)
    model = _quantized(Gated(), Static(), data)
    runner, label, note = compiled_for(_recipe("auto"), "quantize", model, data[:4], data)
    assert runner is model and label == "torch (integer modules)" and "sigmoid" in note
    with pytest.raises(NetshrinkError, match=r"stage 'quantize': runtime 'torch': .*sigmoid"):
        compiled_for(_recipe("torch"), "quantize", model, data[:4], data)


def test_the_runtime_label_names_each_batch_size_only_when_they_differ():
    assert runtime_label({1: "torch", 256: "torch"}) == "torch"
    assert runtime_label({1: "onnxruntime", 256: "torch"}) == "b1: onnxruntime; b256: torch"
