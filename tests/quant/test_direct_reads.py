"""A forward that reads a layer's weight itself is refused before quantization changes it."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netshrink
from netshrink.errors import NetshrinkError
from netshrink.quant import QAT, Dynamic, Static, WeightOnly
from netshrink.quant.direct_reads import direct_reads


class ReadsItsWeight(nn.Module):
    """Calls fc and also reads fc.weight (a penalty or a second product on the weights)."""

    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.fc(x) + F.linear(x, self.fc.weight * 1.0))


class TiedOutput(nn.Module):
    """An output projection tied to the embedding, written as a product with its weight."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc = nn.Embedding(10, 8), nn.Linear(8, 8)

    def forward(self, ids):
        return torch.tanh(self.fc(self.emb(ids))) @ self.emb.weight.t()


CONFIGS = [Dynamic(), Static(), QAT(), WeightOnly(rounding="rtn"), WeightOnly()]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("build, x, layer", [
    (ReadsItsWeight, torch.randn(16, 8), "fc"),
    (TiedOutput, torch.randint(0, 10, (16, 4)), "emb"),
])
def test_a_weight_read_outside_its_layer_is_refused_by_name(config, build, x, layer):
    torch.manual_seed(0)
    model = build().eval()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(NetshrinkError, match=rf"'{layer}': weight .*skip=\('{layer}',\)"):
        netshrink.quantize_(model, config, data=x)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_skipping_the_layer_quantizes_the_rest_with_the_right_numbers():
    torch.manual_seed(0)
    model = ReadsItsWeight().eval()
    x = torch.randn(16, 8)
    reference = model(x)
    netshrink.quantize_(model, Dynamic(skip=("fc",)), data=x)
    assert isinstance(model.fc, nn.Linear)
    assert (model(x) - reference).abs().max() < 0.05 * reference.abs().max()


def test_layers_called_or_tied_through_modules_are_not_reads():
    torch.manual_seed(0)
    emb, out = nn.Embedding(10, 8), nn.Linear(8, 10, bias=False)
    out.weight = emb.weight
    model = nn.Sequential(emb, nn.Linear(8, 8), out)
    netshrink.prune_(model, "magnitude", sparsity=0.5)  # masked weights are read by their layers
    layers = {n: m for n, m in model.named_children()}
    assert direct_reads(model, layers) == {}
    netshrink.quantize_(model, Dynamic())


def test_a_masked_weight_read_directly_is_found():
    torch.manual_seed(0)
    model = ReadsItsWeight()
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    assert list(direct_reads(model, {"fc": model.fc, "head": model.head})) == ["fc"]


def test_a_model_torch_fx_cannot_trace_is_not_checked():
    class Branches(ReadsItsWeight):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return super().forward(x)
            return self.head(x)

    model = Branches()
    assert direct_reads(model, {"fc": model.fc}) == {}
