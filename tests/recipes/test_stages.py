"""netshrink.recipes.stages: each kind of stage resolves its config with every default,
refuses bad keys and model states by name, and runs the library's own verb."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink import data
from netshrink.errors import NetshrinkError
from netshrink.quant import QuantLinear
from netshrink.recipes.stages import FLOAT, INTEGER, KINDS, QAT_TRAIN, SHARED, Context
from netshrink.train import TrainConfig


def test_every_kind_is_registered_and_the_compressing_ones_say_so():
    assert set(KINDS) == {"train", "finetune", "prune", "distill", "structured", "share",
                          "quantize", "export"}
    assert {name for name, kind in KINDS.items() if kind.compresses} == {
        "prune", "structured", "share", "quantize"}
    assert KINDS["train"] is not KINDS["finetune"] and type(KINDS["finetune"]).__name__ == "Train"


def test_train_fills_defaults_but_leaves_the_seed_to_the_recipe():
    resolved = KINDS["train"].resolve({"epochs": 2})
    assert "seed" not in resolved
    assert resolved == {k: v for k, v in TrainConfig(epochs=2).to_dict().items() if k != "seed"}
    assert KINDS["train"].resolve({"seed": 4})["seed"] == 4
    with pytest.raises(NetshrinkError, match="unknown training option epoch"):
        KINDS["train"].resolve({"epoch": 2})


def test_prune_and_structured_resolve_through_their_configs():
    assert KINDS["prune"].resolve({"sparsity": 0.5})["method"] == "magnitude"
    with pytest.raises(NetshrinkError, match="unknown prune option sparsty"):
        KINDS["prune"].resolve({"sparsty": 0.5})
    assert "criterion" in KINDS["structured"].resolve({"sparsity": 0.5})


def test_share_resolves_its_fine_tuning():
    resolved = KINDS["share"].resolve({"bits": 4})
    assert resolved["train"]["lr"] == 1e-4 and resolved["train"]["epochs"] == 1.0
    assert isinstance(resolved["skip"], list)
    assert KINDS["share"].resolve({"bits": 4, "train": {}})["train"] == {}
    with pytest.raises(NetshrinkError, match="train must be a mapping of training options, "
                                             "got 3"):
        KINDS["share"].resolve({"bits": 4, "train": 3})
    assert KINDS["share"].leaves({}, FLOAT) == SHARED


def test_distill_needs_a_teacher_of_the_right_shape():
    resolved = KINDS["distill"].resolve({"teacher": "train", "temperature": 2.0})
    assert resolved["teacher"] == "train" and resolved["temperature"] == 2.0
    assert "lr" in resolved["train"]
    assert KINDS["distill"].references(resolved) == {"teacher": "train"}
    assert KINDS["distill"].references({"teacher": {"file": "t.safetensors"}}) == {}
    with pytest.raises(NetshrinkError, match="teacher: missing"):
        KINDS["distill"].resolve({})
    with pytest.raises(NetshrinkError, match=r"teacher must name an earlier stage or be "
                                             r"\{file: PATH\}, got \{'path': 'x'\}"):
        KINDS["distill"].resolve({"teacher": {"path": "x"}})


def test_quantize_train_and_teacher_only_for_qat():
    dynamic = KINDS["quantize"].resolve({"method": "dynamic"})
    assert dynamic["method"] == "dynamic" and "train" not in dynamic
    qat = KINDS["quantize"].resolve({"method": "qat", "teacher": "train"})
    assert qat["teacher"] == "train" and qat["train"]["lr"] == QAT_TRAIN["lr"]
    assert KINDS["quantize"].references(qat) == {"teacher": "train"}
    for extra in ({"train": {"epochs": 1}}, {"teacher": "train"}):
        with pytest.raises(NetshrinkError, match="train and teacher apply to method qat only"):
            KINDS["quantize"].resolve({"method": "static", **extra})
    assert KINDS["quantize"].leaves(dynamic, FLOAT) == INTEGER


def test_export_formats_and_modes():
    assert KINDS["export"].resolve({}) == {"format": "safetensors", "mode": "qdq"}
    for config, words in [({"format": "zip"}, "format='zip' must be one of onnx, nsz"),
                          ({"mode": "fast"}, "mode='fast' must be qdq or integer"),
                          ({"path": "x"}, "unknown export key 'path'; known: format, mode")]:
        with pytest.raises(NetshrinkError, match=words):
            KINDS["export"].resolve(config)


@pytest.mark.parametrize(("kind", "config", "state", "words"), [
    ("prune", {}, INTEGER, "already converted to integers; put this stage before quantize"),
    ("prune", {}, SHARED, "weights are shared"),
    ("train", {}, INTEGER, "does not train; fine-tune during QAT"),
    ("distill", {}, INTEGER, "does not train"),
    ("quantize", {"method": "static"}, SHARED, "refuse shared weights"),
    ("quantize", {"method": "dynamic"}, INTEGER, "already converted"),
    ("export", {"format": "onnx"}, FLOAT, "format onnx exports integer models"),
])
def test_stages_refuse_model_states_they_cannot_run_on(kind, config, state, words):
    assert words in KINDS[kind].refuses(state, config)


@pytest.mark.parametrize(("kind", "config", "state"), [
    ("prune", {}, FLOAT), ("train", {}, SHARED), ("quantize", {"method": "dynamic"}, SHARED),
    ("export", {"format": "onnx"}, INTEGER), ("export", {"format": "nsz"}, FLOAT),
])
def test_and_accept_the_others(kind, config, state):
    assert KINDS[kind].refuses(state, config) is None


@pytest.fixture
def ctx(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 4, generator=g)
    return Context(data.from_tensors((x, (x[:, 0] > 0).long())), tmp_path, {}, seed=0)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_prune_and_quantize_run_the_library_verbs(ctx):
    net, metrics = KINDS["prune"].run(model(), KINDS["prune"].resolve({"sparsity": 0.75}), ctx)
    assert metrics == {"density": 0.25, "collapsed": []}
    assert netshrink.prune.density(net) == 0.25
    net, metrics = KINDS["quantize"].run(net, KINDS["quantize"].resolve({"method": "dynamic"}),
                                         ctx)
    assert isinstance(net[0], QuantLinear) and metrics == {"layers": {"integer": 2}}
    assert "integer" in (ctx.folder / "quantization.txt").read_text()


def test_export_nsz_writes_the_file_and_safetensors_adds_nothing(ctx):
    net, metrics = KINDS["export"].run(model(), {"format": "nsz", "mode": "qdq"}, ctx)
    assert metrics["export"] == "model.nsz"
    assert metrics["export_bytes"] == (ctx.folder / "model.nsz").stat().st_size
    assert KINDS["export"].run(net, {"format": "safetensors", "mode": "qdq"}, ctx)[1] == {}
