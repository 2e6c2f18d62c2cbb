"""netshrink.core.swap: module paths, and replacing a module with its masks carried along."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.core.swap import (
    base_type,
    get_module,
    module_masks,
    replace_module,
    set_module,
)
from netshrink.errors import NetshrinkError
from netshrink.prune import current_mask


def masked_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))
    netshrink.prune_(model, "magnitude", sparsity=0.5)
    return model


def test_get_and_set_module_by_dotted_path():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))
    assert get_module(model, "") is model and get_module(model, "1.1") is model[1][1]
    new = nn.Linear(3, 2)
    set_module(model, "1.1", new)
    assert model[1][1] is new
    set_module(model, "0", nn.Identity())
    assert isinstance(model[0], nn.Identity)
    with pytest.raises(AttributeError):
        get_module(model, "1.7")


def test_base_type_sees_through_parametrizations():
    model = masked_model()
    assert type(model[0]) is not nn.Linear and base_type(model[0]) is nn.Linear
    assert base_type(nn.ReLU()) is nn.ReLU


def test_module_masks():
    model = masked_model()
    masks = module_masks(model[0])
    assert list(masks) == ["weight"] and torch.equal(masks["weight"],
                                                     current_mask(model)["0.weight"])
    assert module_masks(nn.Linear(2, 2)) == {}


def test_replace_module_carries_the_mask_onto_the_new_weight():
    model = masked_model()
    keep = current_mask(model)["1.1.weight"]
    new = nn.Linear(3, 2)
    with torch.no_grad():
        new.weight.fill_(1.0)
    assert replace_module(model, "1.1", new) is new
    assert model[1][1] is new
    assert torch.equal(current_mask(model)["1.1.weight"], keep)
    assert torch.equal(new.weight, keep.float())  # pruned entries read zero


def test_replace_module_with_explicit_carry():
    model = nn.Sequential(nn.Linear(4, 3))
    keep = torch.tensor([[True, False, True, False]] * 3)
    replace_module(model, "0", nn.Linear(4, 3), carry={"weight": keep})
    assert torch.equal(current_mask(model)["0.weight"], keep)


def test_replace_module_refuses_a_mask_the_new_module_cannot_hold():
    model = masked_model()
    old = model[1][1]
    with pytest.raises(NetshrinkError, match=r"cannot carry the mask of 1\.1\.weight into ReLU, "
                                             r"which has no 'weight'; squash the mask first"):
        replace_module(model, "1.1", nn.ReLU())
    with pytest.raises(NetshrinkError, match=r"cannot carry the mask of 1\.1\.weight \(\(2, 3\)\) "
                                             r"into Linear\.weight of shape \(2, 4\)"):
        replace_module(model, "1.1", nn.Linear(4, 2))
    assert model[1][1] is old  # refused before anything changed


class IntWeight(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.register_buffer("weight", weight)


def test_replace_module_with_frozen_integers_needs_zeros_where_the_mask_prunes():
    model = masked_model()
    keep = current_mask(model)["0.weight"]
    bad = IntWeight(torch.ones(3, 4, dtype=torch.int8))
    with pytest.raises(NetshrinkError, match=r"IntWeight\.weight holds non-zero integers where "
                                             r"the mask of 0\.weight prunes"):
        replace_module(model, "0", bad)
    good = IntWeight(keep.to(torch.int8))
    replace_module(model, "0", good)
    assert model[0] is good
    assert torch.equal(netshrink.core.masks.fixed_mask(good), keep)


def test_a_module_registered_at_two_paths_is_swapped_at_both(tmp_path):
    from netshrink.quant import Dynamic
    from netshrink.quant.modules import QuantLinear

    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.ReLU(), shared).eval()
    x = torch.randn(16, 8)
    netshrink.quantize_(model, Dynamic())
    assert isinstance(model[2], QuantLinear) and model[0] is model[2]
    out = model(x)
    path = netshrink.save(model, tmp_path / "shared.safetensors")
    fresh = nn.Linear(8, 8)
    loaded = netshrink.load(path, model=nn.Sequential(fresh, nn.ReLU(), fresh))
    assert loaded[0] is loaded[2] and torch.equal(loaded(x), out)
