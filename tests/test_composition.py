"""Methods compose: every ordered pair of stages on a zoo model and on models users write.

Each cell runs stage A then stage B and asserts what must hold after each: a pruned weight
reads exactly zero and the mask keeps its count through every later stage; a quantized model
has no float Linear, convolution or embedding left; a model reloaded from its file into a
fresh instance gives exactly the saved model's outputs. An order that cannot work (pruning an
integer model, quantizing it twice) is one clear NetshrinkError, never a crash or a silent
loss.
"""

import copy
import itertools
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import netshrink
from netshrink import models
from netshrink.data import from_tensors, inputs
from netshrink.distill import DistillConfig
from netshrink.errors import NetshrinkError
from netshrink.prune import current_mask, masked_parameters
from netshrink.quant import QAT, Dynamic, Static, convert, fold_
from netshrink.quant.handlers import INTEGER_TYPES
from netshrink.train import TrainConfig, fit
from user_models import build, call

STEPS = TrainConfig(iterations=3, batch_size=16, lr=1e-3, device="cpu")
STAGES = ("prune", "distill", "qat", "static", "dynamic", "fold", "saveload", "train")
# Every ordered pair on these; on the others, each stage then save/load, and prune then each.
FULL = ("lenet5", "residual_cnn", "token_transformer", "two_inputs")
PARTIAL = ("shared_mlp", "conv1d", "keyword_inputs", "tied_lm", "inverted_residual",
           "convnext_block", "unet")
CELLS = [(n, a, b) for n in FULL for a, b in itertools.product(STAGES, STAGES)] + [
    (n, a, b) for n in PARTIAL for a, b in dict.fromkeys(
        [(s, "saveload") for s in STAGES] + [("prune", s) for s in STAGES])]


@dataclass
class Case:
    name: str
    model: nn.Module
    inputs: torch.Tensor
    classes: int
    fresh: object  # () -> a new float instance of the same class
    mask: object = None
    integer: bool = False
    history: list = field(default_factory=list)

    @property
    def splits(self):
        labels = torch.arange(inputs.count(self.inputs)) % self.classes
        return from_tensors((self.inputs, labels), val_size=8, num_classes=self.classes)

    def first(self, n: int):
        return inputs.take(self.inputs, slice(0, n))


def make_case(name: str) -> Case:
    if name == "lenet5":
        torch.manual_seed(0)
        model = models.create("lenet5", (1, 8, 8), 5)
        return Case(name, model, torch.rand(64, 1, 8, 8), 5,
                    lambda: models.create("lenet5", (1, 8, 8), 5))
    model, inputs, classes = build(name)
    return Case(name, model, inputs, classes, lambda: build(name, seed=1)[0])


def _float_layers(model: nn.Module) -> list[str]:
    kinds = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)
    return [n for n, m in model.named_modules()
            if isinstance(m, kinds) and not isinstance(m, INTEGER_TYPES)]


def run_stage(case: Case, stage: str) -> None:
    model = case.model
    if stage == "prune":
        case.mask = netshrink.prune_(model, "magnitude", sparsity=0.6, scope="layerwise")
    elif stage == "distill":
        teacher = case.fresh()
        netshrink.distill(model, teacher, case.splits, DistillConfig(), STEPS, progress=False)
    elif stage == "qat":
        netshrink.quantize_(model, QAT(), data=case.first(16))
        fit(model, case.splits, STEPS, progress=False)
        convert(model)
        case.integer = True
    elif stage == "static":
        netshrink.quantize_(model, Static(observer="minmax"), data=case.first(32))
        case.integer = True
    elif stage == "dynamic":
        netshrink.quantize_(model, Dynamic())
        case.integer = True
    elif stage == "fold":
        fold_(model)
    elif stage == "train":
        fit(model, case.splits, STEPS, progress=False)
    elif stage == "saveload":
        model.eval()
        path = netshrink.save(model, _tmp() / f"{case.name}.safetensors")
        loaded = netshrink.load(path, model=case.fresh()).eval()
        with torch.no_grad():
            assert torch.equal(call(loaded, case.first(8)), call(model, case.first(8)))
        case.model = loaded


_TMP = {}


def _tmp():
    return _TMP["path"]


@pytest.fixture(autouse=True)
def _tmp_path(tmp_path):
    _TMP["path"] = tmp_path


def check_invariants(case: Case) -> None:
    model = case.model
    if case.mask is not None:
        now = current_mask(model)
        assert now.kept() == case.mask.kept() and now.size() == case.mask.size()
        weights = masked_parameters(model)
        for name, keep in now.items():
            assert torch.count_nonzero(weights[name].detach()[~keep.to(weights[name].device)]) \
                == 0, name
    if case.integer:
        assert _float_layers(model) == [], "a layer stayed float"
    with torch.no_grad():
        out = call(model.eval(), case.first(4))
    assert out.shape == (4, case.classes) and torch.isfinite(out).all()


def expected_refusal(case: Case, stage: str) -> bool:
    """Orders that cannot work: pruning, quantizing or training integer layers (they pass no
    gradient: a loss through them is refused by fit, whatever float parameters remain)."""
    return case.integer and stage in ("prune", "qat", "static", "dynamic", "distill", "train")


@pytest.mark.parametrize("name,first,second", CELLS)
def test_two_stages_compose(name, first, second):
    case = make_case(name)
    for stage in (first, second):
        if expected_refusal(case, stage):
            with pytest.raises(NetshrinkError):
                run_stage(copy.deepcopy(case), stage)
            continue
        run_stage(case, stage)
        check_invariants(case)
