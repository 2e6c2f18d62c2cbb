"""netshrink.core.transforms: the record of structural transforms, its checks, and its replay."""

import pytest
import torch
from torch import nn

from netshrink.core.transforms import (
    check_entries,
    record,
    recorded,
    replay_after_load,
    replay_structure,
)
from netshrink.errors import NetshrinkError


def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2), nn.Flatten())


FOLD = {"kind": "fold", "pairs": [["0", "1"]]}
MASK = {"kind": "prune-mask", "parameters": ["0.weight"]}


def test_record_appends_and_recorded_returns_a_copy():
    model = nn.Linear(2, 2)
    assert recorded(model) == []
    record(model, FOLD)
    record(model, MASK)
    assert recorded(model) == [FOLD, MASK]
    recorded(model).append("x")
    assert recorded(model) == [FOLD, MASK]


@pytest.mark.parametrize("entry", [{}, {"kind": 3}, {"kind": "teleport"}])
def test_record_refuses_an_unknown_kind(entry):
    with pytest.raises(ValueError, match="unknown transform kind"):
        record(nn.Linear(2, 2), entry)


def test_check_entries_accepts_known_entries():
    assert check_entries([FOLD, MASK]) == [FOLD, MASK]
    assert check_entries([]) == []


@pytest.mark.parametrize(("entries", "words"), [
    ({"kind": "fold"}, "'transforms' must be a list of mappings"),
    ([FOLD, "fold"], "'transforms' must be a list of mappings"),
    ([FOLD, {"pairs": []}], "transform 2 has no kind"),
    ([{"kind": "teleport"}], "unknown transform 'teleport'; upgrade netshrink"),
    ([FOLD, {"kind": "fold", "pairs": [["0"]]}],
     r"corrupt metadata: transform 2 \(fold\): pairs must be a list"),
    ([{"kind": "prune-mask", "parameters": "0.weight"}],
     r"transform 1 \(prune-mask\): 'parameters' must be a list of weight names"),
])
def test_check_entries_refuses_by_position_and_kind(entries, words):
    with pytest.raises(NetshrinkError, match=words):
        check_entries(entries)


def test_replay_structure_rebuilds_the_structure_and_skips_after_load_kinds():
    model = replay_structure(bn_model(), [FOLD, MASK])
    assert isinstance(model[1], nn.Identity) and model[0].bias is not None
    assert recorded(model) == [FOLD]  # the mask comes after the weights


def test_replay_structure_on_an_instance_that_already_went_through_it():
    model = bn_model()
    record(model, FOLD)
    assert replay_structure(model, [FOLD, MASK]) is model
    assert isinstance(model[1], nn.BatchNorm2d)  # nothing replayed twice


def test_replay_structure_refuses_a_differently_transformed_model():
    model = bn_model()
    record(model, {"kind": "fold", "pairs": [["0", "9"]]})
    with pytest.raises(NetshrinkError, match="transformed differently from the file's"):
        replay_structure(model, [FOLD])


def test_replay_after_load_installs_stored_masks_and_reads_the_others_from_zeros():
    from netshrink.prune import current_mask

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight[0, 0] = 0
    stored = {"0.weight": torch.tensor([[True, False, True], [False, True, True]])}
    entries = [FOLD | {"pairs": []},
               {"kind": "prune-mask", "parameters": ["0.weight", "1.weight"]}]
    replay_after_load(model, entries, stored)
    mask = current_mask(model)
    assert torch.equal(mask["0.weight"], stored["0.weight"])
    assert mask["1.weight"].tolist() == [[False, True], [True, True]]
    assert float(model[0].weight.detach()[0, 1]) == 0.0
