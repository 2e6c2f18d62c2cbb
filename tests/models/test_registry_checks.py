"""models.create builds on the meta device first: arguments whose weights would not fit in
memory are refused by name in milliseconds; a builder that cannot run on meta still builds."""

import pytest
import torch
from torch import nn

from netshrink import models
from netshrink.errors import NetshrinkError
from netshrink.models import registry


@pytest.mark.parametrize(("name", "args"), [
    ("mlp", {"widths": [10**6] * 3}), ("mlp", {"widths": [2**31]}),
    ("resnet", {"width": 10**5}), ("vgg", {"width": 10**5}),
])
def test_weights_larger_than_memory_are_refused_before_they_are_allocated(name, args):
    with pytest.raises(NetshrinkError, match=f"model '{name}' with these arguments needs"):
        models.create(name, (1, 28, 28), 10, **args)


def test_a_builder_that_reads_weights_still_builds(monkeypatch):
    saved = nn.Linear(4, 2).state_dict()

    def reads_weights(input_shape, num_classes):
        layer = nn.Linear(4, num_classes)
        layer.load_state_dict(saved)
        if layer.weight.is_meta:
            raise NotImplementedError("cannot copy out of meta tensor")
        return layer

    monkeypatch.setitem(registry._BUILDERS, "reads-weights", reads_weights)
    model = models.create("reads-weights", (4,), 2)
    assert torch.equal(model.weight, saved["weight"])
